#!/usr/bin/env bash
# M1: the metrics scrape (issue 25): tunnel-router status --format prometheus with 100,000 owned routes in a throwaway
# network namespace, against status --json and a plain read of the same routes (ip -j route show table all), each run 5
# times; wall time (median) and peak RSS. One kernel read per scrape: the strace line counts the netlink requests a
# scrape sends (the one snapshot status reads: its dumps of links, addresses, routes and rules, whatever the number of
# routes). Then M2: the same through a running watch --metrics. Nothing is asserted: a timed test would be flaky.
#
#   bench/metrics.sh        (root; TUNNEL_ROUTER_BIN=path to skip the build)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/metrics.sh: run as root (network namespaces)" >&2; exit 1; }
bin=${TUNNEL_ROUTER_BIN:-}
unset TUNNEL_ROUTER_BIN   # the binary reads every TUNNEL_ROUTER_* variable as a configuration key
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
ip -n $ns link set wan up; ip -n $ns link set peer up; ip -n $ns link set lo up
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

# M2: the same scrape from watch's listener (watch --metrics): wall time of a GET /metrics (curl's time_total, median of
# 5) and watch's RSS before the first scrape and after the last (each scrape reads the kernel once, on its own socket).
ip netns exec $ns "$bin" watch --metrics 127.0.0.1:9477 2>"$work/watch.log" &
watch_pid=$!
trap 'kill $watch_pid 2>/dev/null || true; ip netns del $ns 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 600); do grep -q "watch: watching" "$work/watch.log" && break; sleep 0.1; done
kill -0 $watch_pid 2>/dev/null || { echo "bench/metrics.sh: watch ended:" >&2; cat "$work/watch.log" >&2; exit 1; }
# the process whose RSS counts is the binary under ip netns exec (it execs: same pid)
rss() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' /proc/$watch_pid/status; }
before=$(rss)
for _ in 1 2 3 4 5; do
    ip netns exec $ns curl -s -o /dev/null -w '%{time_total}\n' http://127.0.0.1:9477/metrics >>"$work/scrape"
done
printf '%-44s %8s %8s\n' "watch --metrics: GET /metrics" "$(sort -n "$work/scrape" | sed -n 3p | awk '{ printf "%.3f", $1 }')" \
    "$(awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' /proc/$watch_pid/status)"
echo "watch RSS before the first scrape and after the fifth: $before MB -> $(rss) MB"
strace -f -p $watch_pid -e trace=sendto,sendmsg -o "$work/strace" 2>/dev/null &
strace_pid=$!
sleep 1
ip netns exec $ns curl -s -o /dev/null http://127.0.0.1:9477/metrics
sleep 1
kill $strace_pid 2>/dev/null || true; wait $strace_pid 2>/dev/null || true
echo "send calls by watch during one listener scrape (the snapshot's netlink requests plus the HTTP answer): $(grep -c send "$work/strace" || true)"
