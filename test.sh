#!/usr/bin/env bash
# The one test command: unit tests and kernel tests (in network namespaces the tests create and remove),
# against the published native-AOT binary. Needs root; installs its own dependencies.
set -euo pipefail
cd "$(dirname "$0")"
[ "$(id -u)" = 0 ] || { echo "test.sh: run as root (kernel tests create network namespaces)" >&2; exit 1; }

scripts/deps.sh test
# The test flavour: the same program plus the fault point the reliability specs inject failures with
# (TUNNEL_ROUTER_FAULT_AFTER); a release build has no such point.
./install.sh --prefix artifacts/test-install --fault-injection
export TUNNEL_ROUTER_BIN="$PWD/artifacts/test-install/sbin/tunnel-router"

# The tests must never touch the host's own routing: what they may change lives in namespaces they create.
host_state() {
    ip -4 rule show; ip -6 rule show
    ip -4 route show table all; ip -6 route show table all | grep -v '^local fe80::\|^fe80::'
    sysctl net.ipv4.ip_forward net.ipv4.conf.all.rp_filter net.ipv4.conf.default.rp_filter net.ipv6.conf.all.forwarding
    nft list ruleset 2>/dev/null
    ls -lR /etc/iproute2 2>/dev/null
}
host_state >artifacts/host-before.txt

rm -rf artifacts/test-results
set +e
# Hermetic: the host's /etc/tunnel-router, /etc/iproute2 and /run/tunnel-router are replaced by decoys (a broken policy).
scripts/hermetic.sh dotnet test tests/TunnelRouter.Tests/TunnelRouter.Tests.csproj -c Release -nologo \
    --logger "trx;LogFileName=results.trx" --logger "console;verbosity=normal" \
    --results-directory artifacts/test-results "$@" 2>&1 | tee artifacts/test.log
rc=${PIPESTATUS[0]}
set -e

host_state >artifacts/host-after.txt
if ! diff -u artifacts/host-before.txt artifacts/host-after.txt >artifacts/host-diff.txt; then
    cat artifacts/host-diff.txt >&2
    echo "test.sh: the tests changed the host's routing, sysctls, nftables or /etc/iproute2 (diff above)" >&2
    rc=1
fi

trx=artifacts/test-results/results.trx
if [ -f "$trx" ]; then
    passed=$(grep -o 'passed="[0-9]*"' "$trx" | head -1 | tr -dc 0-9)
    failed=$(grep -o 'failed="[0-9]*"' "$trx" | head -1 | tr -dc 0-9)
    total=$(grep -o 'total="[0-9]*"' "$trx" | head -1 | tr -dc 0-9)
    echo
    # The failed tests' names come last, where a truncated log still shows them.
    if [ "${failed:-0}" -gt 0 ]; then
        grep -o '<UnitTestResult [^>]*outcome="Failed"' "$trx" | grep -o 'testName="[^"]*"' | sed 's/^testName="/failed: /; s/"$//' | sed 's/&quot;/"/g; s/&amp;/\&/g'
    fi
    echo "tests: ${passed:-0} passed, ${failed:-0} failed"
    [ "${total:-0}" -gt 0 ] || { echo "test.sh: no test ran" >&2; exit 1; }
fi
exit "$rc"
