#!/usr/bin/env bash
# The one test command: unit tests and kernel tests (in network namespaces the tests create and remove),
# against the published native-AOT binary. Needs root; installs its own dependencies.
set -euo pipefail
cd "$(dirname "$0")"
[ "$(id -u)" = 0 ] || { echo "test.sh: run as root (kernel tests create network namespaces)" >&2; exit 1; }

scripts/deps.sh test
./install.sh --prefix artifacts/test-install
export TUNNEL_ROUTER_BIN="$PWD/artifacts/test-install/sbin/tunnel-router"

rm -rf artifacts/test-results
set +e
dotnet test tests/TunnelRouter.Tests/TunnelRouter.Tests.csproj -c Release -nologo \
    --logger "trx;LogFileName=results.trx" --logger "console;verbosity=normal" \
    --results-directory artifacts/test-results "$@" 2>&1 | tee artifacts/test.log
rc=${PIPESTATUS[0]}
set -e

trx=artifacts/test-results/results.trx
if [ -f "$trx" ]; then
    passed=$(grep -o 'passed="[0-9]*"' "$trx" | head -1 | tr -dc 0-9)
    failed=$(grep -o 'failed="[0-9]*"' "$trx" | head -1 | tr -dc 0-9)
    total=$(grep -o 'total="[0-9]*"' "$trx" | head -1 | tr -dc 0-9)
    echo
    echo "tests: ${passed:-0} passed, ${failed:-0} failed"
    [ "${total:-0}" -gt 0 ] || { echo "test.sh: no test ran" >&2; exit 1; }
fi
exit "$rc"
