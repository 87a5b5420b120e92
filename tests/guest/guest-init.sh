#!/bin/sh
# PID 1 of a test guest that runs on the host's root filesystem, read-only: a User-Mode Linux guest
# (hostfs) or a QEMU guest (virtio-9p, after tests/guest/qemu-init). Everything the guest writes goes to
# tmpfs mounted here, so the host's files are never changed.
# The kernel command line passes (as environment): TR_SCENARIO (script to run), TR_BIN (the published
# tunnel-router), TR_WORK (a host directory with the test's policies). Results are lines "@@ KEY VALUE"
# on the console, which the test reads; the guest always powers off, whatever happens.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs -o mode=755 tmpfs /run
# What the test hands over may live under the host's /tmp (its policies, a checkout there with its scenario
# scripts and published binary), which the guest's own /tmp hides: bind each under /run first.
if [ -n "${TR_WORK:-}" ]; then
    mkdir -p /run/work && mount --bind "$TR_WORK" /run/work && export TR_WORK=/run/work
fi
if [ -n "${TR_SCENARIO:-}" ]; then
    mkdir -p /run/scenarios && mount --bind "$(dirname "$TR_SCENARIO")" /run/scenarios &&
        export TR_SCENARIO="/run/scenarios/$(basename "$TR_SCENARIO")"
fi
if [ -n "${TR_BIN:-}" ]; then
    : >/run/tunnel-router && mount --bind "$TR_BIN" /run/tunnel-router && export TR_BIN=/run/tunnel-router
fi
case "${TR_BED:-}" in
uml)
    # The Debian user-mode-linux package ships its modules under /usr/lib/uml/modules/<version>, where
    # modprobe does not look (and /lib/modules cannot be created on the read-only root): insmod by path, in
    # dependency order (modules.dep).
    modules=$(ls -d /usr/lib/uml/modules/6.1.* 2>/dev/null | head -1)
    if [ -z "$modules" ]; then
        echo "@@ fatal no UML modules under /usr/lib/uml/modules"
    else
        for m in lib/crc-ccitt net/ipv6/ipv6 net/ipv4/gre net/ipv4/ip_tunnel net/ipv4/ip_gre \
                 net/ipv6/tunnel6 net/ipv6/ip6_tunnel net/ipv6/ip6_gre drivers/net/veth; do
            insmod "$modules/kernel/$m.ko" || echo "@@ fatal insmod $m failed"
        done
    fi ;;
qemu)
    # The initramfs loaded what the scenarios need. The rest of Debian's module tree (TR_MODULES, cut down
    # by scripts/guest-kernel.sh) goes where modprobe looks, so a module tunnel-router asks for loads.
    if [ -n "${TR_MODULES:-}" ] && [ -n "${TR_GUEST_KERNEL_RELEASE:-}" ]; then
        mkdir -p "/lib/modules/$TR_GUEST_KERNEL_RELEASE" &&
            mount --bind "$TR_MODULES" "/lib/modules/$TR_GUEST_KERNEL_RELEASE" ||
            echo "@@ fatal the guest kernel's modules ($TR_MODULES) could not be mounted"
    fi ;;
*) echo "@@ fatal TR_BED is '${TR_BED:-}', not uml or qemu" ;;
esac
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /etc/iproute2

echo "@@ bed ${TR_BED:-} $(uname -r)"
echo "@@ ready $(cut -d' ' -f1 /proc/uptime)"
if [ -x "$TR_SCENARIO" ] || [ -f "$TR_SCENARIO" ]; then
    sh "$TR_SCENARIO"
    echo "@@ scenario.rc $?"
else
    echo "@@ fatal no scenario '$TR_SCENARIO'"
fi
echo "@@ end $(cut -d' ' -f1 /proc/uptime)"
poweroff -f
