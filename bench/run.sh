#!/usr/bin/env bash
# TunnelRouter's benchmarks, each side by side with what it replaces, in one go, in a throwaway network
# namespace (and a private mount namespace, so /etc/iproute2 and /run/tunnel-router are tmpfs copies):
#   P1  the OpenVPN hook "up" for the eduVPN scenario vs the eduVPN up script (bench/eduvpn-up.sh)
#   P2  apply a policy of 10,000 routes + 1,000 rules from empty vs ip -batch with the same lines; the same
#       with 100,000 routes
#   P3  apply again with all of it in place (dump + diff, nothing to change) vs reading the state
#       (ip route show table all + ip rule show), at 10,000 and 100,000 routes
#   P4  peak RSS during P2 (10,000 and 100,000 routes), and the binary's size
#   P5  scale: a prefix file of N IPv4 routes (PrefixLists) into one table, N = 1k, 10k, 100k (and 1M with
#       --million): apply from empty vs ip -batch of the same routes, apply with nothing to change vs
#       reading the state (ip route show table all + ip rule show), peak RSS
#   W1-W3 tunnel-router watch (events, restore latency, RSS): bench/watch.sh, run with --watch
#   B1    bounded work for hostile input within the size caps, vs jq / wc: bench/bounded.sh, run with --bounded
#   U1    tunnel-router watch tracking 8 uplinks with 1 s probes: CPU seconds and RSS over 10 minutes: bench/uplinks.sh,
#         run with --uplinks
#   N1    nexthop objects against plain routes: 10,000 owned routes per family added and moved, and their slab memory:
#         bench/nexthops.sh, run with --nexthops
# Prints a table of medians (min-max) and ratios. Runs are interleaved in rounds, so a busy machine slows
# both sides alike. Benchmarks only: nothing here is asserted by the test suite.
#
#   bench/run.sh [--rounds N] [--markdown FILE]     (root; TUNNEL_ROUTER_BIN=path to skip the build)
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD

rounds=5
markdown=
inside=
million=
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --markdown) markdown=$2; shift 2 ;;
        --inside) inside=$2; shift 2 ;;
        --million) million=1; shift ;;
        --watch) shift; exec bench/watch.sh "$@" ;;
        --bounded) shift; exec bench/bounded.sh "$@" ;;
        --uplinks) shift; exec bench/uplinks.sh "$@" ;;
        --nexthops) shift; exec bench/nexthops.sh "$@" ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "bench/run.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

routes=10000
rules=1000

