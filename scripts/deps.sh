#!/usr/bin/env bash
# Installs from Debian's packages what building and testing TunnelRouter needs, when it is missing.
# Usage: scripts/deps.sh build|test
# gcc-12, make, binutils and libelf1 build OpenVPN's ovpn-dco module for the QEMU guest's kernel (scripts/guest-dco.sh).
set -euo pipefail
# scdoc renders the man pages (scripts/docs.sh); zsh and mandoc let the suite load the zsh completion and lint the pages.
want=(iproute2 scdoc)
[ "${1:-build}" = test ] && want+=(zsh mandoc nftables iptables openvpn openssl user-mode-linux kmod procps ipcalc-ng systemd iputils-ping strace qemu-system-x86 busybox-static cpio bird2 frr
    gcc-12 make binutils libelf1)
missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v dotnet >/dev/null || { echo "deps: the .NET SDK (dotnet) is required to build" >&2; exit 1; }
