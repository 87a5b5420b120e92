#!/usr/bin/env bash
# Runs a command (the test suite) where the host's TunnelRouter files can be neither read nor written: in a
# private mount namespace, /etc is an overlay whose changes go to a tmpfs and which holds a deliberately broken
# /etc/tunnel-router/tunnel-router.json and iproute2 drop-ins that give the default names other numbers;
# /run/tunnel-router (when the host has one) is an empty tmpfs. A test that reads any of them fails; nothing
# outside the namespace changes.
#   scripts/hermetic.sh COMMAND [ARGS...]     (root)
set -euo pipefail
if [ "${1:-}" != --inside ]; then exec unshare -m --propagation private "$0" --inside "$@"; fi
shift
scratch=$(mktemp -d /tmp/tunnel-router-hermetic-XXXXXX)
trap 'umount -l /etc 2>/dev/null; umount -l "$scratch" 2>/dev/null; rmdir "$scratch"' EXIT
mount -t tmpfs tunnel-router-hermetic "$scratch"
mkdir "$scratch/upper" "$scratch/work"
mount -t overlay tunnel-router-hermetic -o "lowerdir=/etc,upperdir=$scratch/upper,workdir=$scratch/work" /etc
mkdir -p /etc/tunnel-router /etc/iproute2/rt_tables.d /etc/iproute2/rt_protos.d
# The names an installed tunnel-router wrote on the host (its drop-ins) are not the tests': gone from the overlay only.
rm -f /etc/iproute2/rt_tables.d/tunnel-router.conf /etc/iproute2/rt_protos.d/tunnel-router.conf
printf '{ "Table": "a broken policy that no test may read",\n' >/etc/tunnel-router/tunnel-router.json
# Numbers no test uses, so that the tests' own ip listings (which read /etc/iproute2 too) stay as they were.
printf '250\tvpn\n' >/etc/iproute2/rt_tables.d/zz-hermetic-test.conf
printf '245\ttunnel-router\n246\ttunnel-router-hook\n' >/etc/iproute2/rt_protos.d/zz-hermetic-test.conf
[ ! -d /run/tunnel-router ] || mount -t tmpfs tunnel-router-hermetic /run/tunnel-router
"$@"