# ---------------------------------------------------------------------------------------------------------
# Inside the namespaces: prepare and measure; results go to $work as hyperfine JSON and plain numbers.
if [ -n "$inside" ]; then
    work=$inside
    # Configuration comes from the defaults, as on a host without a policy file; TUNNEL_ROUTER_BIN and
    # friends in the caller's environment would be read as configuration keys.
    for v in $(compgen -e); do case $v in TUNNEL_ROUTER_*) unset "$v" ;; esac; done
    bin=$(cat "$work/bin")
    rounds=$(cat "$work/rounds")
    quiet=(--style none)
    [ -z "${BENCH_TRACE:-}" ] || quiet=(--show-output)
    # The host's iproute2 files and lock directory stay untouched: tmpfs over both, in this mount namespace
    # (0755, as on a host: tunnel-router refuses a lock or names directory others can write).
    mount -t tmpfs -o mode=0755 tunnel-router-bench /etc/iproute2
    printf '255\tlocal\n254\tmain\n253\tdefault\n0\tunspec\n200\tvpn\n' >/etc/iproute2/rt_tables
    mkdir -p /run/tunnel-router && mount -t tmpfs -o mode=0755 tunnel-router-bench /run/tunnel-router

    ip link set lo up
    ip tuntap add dev tun0 mode tun
    ip addr add 10.10.10.1/24 dev tun0
    ip addr add fd00:4242:4242:4242::1/64 dev tun0
    ip link set tun0 up

    # OpenVPN's environment for topology subnet, IPv4 /24 and IPv6 /64 (PATH kept: the script runs cut).
    export script_type=up script_context=init dev=tun0 dev_type=tun tun_mtu=1500 \
        ifconfig_local=10.10.10.1 ifconfig_netmask=255.255.255.0 \
        ifconfig_ipv6_local=fd00:4242:4242:4242::1 ifconfig_ipv6_netbits=64 verb=3 daemon=0 config=server.conf
    args="tun0 1500 0 10.10.10.1 255.255.255.0 init"
    flush200="sh -c 'ip -4 route flush table 200 2>/dev/null; ip -6 route flush table 200 2>/dev/null; true'"

    "$bin" $args >/dev/null 2>&1
    [ "$(ip -4 route show table 200 proto 148 | wc -l)+$(ip -6 route show table 200 proto 148 | wc -l)" = "1+1" ] \
        || { echo "bench: tunnel-router up did not install the eduVPN routes" >&2; exit 1; }
    eval "$flush200"
    "$here/bench/eduvpn-up.sh" $args >/dev/null
    [ "$(ip -4 route show table 200 | wc -l)+$(ip -6 route show table 200 | wc -l)" = "1+1" ] \
        || { echo "bench: the eduVPN script did not install its routes (ipcalc-ng?)" >&2; exit 1; }

    for r in $(seq "$rounds"); do
        hyperfine -N "${quiet[@]}" --warmup 3 --runs 20 --prepare "$flush200" \
            --export-json "$work/p1-$r.json" \
            -n tunnel-router "$bin $args" \
            -n script "$here/bench/eduvpn-up.sh $args" >/dev/null
    done
    eval "$flush200"

    # P2/P3: table 300, tun0; the batch lines carry the protocol apply sets, so both make the same objects.
    # ip rule flush deletes while it dumps and leaves some of 800 rules behind: repeat until none is left.
    emptied="sh -c 'ip -4 route flush table 300 2>/dev/null; ip -6 route flush table 300 2>/dev/null; for f in -4 -6; do while ip -N \$f rule show | grep -q proto.147; do ip \$f rule flush protocol 147; done; done'"
    read_state="sh -c 'ip route show table all >/dev/null; ip rule show >/dev/null'"
    cd "$work"
    for size in $(cat "$work/p2-sizes"); do
        policy=$work/policy-$size.json
        eval "$emptied"
        "$bin" apply -q -c "$policy" || { echo "bench: apply of the P2 policy ($size routes) failed" >&2; exit 1; }
        # 10,000 routes: 2 runs per side and round; 100,000 (a second each for ip -batch): 1.
        runs=2; noop=4; [ "$size" -le 10000 ] || { runs=1; noop=2; }
        for r in $(seq "$rounds"); do
            hyperfine -N "${quiet[@]}" --runs "$runs" --prepare "$emptied" \
                --export-json "$work/p2-$size-$r.json" \
                -n tunnel-router "$bin apply -q -c $policy" \
                -n "ip -batch" "sh -c 'ip -4 -batch $work/v4-$size.batch && ip -6 -batch $work/v6-$size.batch'" >/dev/null
            # What ip -batch left is exactly the policy: apply has nothing to change.
            "$bin" plan -q -c "$policy" >/dev/null \
                || { echo "bench: after P2 ($size routes) the plan is not empty; P3 would not measure a steady state" >&2; exit 1; }
            hyperfine -N "${quiet[@]}" --warmup 1 --runs "$noop" \
                --export-json "$work/p3-$size-$r.json" \
                -n tunnel-router "$bin apply -q -c $policy" \
                -n read "$read_state" >/dev/null
        done
        [ "$(ip -4 route show table 300 proto 147 | wc -l)+$(ip -6 route show table 300 proto 147 | wc -l)" = "$((size * 8 / 10))+$((size * 2 / 10))" ] \
            || { echo "bench: the policy's routes ($size) are not all in table 300" >&2; exit 1; }

        # P4: peak RSS of apply from empty (and of the two ip -batch processes, for comparison).
        for r in $(seq "$rounds"); do
            eval "$emptied"
            /usr/bin/time -f %M -o "$work/rss-$size-$r" "$bin" apply -q -c "$policy"
            eval "$emptied"
            /usr/bin/time -f %M -o "$work/rss-ip4-$size-$r" ip -4 -batch "$work/v4-$size.batch"
            /usr/bin/time -f %M -o "$work/rss-ip6-$size-$r" ip -6 -batch "$work/v6-$size.batch"
        done
        eval "$emptied"
    done

    # P5: prefix files into table 400, one run per size and side (the sizes make each run long enough).
    # Emptied by making tun0 anew: the kernel drops a device's routes with it at once, while "ip route flush"
    # deletes a million routes one by one for minutes.
    empty400="sh -c 'ip link del tun0; ip tuntap add dev tun0 mode tun; ip addr add 10.10.10.1/24 dev tun0; ip link set tun0 up'"
    for n in $(cat "$work/sizes"); do
        eval "$empty400"
        hyperfine -N "${quiet[@]}" --runs 1 --prepare "$empty400" --export-json "$work/p5-apply-$n.json" \
            -n tunnel-router "$bin apply -q -c $work/prefix-$n.json" \
            -n "ip -batch" "ip -4 -batch $work/prefix-$n.batch" >/dev/null
        "$bin" apply -q -c "$work/prefix-$n.json"
        [ "$(ip -4 route show table 400 | wc -l)" = "$n" ] || { echo "bench: P5 $n: the routes are not all in table 400" >&2; exit 1; }
        hyperfine -N "${quiet[@]}" --runs 2 --export-json "$work/p5-noop-$n.json" \
            -n tunnel-router "$bin apply -q -c $work/prefix-$n.json" \
            -n read "sh -c 'ip route show table all >/dev/null; ip rule show >/dev/null'" >/dev/null
        eval "$empty400"
        /usr/bin/time -f %M -o "$work/p5-rss-$n" "$bin" apply -q -c "$work/prefix-$n.json"
        /usr/bin/time -f %M -o "$work/p5-rss-noop-$n" "$bin" apply -q -c "$work/prefix-$n.json"
        eval "$empty400"
    done
    exit 0
