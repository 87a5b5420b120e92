#!/usr/bin/env bash
# Builds tunnel-router as one native-AOT executable and installs it.
#   ./install.sh                  build, install to /usr/local/sbin/tunnel-router (+ hooks, unit, example policy)
#   ./install.sh --openvpn-hook   also install /etc/openvpn/up (eduVPN runs it), never over an existing file
#   ./install.sh --prefix DIR     build, install to DIR/sbin/tunnel-router, touch nothing else
#   ./install.sh --uninstall      remove what ./install.sh installed (files changed since are kept)
#   --destdir DIR                 stage everything under DIR (packaging, tests); --binary FILE installs FILE unbuilt
#   man pages (tunnel-router(8), tunnel-router.json(5)) and bash/zsh completions come with every install but --prefix
#   --fault-injection             the test flavour (test.sh): TUNNEL_ROUTER_FAULT_AFTER works; never for a host
set -euo pipefail
cd "$(dirname "$0")"

prefix=/usr/local
custom_prefix=0
uninstall=0
openvpn_hook=0
destdir=
binary=
fault_injection=false
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix="$2"; custom_prefix=1; shift 2 ;;
        --prefix=*) prefix="${1#*=}"; custom_prefix=1; shift ;;
        --openvpn-hook) openvpn_hook=1; shift ;;
        --uninstall) uninstall=1; shift ;;
        --destdir) destdir="$2"; shift 2 ;;
        --destdir=*) destdir="${1#*=}"; shift ;;
        --binary) binary="$2"; shift 2 ;;
        --binary=*) binary="${1#*=}"; shift ;;
        --fault-injection) fault_injection=true; shift ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
prefix=$(realpath -m "$prefix")
[ -z "$destdir" ] || destdir=$(realpath -m "$destdir")
bin="$prefix/sbin/tunnel-router"

# Everything but --prefix installs the integration too; a plain install records each file it wrote (path and
# checksum) so that --uninstall removes exactly those, and keeps what the admin changed or owned before.
share=/usr/local/share/tunnel-router
manifest="$share/installed"
full=$(( ! custom_prefix ))

root() { printf '%s%s' "$destdir" "$1"; }
systemd_running() { [ -z "$destdir" ] && [ -d /run/systemd/system ]; }
sum() { sha256sum "$1" | cut -d' ' -f1; }
declare -A recorded=()
load_manifest() {
    [ -f "$(root "$manifest")" ] || return 0
    while read -r kind path hash; do recorded["$path"]="$kind $hash"; done <"$(root "$manifest")"
}

if [ $uninstall = 1 ]; then
    if [ $full = 0 ]; then
        rm -f "$(root "$bin")"
        echo "removed $bin"
        exit 0
    fi
    [ -n "$destdir" ] || [ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
    if [ ! -f "$(root "$manifest")" ]; then
        rm -f "$(root "$bin")"
        echo "removed $bin (no record of other files: nothing else removed)"
        exit 0
    fi
    if systemd_running && systemctl is-enabled --quiet tunnel-router-watch.service 2>/dev/null; then
        systemctl disable --now tunnel-router-watch.service || true
    fi
    if systemd_running && systemctl is-enabled --quiet tunnel-router.service 2>/dev/null; then
        # Stopping runs "tunnel-router flush": what apply added leaves with the unit; the live tunnels' routes
        # and rules (the OpenVPN hook's) stay, so no VPN client is stranded, and so do the FailClosed kill switches
        # and the rules into them (docs/lifecycle.md): an uninstall sends nothing in clear.
        systemctl disable --now tunnel-router.service || true
        echo "kept the FailClosed kill switches and the rules into them (their traffic stays refused); 'tunnel-router flush --all' before --uninstall removes them"
    fi
    dirs=()
    # Newest entries last in the manifest: remove in reverse, so directories come after their files.
    while read -r kind path hash; do
        case "$kind" in
            file)
                f=$(root "$path")
                if [ ! -e "$f" ]; then :
                elif [ "$(sum "$f")" = "$hash" ]; then rm -f "$f"; echo "removed $path"
                else echo "kept $path (changed since it was installed)"
                fi ;;
            dir) dirs+=("$path") ;;
        esac
    done < <(tac "$(root "$manifest")")
    rm -f "$(root "$manifest")"
    for d in "${dirs[@]}" "$share"; do
        rmdir "$(root "$d")" 2>/dev/null && echo "removed $d/" || true
    done
    systemd_running && systemctl daemon-reload || true
    exit 0
fi

[ $custom_prefix = 1 ] || [ -n "$destdir" ] || [ "$(id -u)" = 0 ] || { echo "install.sh: run as root, or use --prefix DIR" >&2; exit 1; }
[ -z "$binary" ] && [ "$(id -u)" = 0 ] && scripts/deps.sh build

if [ -n "$binary" ]; then
    [ -x "$binary" ] || { echo "install.sh: --binary $binary is not an executable file" >&2; exit 1; }
    built="$binary"
    tfm=prebuilt
