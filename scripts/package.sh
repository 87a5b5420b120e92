#!/usr/bin/env bash
# Builds the Debian package tunnel-router_<version>_<arch>.deb, for amd64 and arm64, on an x86-64 Debian machine.
#   scripts/package.sh amd64|arm64|all     (root, or a user who can install build dependencies)
#   --out DIR           write the packages to DIR (default artifacts/deb)
#   --version X.Y.Z     build this version instead of the project file's <Version> (the suite's "previous build")
# arm64 is native-AOT cross compiled: clang and lld link against the arm64 glibc of Debian's cross packages
# (scripts/deps.sh package installs them). The version is the project file's, which --version prints too.
# Layout: contrib/debian/ (control, maintainer scripts, conffiles, lintian overrides, copyright, README.Debian);
# man pages and completions come from scripts/docs.sh, which generates them from the binary.
set -euo pipefail
cd "$(dirname "$0")/.."

out=artifacts/deb
version=
archs=()
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --version) version="$2"; shift 2 ;;
        amd64|arm64) archs+=("$1"); shift ;;
        all) archs+=(amd64 arm64); shift ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "package.sh: unknown argument '$1' (amd64, arm64, all, --out DIR, --version X.Y.Z)" >&2; exit 2 ;;
    esac
done
[ ${#archs[@]} -gt 0 ] || { echo "package.sh: which architecture? amd64, arm64 or all" >&2; exit 2; }
[ -x scripts/docs.sh ] || { echo "package.sh: scripts/docs.sh is missing (it generates the man pages and completions)" >&2; exit 1; }

project=src/TunnelRouter/TunnelRouter.csproj
# The one place the version lives.
[ -n "$version" ] || version=$(sed -n 's|.*<Version>\(.*\)</Version>.*|\1|p' "$project" | head -1)
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "package.sh: version '$version' is not X.Y.Z (<Version> in $project, or --version)" >&2; exit 1; }

if [ "$(id -u)" = 0 ]; then scripts/deps.sh package; fi
mkdir -p "$out"
out=$(realpath "$out")
work=$PWD/artifacts/deb-build
# Reproducible: the files' dates, the changelog's and gzip's are the last commit's.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

# Native AOT for one runtime. Each (runtime, version) builds its own copy of src/TunnelRouter (mtimes kept), with
# its own obj/ and restore: building the other architecture, another version or the test flavour (install.sh, in
# src/) in between makes neither this build nor theirs start over.
publish() {
    local rid=$1 dir="$work/$1-$version"
    local extra=()
    [ "$rid" = linux-arm64 ] && extra=(-p:CppCompilerAndLinker=clang -p:SysRoot=/ -p:LinkerFlavor=lld)
    mkdir -p "$dir/src"
    find "$dir/src" -mindepth 1 -maxdepth 1 ! -name obj ! -name bin -exec rm -rf {} +
    tar -C src/TunnelRouter --exclude=./obj --exclude=./bin -cf - . | tar -C "$dir/src" -xf -
    if ! dotnet publish "$dir/src/TunnelRouter.csproj" -c Release -r "$rid" -p:Version="$version" "${extra[@]}" \
            -o "$dir/publish" -nologo -v quiet >"$dir/publish.log" 2>&1; then
        cat "$dir/publish.log" >&2
        echo "package.sh: the $rid build failed (log above)" >&2
        return 1
    fi
    echo "$dir/publish/tunnel-router"
}

# Man pages and completions are the same for every architecture: generated once, by the binary this machine runs
# (so an arm64 package needs the amd64 build too).
declare -A built=()
built[linux-x64]=$(publish linux-x64)
docs=$work/docs-$version
rm -rf "$docs"
scripts/docs.sh "${built[linux-x64]}" "$docs"
for f in man/tunnel-router.8 man/tunnel-router.json.5 completions/tunnel-router.bash completions/_tunnel-router; do
    [ -s "$docs/$f" ] || { echo "package.sh: scripts/docs.sh wrote no $f" >&2; exit 1; }
done

# The paths install.sh uses under /usr/local, as Debian has them.
debianise() { sed 's|/usr/local/sbin/tunnel-router|/usr/sbin/tunnel-router|g; s|/usr/local/share/tunnel-router|/usr/share/tunnel-router|g' "$1"; }
# Writes stdin to a file of the package.
put() { mkdir -p "$(dirname "$root$1")"; cat >"$root$1"; chmod "$2" "$root$1"; }

for arch in "${archs[@]}"; do
    case "$arch" in amd64) rid=linux-x64 ;; arm64) rid=linux-arm64 ;; esac
    [ -n "${built[$rid]:-}" ] || built[$rid]=$(publish "$rid")
    bin=${built[$rid]}
    root=$work/root-$arch-$version
    rm -rf "$root"
    mkdir -p "$root/DEBIAN"

    install -D -m 0755 "$bin" "$root/usr/sbin/tunnel-router"
    # The compilers' version strings: nothing runs them, and Debian strips them (lintian: binary-has-unneeded-section).
    case "$arch" in amd64) objcopy=objcopy ;; arm64) objcopy=aarch64-linux-gnu-objcopy ;; esac
    "$objcopy" --remove-section=.comment "$root/usr/sbin/tunnel-router"
    for u in tunnel-router.service tunnel-router-watch.service; do
        debianise "contrib/systemd/$u" | put "/usr/lib/systemd/system/$u" 0644
    done
    debianise contrib/networkmanager/90-tunnel-router | put /usr/lib/NetworkManager/dispatcher.d/90-tunnel-router 0755
    for h in up down; do debianise "hooks/$h" | put "/usr/share/tunnel-router/hooks/$h" 0755; done
    install -D -m 0644 contrib/tunnel-router.json "$root/etc/tunnel-router/tunnel-router.json"

    doc=/usr/share/doc/tunnel-router
    for e in contrib/examples/*.json; do install -D -m 0644 "$e" "$root$doc/examples/$(basename "$e")"; done
    install -D -m 0644 contrib/debian/copyright "$root$doc/copyright"
    install -D -m 0644 contrib/debian/README.Debian "$root$doc/README.Debian"
    printf 'tunnel-router (%s) unstable; urgency=medium\n\n  * Built from the TunnelRouter source tree.\n\n -- %s  %s\n' \
        "$version" "$(sed -n 's/^Maintainer: //p' contrib/debian/control)" "$(date -R -u -d "@$SOURCE_DATE_EPOCH")" \
        | gzip -9n | put "$doc/changelog.gz" 0644
    gzip -9n <"$docs/man/tunnel-router.8" | put /usr/share/man/man8/tunnel-router.8.gz 0644
    gzip -9n <"$docs/man/tunnel-router.json.5" | put /usr/share/man/man5/tunnel-router.json.5.gz 0644
    install -D -m 0644 "$docs/completions/tunnel-router.bash" "$root/usr/share/bash-completion/completions/tunnel-router"
    install -D -m 0644 "$docs/completions/_tunnel-router" "$root/usr/share/zsh/vendor-completions/_tunnel-router"
    install -D -m 0644 contrib/debian/lintian-overrides "$root/usr/share/lintian/overrides/tunnel-router"

    for s in postinst prerm postrm; do install -m 0755 "contrib/debian/$s" "$root/DEBIAN/$s"; done
    install -m 0644 contrib/debian/conffiles "$root/DEBIAN/conffiles"
    # The oldest glibc the binary runs on: the newest symbol version it asks for (readelf reads any architecture).
    glibc=$(readelf -W --dyn-syms "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
    size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
    sed "s/@VERSION@/$version/; s/@ARCH@/$arch/; s/@SIZE@/$size/; s/@GLIBC@/$glibc/" contrib/debian/control >"$root/DEBIAN/control"
    (cd "$root" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z \
        | xargs -0 md5sum >DEBIAN/md5sums)
    chmod 0644 "$root/DEBIAN/md5sums"
    find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

    deb="$out/tunnel-router_${version}_$arch.deb"
    dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
    echo "$deb"
done
