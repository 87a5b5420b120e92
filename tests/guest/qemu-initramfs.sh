#!/bin/sh
# Builds the QEMU guest's initramfs: static busybox, tests/guest/qemu-init as /init, and the modules it
# loads before it mounts the host's root over virtio-9p (each with its dependencies from modules.dep, in
# load order).   tests/guest/qemu-initramfs.sh KERNEL_DIR OUT.cpio
# KERNEL_DIR is what scripts/guest-kernel.sh prepared: vmlinuz and lib/modules/<release>.
set -eu
kdir=$1 out=$2
here=$(dirname "$(realpath "$0")")
# Debian's busybox-static puts a statically linked busybox here (the initramfs has no libc).
busybox=/bin/busybox
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed" ||
    { echo "qemu-initramfs: needs Debian's busybox-static (./test.sh installs it)" >&2; exit 1; }
mods=$(ls -d "$kdir"/lib/modules/* | head -1)
release=$(basename "$mods")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/dev" "$work/proc" "$work/sys" "$work/newroot" "$work/modules"
cp "$busybox" "$work/bin/busybox"
for a in sh mount umount mkdir insmod switch_root poweroff cat echo sleep; do ln -s busybox "$work/bin/$a"; done
cp "$here/qemu-init" "$work/init"
chmod 755 "$work/init"

# The modules /init loads, in this order, each after its own dependencies: virtio and 9p to reach the
# host's root; GRE (v4 and v6), tun and veth for the scenarios.
want="virtio_pci 9pnet_virtio 9p overlay gre ip_gre ip6_gre veth tun dummy"
: >"$work/modules/order"
for w in $want; do
    line=$(grep -E "/$w\.ko:" "$mods/modules.dep") || { echo "qemu-initramfs: module $w not in $mods/modules.dep" >&2; exit 1; }
    target=${line%%:*}
    # modules.dep lists a module's dependencies so that loading them from last to first works.
    for dep in $(echo "${line#*:}" | tr ' ' '\n' | sed '/^$/d' | tac) "$target"; do
        name=$(basename "$dep")
        grep -qx "$name" "$work/modules/order" && continue
        cp "$mods/$dep" "$work/modules/$name"
        echo "$name" >>"$work/modules/order"
    done
done
echo "$release" >"$work/modules/release"
(cd "$work" && find . | cpio -o -H newc --quiet) >"$out"