else
    # Native AOT for net10.0, the one target framework.
    tfm=net10.0
    mkdir -p artifacts
    if ! dotnet publish src/TunnelRouter/TunnelRouter.csproj -c Release -r linux-x64 -p:FaultInjection=$fault_injection \
            -o "artifacts/publish/$tfm" -nologo -v quiet >"artifacts/publish-$tfm.log" 2>&1; then
        cat "artifacts/publish-$tfm.log" >&2
        echo "install.sh: build failed" >&2
        exit 1
    fi
    built="artifacts/publish/$tfm/tunnel-router"
fi

install -D -m 0755 "$built" "$(root "$bin")"
echo "installed $bin ($tfm, $(stat -c %s "$(root "$bin")") bytes)"
[ $full = 1 ] || exit 0

load_manifest
new_entries=()
record() { new_entries+=("$1 $2 ${3:-}"); }

# A directory we create is recorded, so uninstall removes it when it is empty again.
make_dir() {
    local d=$1 mode=$2
    if [ -d "$(root "$d")" ]; then
        if [ -n "${recorded[$d]:-}" ]; then record dir "$d"; fi
    else
        install -d -m "$mode" "$(root "$d")"
        record dir "$d"
    fi
}

# Installs a file unless something the admin owns is there: a file we installed and that is unchanged is
# updated; anything else is left alone and said so. $4=once: never replace, even our own (the policy).
put() {
    local src=$1 dst=$2 mode=$3 once=${4:-}
    local f; f=$(root "$dst")
    if [ -e "$f" ]; then
        local ours=${recorded[$dst]:-}
        if [ -z "$ours" ] || [ "${ours#file }" != "$(sum "$f")" ] || [ "$once" = once ]; then
            echo "kept $dst (exists)"
            if [ -n "$ours" ]; then record file "$dst" "${ours#file }"; fi
            return 0
        fi
    fi
    install -m "$mode" -o 0 -g 0 "$src" "$f" 2>/dev/null || install -m "$mode" "$src" "$f"
    record file "$dst" "$(sum "$f")"
    echo "installed $dst"
}

record file "$bin" "$(sum "$(root "$bin")")"
make_dir /usr/local/share 0755
make_dir "$share" 0755
make_dir "$share/hooks" 0755
put hooks/up "$share/hooks/up" 0755
put hooks/down "$share/hooks/down" 0755
if compgen -G "contrib/examples/*.json" >/dev/null; then
    make_dir "$share/examples" 0755
    for e in contrib/examples/*.json; do put "$e" "$share/examples/$(basename "$e")" 0644; done
fi

# Man pages and completions, made by the binary of its own command table (scripts/docs.sh, rendered by scdoc).
docs=$(mktemp -d)
trap 'rm -rf "$docs"' EXIT
if why=$(scripts/docs.sh "$(root "$bin")" "$docs" 2>&1); then
    for d in "$prefix/share/man" "$prefix/share/man/man8" "$prefix/share/man/man5" \
             /usr/local/share/bash-completion /usr/local/share/bash-completion/completions \
             /usr/local/share/zsh /usr/local/share/zsh/site-functions; do
        make_dir "$d" 0755
    done
    put "$docs/man/tunnel-router.8" "$prefix/share/man/man8/tunnel-router.8" 0644
    put "$docs/man/tunnel-router.json.5" "$prefix/share/man/man5/tunnel-router.json.5" 0644
    put "$docs/completions/tunnel-router.bash" /usr/local/share/bash-completion/completions/tunnel-router 0644
    put "$docs/completions/_tunnel-router" /usr/local/share/zsh/site-functions/_tunnel-router 0644
else
    echo "install.sh: warning: no man pages or completions installed: $why" >&2
fi

# The policy: root's, not writable by group or others (the binary refuses such a file). The one installed
# changes nothing by itself: the OpenVPN hook's defaults, no rules, no routes.
make_dir /etc/tunnel-router 0755
put contrib/tunnel-router.json /etc/tunnel-router/tunnel-router.json 0644 once

if [ -n "$destdir" ] || [ -d /etc/systemd/system ]; then
    make_dir /etc/systemd 0755
    make_dir /etc/systemd/system 0755
    put contrib/systemd/tunnel-router.service /etc/systemd/system/tunnel-router.service 0644
    put contrib/systemd/tunnel-router-watch.service /etc/systemd/system/tunnel-router-watch.service 0644
fi
if [ -d "$(root /etc/NetworkManager/dispatcher.d)" ]; then
    put contrib/networkmanager/90-tunnel-router /etc/NetworkManager/dispatcher.d/90-tunnel-router 0755
fi
if [ $openvpn_hook = 1 ]; then
    make_dir /etc/openvpn 0755
    put hooks/up /etc/openvpn/up 0755 once
fi

# The manifest: previous entries that this run did not rewrite, then this run's.
mkdir -p "$(root "$share")"
{
    for path in "${!recorded[@]}"; do
        written=0
        for e in "${new_entries[@]}"; do [ "$(cut -d' ' -f2 <<<"$e")" = "$path" ] && written=1 && break; done
        [ $written = 1 ] || echo "${recorded[$path]%% *} $path ${recorded[$path]#* }"
    done
    printf '%s\n' "${new_entries[@]}"
} >"$(root "$manifest").new"
mv "$(root "$manifest").new" "$(root "$manifest")"

if systemd_running; then systemctl daemon-reload; fi
echo "policy: /etc/tunnel-router/tunnel-router.json; at boot: systemctl enable --now tunnel-router; try: tunnel-router demo"
