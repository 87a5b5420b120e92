#!/usr/bin/env bash
# Prepares the kernel of the QEMU test guest: Debian's own linux-image-6.1.0-*-amd64, fetched with
# `apt-get download` and unpacked with `dpkg-deb` (never installed), cut down to the kernel image and the
# modules the guest scenarios need (networking, 9p, virtio, tun/veth), with modules.dep made by depmod.
#   scripts/guest-kernel.sh DIR    prepares DIR/<version>/{vmlinuz,lib/modules/<version>} and prints DIR/<version>
# Nothing is done when DIR/<version> is complete already (the package version names the directory).
set -euo pipefail
dir=${1:?usage: scripts/guest-kernel.sh DIR}
mkdir -p "$dir"
dir=$(realpath "$dir")

# The kernel package the distribution's metapackage points at now (linux-image-amd64 → linux-image-6.1.0-N-amd64).
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
if [ -z "$pkg" ]; then
    apt-get update -qq >/dev/null
    pkg=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
fi
[ -n "$pkg" ] || { echo "guest-kernel: no linux-image-*-amd64 package found (apt-cache depends linux-image-amd64)" >&2; exit 1; }
release=${pkg#linux-image-}
out="$dir/$release"
if [ -f "$out/ready" ]; then echo "$out"; exit 0; fi

tmp=$(mktemp -d "$dir/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# apt-get download writes into the current directory; the _apt user cannot write a root-only temp dir.
# Package lists older than the mirror can name a version it no longer serves: refresh them once and retry.
if ! (cd "$tmp" && apt-get download -qq "$pkg" 2>/dev/null); then
    apt-get update -qq >/dev/null
    (cd "$tmp" && apt-get download -qq "$pkg" 2>/dev/null) || { echo "guest-kernel: apt-get download $pkg failed" >&2; exit 1; }
fi
deb=$(ls "$tmp"/*.deb)
m="./lib/modules/$release"
mkdir -p "$tmp/root"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/root" --wildcards \
    "./boot/vmlinuz-$release" "$m/modules.order" "$m/modules.builtin*" \
    "$m/kernel/net/*" "$m/kernel/lib/*" "$m/kernel/crypto/*" \
    "$m/kernel/fs/9p/*" "$m/kernel/fs/overlayfs/*" "$m/kernel/fs/netfs/*" "$m/kernel/fs/fscache/*" "$m/kernel/drivers/virtio/*" \
    "$m/kernel/drivers/net/tun.ko" "$m/kernel/drivers/net/veth.ko" "$m/kernel/drivers/net/dummy.ko"
depmod -b "$tmp/root" "$release"
rm -rf "$out"
mkdir -p "$out/lib/modules"
mv "$tmp/root/boot/vmlinuz-$release" "$out/vmlinuz"
mv "$tmp/root/lib/modules/$release" "$out/lib/modules/$release"
echo "$pkg $(dpkg-deb -f "$deb" Version)" >"$out/ready"
echo "$out"
