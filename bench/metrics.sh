#!/usr/bin/env bash
# M1: the metrics scrape (issue 25): tunnel-router status --format prometheus with 100,000 owned routes in a throwaway
# network namespace, against status --json and a plain read of the same routes (ip -j route show table all), each run 5
# times; wall time (median) and peak RSS. One kernel read per scrape: the strace line counts the netlink requests a
# scrape sends (the one snapshot status reads: its dumps of links, addresses, routes and rules, whatever the number of
# routes). Nothing is asserted: a timed test would be flaky.
#
#   bench/metrics.sh        (root; TUNNEL_ROUTER_BIN=path to skip the build)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/metrics.sh: run as root (network namespaces)" >&2; exit 1; }
bin=${TUNNEL_ROUTER_BIN:-}
if [ -z "$bin" ]; then
    ./install.sh --prefix artifacts/bench-install >/dev/null
    bin=$PWD/artifacts/bench-install/sbin/tunnel-router
fi
work=$(mktemp -d /tmp/tunnel-router-metrics.XXXXXX)
ns=trm$$
trap 'ip netns del $ns 2>/dev/null || true; rm -rf "$work"' EXIT
chmod 0755 "$work"
mkdir -p "$work/iproute2"
python3 - "$work" <<'PY'
import sys
w = sys.argv[1]
with open(f"{w}/prefixes.txt", "w") as f:
    f.write("".join(f"{10 + i // 65536}.{(i // 256) % 256}.{i % 256}.0/24\n" for i in range(100_000)))
with open(f"{w}/policy.json", "w") as f:
    f.write('{ "Tables": { "wan": 100, "vpn": 200 }, "FailClosed": [ "vpn" ], '
            f'"PrefixLists": [ {{ "File": "{w}/prefixes.txt", "Route": "via 192.168.1.1 dev wan table wan" }} ] }}')
PY
chmod 0644 "$work"/*.txt "$work"/*.json
ip netns add $ns
ip -n $ns link add wan type veth peer name peer
ip -n $ns addr add 192.168.1.2/24 dev wan
ip -n $ns link set wan up; ip -n $ns link set peer up
export TUNNEL_ROUTER_IPROUTE2DIR=$work/iproute2 TUNNEL_ROUTER_LOCKFILE=$work/lock TUNNEL_ROUTER_CONFIG=$work/policy.json
ip netns exec $ns "$bin" apply -q
owned=$(ip -n $ns route show table 100 | wc -l)

# median wall seconds and peak RSS (MB) of 5 runs: "S MB"
measure() {
    for _ in 1 2 3 4 5; do /usr/bin/time -f "%e %M" -a -o "$work/t" ip netns exec $ns "$@" >/dev/null 2>&1; done
    sort -n "$work/t" | sed -n 3p | awk '{ printf "%.3f %.1f", $1, $2 / 1024 }'; rm -f "$work/t"
}
printf '%-44s %8s %8s\n' "100,000 owned routes ($owned in table wan)" "s" "MB"
printf '%-44s %8s %8s\n' "status --format prometheus" $(measure "$bin" status --format prometheus)
printf '%-44s %8s %8s\n' "status --json" $(measure "$bin" status --json)
printf '%-44s %8s %8s\n' "ip -j route show table all (baseline)" $(measure /usr/sbin/ip -j route show table all)
sends=$(ip netns exec $ns strace -f -e trace=sendto,sendmsg "$bin" status --format prometheus 2>&1 >/dev/null | grep -c '^\(\[pid *[0-9]*\] \)\?send' || true)
echo "netlink send calls per scrape (one snapshot): $sends"
echo "samples: $(ip netns exec $ns "$bin" status --format prometheus | grep -vc '^#')"
