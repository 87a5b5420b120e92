#!/usr/bin/env bash
# Installs from Debian's packages what building and testing TunnelRouter needs, when it is missing.
# Usage: scripts/deps.sh build|package|test
#   build     what ./install.sh needs (x86-64 native AOT)
#   package   + what scripts/package.sh needs: dpkg-deb, and clang/lld with the arm64 glibc to cross compile arm64
#   test      + what the suite needs, the package specs too (lintian, mmdebstrap, systemd-nspawn, qemu-user)
# gcc-12, make, binutils and libelf1 build OpenVPN's ovpn-dco module for the QEMU guest's kernel (scripts/guest-dco.sh).
set -euo pipefail
mode=${1:-build}
case "$mode" in build|package|test) ;; *) echo "deps: unknown mode '$mode' (build, package or test)" >&2; exit 2 ;; esac
# scdoc renders the man pages (scripts/docs.sh); zsh and mandoc let the suite load the zsh completion and lint the pages.
# prometheus brings promtool, which checks status --format prometheus in the suite.
want=(iproute2 scdoc)
# arm64 native AOT from x86-64: the ILCompiler drives clang with lld against the arm64 glibc of the cross packages.
[ "$mode" = build ] || want+=(dpkg-dev clang lld gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu libc6-dev-arm64-cross)
[ "$mode" = test ] && want+=(zsh mandoc lintian mmdebstrap systemd-container qemu-user-static
    nftables iptables openvpn openssl user-mode-linux kmod procps ipcalc-ng systemd iputils-ping strace qemu-system-x86 busybox-static cpio bird2 frr
    gcc-12 make binutils libelf1 prometheus)
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