fi

# ---------------------------------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || { echo "bench/run.sh: run as root (it creates a network namespace)" >&2; exit 1; }
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
[ -x /usr/bin/ipcalc-ng ] || need+=(ipcalc-ng)
[ -x /usr/bin/time ] || need+=(time)
command -v jq >/dev/null || need+=(jq)
if [ ${#need[@]} -gt 0 ]; then
    echo "bench: installing ${need[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

bin=${TUNNEL_ROUTER_BIN:-}
if [ -z "$bin" ]; then
    ./install.sh --prefix artifacts/bench-install >&2
    bin=$here/artifacts/bench-install/sbin/tunnel-router
fi
bin=$(realpath "$bin")

work=$(mktemp -d -t tunnel-router-bench-XXXXXX)
ns=trbench-$$
cleanup() { ip netns del "$ns" 2>/dev/null || true; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
echo "$bin" >"$work/bin"
echo "$rounds" >"$work/rounds"

# The P2 policies and the same lines for ip -batch: of N routes, 80% IPv4 /24s and 20% IPv6 /64s, and 1,000 rules (800
# IPv4, 200 IPv6), N = 10,000 and 100,000.
p2sizes="$routes 100000"
echo "$p2sizes" >"$work/p2-sizes"
for size in $p2sizes; do
    awk -v n="$size" -v rules="$rules" 'BEGIN {
        print "{ \"Rules\": ["
        for (i = 0; i < rules; i++) {
            from = (i < rules * 8 / 10) ? sprintf("100.64.%d.%d", int(i / 250), i % 250) : sprintf("fd00:ff:%x::/64", i)
            printf "  \"from %s lookup 300 pref %d\"%s\n", from, 5000 + i, (i < rules - 1) ? "," : ""
        }
        print "], \"Routes\": ["
        for (i = 0; i < n; i++) {
            # 10.1.0.0/24, 10.1.1.0/24 ... 10.1.249.0/24, 10.2.0.0/24 ...; from 63,500 on in 11.x.
            if (i < n * 8 / 10) { a = int(i / 250); dst = sprintf("%d.%d.%d.0/24", 10 + int(a / 254), a % 254 + 1, i % 250) }
            else { j = i - n * 8 / 10; dst = sprintf("fd00:%x:%x::/64", int(j / 250) + 1, j % 250) }
            printf "  \"%s dev tun0 table 300\"%s\n", dst, (i < n - 1) ? "," : ""
        }
        print "] }"
    }' >"$work/policy-$size.json"
    chmod 600 "$work/policy-$size.json"
    jq -r '.Rules[] | "rule add \(.) protocol 147"' "$work/policy-$size.json" | grep -v ':' >"$work/v4-$size.batch"
    jq -r '.Routes[] | "route add \(.) proto 147"' "$work/policy-$size.json" | grep -v 'fd00:' >>"$work/v4-$size.batch"
    jq -r '.Rules[] | "rule add \(.) protocol 147"' "$work/policy-$size.json" | grep ':' >"$work/v6-$size.batch"
    jq -r '.Routes[] | "route add \(.) proto 147"' "$work/policy-$size.json" | grep 'fd00:' >>"$work/v6-$size.batch"
done

# P5: prefix files of N distinct IPv4 /24s, and the same routes for ip -batch.
sizes="1000 10000 100000"
[ -z "$million" ] || sizes="$sizes 1000000"
echo "$sizes" >"$work/sizes"
for n in $sizes; do
    awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) { a = 16 + int(i / 65536); b = int(i / 256) % 256; c = i % 256; printf "%d.%d.%d.0/24\n", a, b, c } }' >"$work/prefix-$n.txt"
    printf '{ "Tables": { "bulk": 400 }, "PrefixLists": [ { "File": "%s", "Route": "dev tun0 table bulk" } ] }\n' "$work/prefix-$n.txt" >"$work/prefix-$n.json"
    chmod 600 "$work/prefix-$n.json" "$work/prefix-$n.txt"
    sed 's/^\(.*\)$/route add \1 dev tun0 table 400 proto 147/' "$work/prefix-$n.txt" >"$work/prefix-$n.batch"
