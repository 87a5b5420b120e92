#!/usr/bin/env bash
# tunnel-router watch tracking uplinks, measured (not asserted), in throwaway network namespaces with private state:
#   U1  8 uplinks (veth pairs to one router namespace that answers), each tracked with 1 s probes to the router, and
#       a Failover line over all of them: watch's CPU seconds and RSS after SECONDS (default 600), sampled every
#       minute, so a leak or a busy loop shows as a rising column.
#
#   bench/uplinks.sh [--seconds N]     (root; TUNNEL_ROUTER_BIN=path to skip the build; run.sh --uplinks runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=600
[ "${1:-}" = --seconds ] && seconds=$2
bin=${TUNNEL_ROUTER_BIN:-}
if [ -z "$bin" ]; then ./install.sh --prefix artifacts/bench-install >/dev/null; bin=$PWD/artifacts/bench-install/sbin/tunnel-router; fi
unset TUNNEL_ROUTER_BIN
gw=trbench-upgw-$$ rt=trbench-uprt-$$
work=$(mktemp -d)
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; ip netns del "$gw" 2>/dev/null || true; ip netns del "$rt" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
ip netns add "$gw"; ip netns add "$rt"
ip -n "$gw" link set lo up; ip -n "$rt" link set lo up
uplinks= tables= via=
for i in $(seq 1 8); do
    ip -n "$gw" link add "wan$i" type veth peer name "r$i" netns "$rt"
    ip -n "$gw" addr add "10.$i.0.2/24" dev "wan$i"; ip -n "$rt" addr add "10.$i.0.1/24" dev "r$i"
    ip -n "$gw" link set "wan$i" up; ip -n "$rt" link set "r$i" up
    uplinks="$uplinks${uplinks:+, }{ \"Name\": \"wan$i\", \"Interface\": \"wan$i\", \"Table\": \"wan$i\", \"Address\": \"10.$i.0.2/24\", \"Gateway\": \"10.$i.0.1\", \"Track\": \"gateway interval 1 down 3 up 3 hold 30\" }"
    tables="$tables${tables:+, }\"wan$i\": $((10 + i))"
    via="$via wan$i"
done
export TUNNEL_ROUTER_IPROUTE2DIR=$work/iproute2 TUNNEL_ROUTER_LOCKFILE=$work/run/lock TUNNEL_ROUTER_CONFIG=
cat >"$work/policy.json" <<JSON
{ "Tables": { $tables, "out": 200 }, "FailClosed": [ "out" ], "Rules": [ "from 192.168.5.0/24 lookup out" ],
  "Uplinks": [ $uplinks ], "Failover": [ "table out via$via" ] }
JSON
chmod 0755 "$work"; chmod 0644 "$work/policy.json"
ip netns exec "$gw" "$bin" watch -c "$work/policy.json" >"$work/watch.log" 2>&1 &
pid=$!
until grep -q "watch: watching" "$work/watch.log"; do sleep 0.05; done

cpu() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$pid/stat"; }
rss() { awk '/VmRSS/ { print $2 }' "/proc/$pid/status"; }
echo "U1  watch, 8 uplinks probed every second ($(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
echo "    after  CPU s   RSS KiB"
printf '    %4ss  %6s  %7s\n' 0 "$(cpu)" "$(rss)"
elapsed=0
while [ "$elapsed" -lt "$seconds" ]; do
    step=$(( seconds - elapsed < 60 ? seconds - elapsed : 60 ))
    sleep "$step"; elapsed=$((elapsed + step))
    printf '    %4ss  %6s  %7s\n' "$elapsed" "$(cpu)" "$(rss)"
done
answered=$(ip netns exec "$rt" cat /proc/net/snmp | awk '/^Icmp:/ { n++; if (n == 2) print $10 }')
echo "    echo requests the router received: $answered (8 uplinks x $seconds s: $((8 * seconds)))"
echo "    uplinks gone down meanwhile: $(grep -c 'is down' "$work/watch.log" || true)"
if [ -n "${BENCH_LOG:-}" ]; then cp "$work/watch.log" "$BENCH_LOG"; fi
