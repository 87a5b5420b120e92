#!/usr/bin/env bash
# Adds OpenVPN's data channel offload module (ovpn-dco-v2) to the QEMU guest's kernel that
# scripts/guest-kernel.sh prepared. The module's source (Debian's openvpn-dco-dkms) and the headers of exactly
# that kernel's release (linux-headers-<release>, its -common part, linux-kbuild) are fetched with
# `apt-get download` and unpacked with dpkg-deb (never installed; the host's own kernel is not used, and nothing
# is loaded on the host). The module is built with Debian's gcc-12 against those headers, goes to
# lib/modules/<release>/updates/ of the guest's module tree, and depmod runs there.
#   scripts/guest-dco.sh KERNEL_DIR    (the directory guest-kernel.sh printed) prints KERNEL_DIR
# Nothing is done when KERNEL_DIR/dco-ready exists.
set -euo pipefail
kdir=$(realpath "${1:?usage: scripts/guest-dco.sh KERNEL_DIR}")
[ -f "$kdir/ready" ] || { echo "guest-dco: $kdir is not a kernel prepared by scripts/guest-kernel.sh" >&2; exit 1; }
if [ -f "$kdir/dco-ready" ]; then echo "$kdir"; exit 0; fi
release=$(basename "$(ls -d "$kdir"/lib/modules/*/ | head -1)")
# The image's package version ("linux-image-6.1.0-57-amd64 6.1.192-3"): the headers must be of that very build.
version=$(cut -d' ' -f2 "$kdir/ready")
for tool in make gcc-12 ld strip depmod modinfo; do
    command -v "$tool" >/dev/null || { echo "guest-dco: needs $tool (scripts/deps.sh test installs it)" >&2; exit 1; }
done

tmp=$(mktemp -d "$kdir/.dco.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp" # apt-get download hands the file to the _apt user, who must be able to write here.
fetch() {
    (cd "$tmp" && apt-get download -qq "$@" 2>/dev/null) && return 0
    apt-get update -qq >/dev/null
    (cd "$tmp" && apt-get download -qq "$@" 2>/dev/null)
}
# linux-headers-<release> depends on its -common part and on linux-kbuild-<major.minor> (the prebuilt build tools).
deps=$(apt-cache depends "linux-headers-$release" 2>/dev/null | sed -n 's/^ *Depends: \(linux-\(headers\|kbuild\)-[^ <]*\)$/\1/p')
if [ -z "$deps" ]; then
    apt-get update -qq >/dev/null
    deps=$(apt-cache depends "linux-headers-$release" | sed -n 's/^ *Depends: \(linux-\(headers\|kbuild\)-[^ <]*\)$/\1/p')
fi
[ -n "$deps" ] || { echo "guest-dco: linux-headers-$release not found (apt-cache depends)" >&2; exit 1; }
wanted=("linux-headers-$release=$version" openvpn-dco-dkms)
for d in $deps; do
    case $d in linux-headers-*) wanted+=("$d=$version") ;; *) wanted+=("$d") ;; esac
done
fetch "${wanted[@]}" || { echo "guest-dco: apt-get download ${wanted[*]} failed" >&2; exit 1; }
mkdir "$tmp/root"
for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done

headers="$tmp/root/usr/src/linux-headers-$release"
src=$(ls -d "$tmp"/root/usr/src/ovpn-dco-*/ | head -1)
[ -f "$headers/Makefile" ] && [ -n "$src" ] || { echo "guest-dco: the unpacked packages lack headers or the module's source" >&2; exit 1; }
# The flavour's Makefile includes the -common one by its absolute path under /usr/src: point it at the unpacked one.
sed -i "s|^include /usr/src/|include $tmp/root/usr/src/|" "$headers/Makefile"
log="$tmp/build.log"
if ! make -C "$src" KERNEL_SRC="$headers" REVISION="$(dpkg-deb -f "$tmp"/openvpn-dco-dkms_*.deb Version)" >"$log" 2>&1; then
    tail -30 "$log" >&2
    echo "guest-dco: building ovpn-dco-v2 against linux-headers-$release failed" >&2
    exit 1
fi
ko="$src/drivers/net/ovpn-dco/ovpn-dco-v2.ko"
[ -f "$ko" ] || { echo "guest-dco: the build made no ovpn-dco-v2.ko" >&2; exit 1; }
# The module must be for the guest's kernel, never for the host's.
magic=$(modinfo -F vermagic "$ko")
case "$magic" in "$release "*) ;; *) echo "guest-dco: built for '$magic', not $release" >&2; exit 1 ;; esac
mkdir -p "$kdir/lib/modules/$release/updates"
strip --strip-debug -o "$kdir/lib/modules/$release/updates/ovpn-dco-v2.ko" "$ko"
depmod -b "$kdir" "$release"
echo "openvpn-dco-dkms $(dpkg-deb -f "$tmp"/openvpn-dco-dkms_*.deb Version) built against linux-headers-$release $version" >"$kdir/dco-ready"
echo "$kdir"