done

load=$(cut -d' ' -f1-3 /proc/loadavg)
ip netns add "$ns"
echo "bench: $rounds interleaved rounds in namespace $ns ..." >&2
ip netns exec "$ns" unshare -m --propagation private bash ${BENCH_TRACE:+-x} "$here/bench/run.sh" --inside "$work"

# ---------------------------------------------------------------------------------------------------------
# Statistics over every round: median (min-max) in ms, CPU time (user+sys) per run.
times() { jq -r --arg n "$2" '.results[] | select(.command == $n) | .times[]' "$work"/$1-*.json; }
cpu() { jq -r --arg n "$2" '.results[] | select(.command == $n) | (.user + .system)' "$work"/$1-*.json; }
stat3() { sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.6f %.6f %.6f %d\n", m, v[1], v[NR], NR }'; }
ms() { awk -v m="$1" -v lo="$2" -v hi="$3" 'BEGIN { printf "%.1f (%.1f–%.1f)", m * 1000, lo * 1000, hi * 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

read -r p1a p1a_lo p1a_hi p1a_n < <(times p1 tunnel-router | stat3)
read -r p1b p1b_lo p1b_hi p1b_n < <(times p1 script | stat3)
read -r p1a_cpu _ < <(cpu p1 tunnel-router | stat3)
read -r p1b_cpu _ < <(cpu p1 script | stat3)
size=$(stat -c %s "$bin")
mb() { awk -v a="$1" -v lo="$2" -v hi="$3" 'BEGIN { printf "%.1f (%.1f–%.1f)", a / 1024, lo / 1024, hi / 1024 }'; }
p2rows=
for n in $(cat "$work/p2-sizes"); do
    read -r p2a p2a_lo p2a_hi p2a_n < <(times "p2-$n" tunnel-router | stat3)
    read -r p2b p2b_lo p2b_hi _ < <(times "p2-$n" "ip -batch" | stat3)
    read -r p2a_cpu _ < <(cpu "p2-$n" tunnel-router | stat3)
    read -r p2b_cpu _ < <(cpu "p2-$n" "ip -batch" | stat3)
    read -r p3a p3a_lo p3a_hi p3a_n < <(times "p3-$n" tunnel-router | stat3)
    read -r p3b p3b_lo p3b_hi _ < <(times "p3-$n" read | stat3)
    read -r p3a_cpu _ < <(cpu "p3-$n" tunnel-router | stat3)
    read -r p3b_cpu _ < <(cpu "p3-$n" read | stat3)
    read -r rss rss_lo rss_hi _ < <(cat "$work"/rss-$n-[0-9]* | stat3)
    read -r rss_ip _ < <(paste "$work"/rss-ip4-$n-* "$work"/rss-ip6-$n-* | tr '\t' '\n' | stat3)
    p2rows="$p2rows
| P2 \`apply\` $n routes + $rules rules from empty, ms ($p2a_n runs) | $(ms "$p2a" "$p2a_lo" "$p2a_hi") | \`ip -4/-6 -batch\`: $(ms "$p2b" "$p2b_lo" "$p2b_hi") | $(ratio "$p2a" "$p2b") ($(ratio "$p2a_cpu" "$p2b_cpu")) | ≤ 0.5 |
| P3 \`apply\` again at $n, nothing to change, ms ($p3a_n runs) | $(ms "$p3a" "$p3a_lo" "$p3a_hi") | reading the state: $(ms "$p3b" "$p3b_lo" "$p3b_hi") | $(ratio "$p3a" "$p3b") ($(ratio "$p3a_cpu" "$p3b_cpu")) | ≤ 2 |
| P4 peak RSS of the P2 apply at $n, MB | $(mb "$rss" "$rss_lo" "$rss_hi") | \`ip -batch\`: $(awk -v a="$rss_ip" 'BEGIN { printf "%.1f", a / 1024 }') | – | ≤ 64 MB at 100k |"
done
mean() { jq -r --arg n "$2" '.results[] | select(.command == $n) | .median' "$1"; }
scale="| N routes (prefix file, one table) | apply from empty, ms | \`ip -batch\`, ms | ratio | no-op apply, ms | \`ip route show table all\` + \`ip rule show\`, ms | ratio | peak RSS apply / no-op, MB |
|---|---|---|---|---|---|---|---|"
for n in $(cat "$work/sizes"); do
    a=$(mean "$work/p5-apply-$n.json" tunnel-router); b=$(mean "$work/p5-apply-$n.json" "ip -batch")
    c=$(mean "$work/p5-noop-$n.json" tunnel-router); d=$(mean "$work/p5-noop-$n.json" read)
    scale="$scale
| $n | $(awk -v x="$a" 'BEGIN { printf "%.0f", x * 1000 }') | $(awk -v x="$b" 'BEGIN { printf "%.0f", x * 1000 }') | $(ratio "$a" "$b") | $(awk -v x="$c" 'BEGIN { printf "%.0f", x * 1000 }') | $(awk -v x="$d" 'BEGIN { printf "%.0f", x * 1000 }') | $(ratio "$c" "$d") | $(awk -v x="$(cat "$work/p5-rss-$n")" -v y="$(cat "$work/p5-rss-noop-$n")" 'BEGIN { printf "%.1f / %.1f", x / 1024, y / 1024 }') |"
done

table=$(cat <<EOF
| Benchmark | tunnel-router | baseline | ratio (CPU ratio) | target |
|---|---|---|---|---|
| P1 hook \`up\`, eduVPN (subnet, /24 + /64, table 200), ms | $(ms "$p1a" "$p1a_lo" "$p1a_hi") | eduVPN up script: $(ms "$p1b" "$p1b_lo" "$p1b_hi") | $(ratio "$p1a" "$p1b") ($(ratio "$p1a_cpu" "$p1b_cpu")) | no regression |
$(echo "$p2rows" | sed 1d)
| P4 binary size, MB | $(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1048576 }') | – | – | ≤ 10 MB |

$scale
EOF
)
header="$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), Linux $(uname -r), load average at start $load; $rounds rounds: P1 $p1a_n runs per side."
echo
echo "$header"
echo
echo "$table"
if [ -n "$markdown" ]; then
    { echo "$header"; echo; echo "$table"; } >"$markdown"
fi
