#!/usr/bin/env bash
# Builds tunnel-router as one native-AOT executable and installs it.
#   ./install.sh                  build, install to /usr/local/sbin/tunnel-router (+ hooks, unit, example policy)
#   ./install.sh --prefix DIR     build, install to DIR/sbin/tunnel-router, touch nothing else
#   ./install.sh --uninstall      remove what a plain ./install.sh installed
set -euo pipefail
cd "$(dirname "$0")"

prefix=/usr/local
custom_prefix=0
uninstall=0
openvpn_hook=0
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix="$2"; custom_prefix=1; shift 2 ;;
        --prefix=*) prefix="${1#*=}"; custom_prefix=1; shift ;;
        --openvpn-hook) openvpn_hook=1; shift ;;
        --uninstall) uninstall=1; shift ;;
        -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
prefix=$(realpath -m "$prefix")
bin="$prefix/sbin/tunnel-router"

if [ $uninstall = 1 ]; then
    rm -f "$bin"
    echo "removed $bin"
    exit 0
fi

[ $custom_prefix = 1 ] || [ "$(id -u)" = 0 ] || { echo "install.sh: run as root, or use --prefix DIR" >&2; exit 1; }
[ "$(id -u)" = 0 ] && scripts/deps.sh build

# Native AOT: net10.0 where its NativeAOT runtime pack restores, else net9.0 (the pack for net10.0 is not in
# every registry; the binary is the same program either way).
publish() {
    local tfm=$1
    dotnet publish src/TunnelRouter/TunnelRouter.csproj -c Release -r linux-x64 -f "$tfm" \
        -p:AotTargetFramework="$tfm" -o "artifacts/publish/$tfm" -nologo -v quiet >"artifacts/publish-$tfm.log" 2>&1
}
mkdir -p artifacts
if publish net10.0; then
    tfm=net10.0
elif grep -q "NativeAOT\|ILCompiler" artifacts/publish-net10.0.log && publish net9.0; then
    tfm=net9.0
    echo "install.sh: native AOT for net10.0 is not available here (no NativeAOT runtime pack); built for net9.0 instead" >&2
else
    cat artifacts/publish-net*.log >&2
    echo "install.sh: build failed" >&2
    exit 1
fi

install -D -m 0755 "artifacts/publish/$tfm/tunnel-router" "$bin"
echo "installed $bin ($tfm, $(stat -c %s "$bin") bytes)"
