#!/usr/bin/env bash
# tunnel-router watch, measured (not asserted), in a throwaway network namespace with private state:
#   W1  watch with 10,000 owned routes (a prefix file on tun0) and 1,000 events (foreign rule add/del): the CPU
#       time watch spends on them and its RSS
#   W2  restore latency: a policy rule deleted by hand until watch has put it back, p50 and p99 (within the rate
#       limit's burst, and a SIGHUP after each, so that neither the limit nor the back-off counts)
#   W3  RSS after 100,000 events (50,000 foreign routes added and deleted), against its RSS before: flat
#
#   bench/watch.sh [--samples N]     (root; TUNNEL_ROUTER_BIN=path to skip the build; run.sh --watch runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
samples=9
[ "${1:-}" = --samples ] && samples=$2
bin=${TUNNEL_ROUTER_BIN:-}
if [ -z "$bin" ]; then ./install.sh --prefix artifacts/bench-install >/dev/null; bin=$PWD/artifacts/bench-install/sbin/tunnel-router; fi
unset TUNNEL_ROUTER_BIN
ns=trbench-watch-$$
work=$(mktemp -d)
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
ip netns add "$ns"
ipn() { ip -n "$ns" "$@"; }
ipn link set lo up
ipn tuntap add tun0 mode tun
ipn addr add 10.8.0.2/24 dev tun0
ipn link set tun0 up
export TUNNEL_ROUTER_IPROUTE2DIR=$work/iproute2 TUNNEL_ROUTER_LOCKFILE=$work/run/lock TUNNEL_ROUTER_CONFIG=
for i in $(seq 0 9999); do echo "10.$((100 + i / 256)).$((i % 256)).0/24"; done >"$work/list.txt"
cat >"$work/policy.json" <<JSON
{ "Tables": { "vpn": 200 }, "FailClosed": [ "vpn" ], "Rules": [ "from 192.168.5.0/24 lookup vpn" ],
  "PrefixLists": [ { "File": "$work/list.txt", "Route": "dev tun0 table vpn" } ] }
JSON
chmod 0755 "$work"; chmod 0644 "$work/policy.json" "$work/list.txt"
ip netns exec "$ns" "$bin" apply -q -c "$work/policy.json"
ip netns exec "$ns" "$bin" watch -c "$work/policy.json" >"$work/watch.log" 2>&1 &
pid=$!
until grep -q "watch: watching" "$work/watch.log"; do sleep 0.05; done

cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }        # utime + stime, clock ticks
rss() { awk '/VmRSS/ { print $2 }' "/proc/$pid/status"; }      # KiB
tck=$(getconf CLK_TCK)

# W1: 1,000 events of a foreign rule (rules always wake watch: a flush takes the kernel's own too).
rss0=$(rss); cpu0=$(cpu)
for i in $(seq 1 500); do echo "rule add from 172.16.$((i / 256)).$((i % 256)) pref 30000 lookup main"; done >"$work/rules.add"
sed 's/^rule add/rule del/' "$work/rules.add" >"$work/rules.del"
ip -n "$ns" -batch "$work/rules.add"; ip -n "$ns" -batch "$work/rules.del"
sleep 1
cpu1=$(cpu); rss1=$(rss)

# W2: restore latency of the policy's rule.
: >"$work/lat"
for i in $(seq 1 "$samples"); do
    sleep 1
    t0=$(date +%s%N)
    ipn rule del pref 2000
    until ipn rule show pref 2000 | grep -q lookup; do :; done
    echo $(( ($(date +%s%N) - t0) / 1000 )) >>"$work/lat"
    kill -HUP "$pid"
done

# W3: 100,000 events: 50,000 foreign routes in main, added and deleted (filtered by protocol: no re-plan).
rss2=$(rss)
for i in $(seq 0 49999); do echo "route add 172.20.$((i / 256)).$((i % 256))/32 dev tun0"; done >"$work/routes.add"
sed 's/^route add/route del/' "$work/routes.add" >"$work/routes.del"
ip -n "$ns" -batch "$work/routes.add"; ip -n "$ns" -batch "$work/routes.del"
sleep 2
rss3=$(rss)

pct() { sort -n "$work/lat" | awk -v p="$1" '{ a[NR] = $1 } END { i = int((NR - 1) * p + 0.5) + 1; printf "%.1f", a[i] / 1000 }'; }
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p')"
echo "W1  10,000 owned routes, 1,000 rule events: watch CPU $(awk -v a="$cpu0" -v b="$cpu1" -v t="$tck" 'BEGIN { printf "%.0f", (b - a) * 1000 / t }') ms, RSS $((rss0 / 1024)) -> $((rss1 / 1024)) MiB"
echo "W2  restore latency over $samples deletions: p50 $(pct 0.5) ms, p99 $(pct 0.99) ms (debounce 200 ms included)"
echo "W3  RSS before 100,000 events $((rss2 / 1024)) MiB, after $((rss3 / 1024)) MiB"
echo "    watch said: $(grep -c 'was deleted by someone else' "$work/watch.log") restore line(s)"
