#!/usr/bin/env bash
# N1: kernel nexthop objects against plain routes for owned routes in general (issue 26), measured (not asserted), in a
#     throwaway network namespace: 10,000 routes per family into one table through `ip -batch` (the way the ip backend
#     sends them; the netlink backend's requests are the same messages), once as "via GW dev DEV" and once as "nhid N"
#     over one nexthop object; then every route moved to a second gateway (10,000 route replaces, or one nexthop
#     replace); and the kernel's unreclaimable slab memory grown by the routes (/proc/meminfo SUnreclaim: machine-wide,
#     so other work on the machine shows in it too). Best of RUNS (default 3) for times, median for memory.
#
#   bench/nexthops.sh [--runs N]      (root; run.sh --nexthops runs it)
set -euo pipefail
runs=3
[ "${1:-}" = --runs ] && runs=$2
ns=trbench-nh-$$
work=$(mktemp -d)
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
n=10000

setup() {
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    for i in 1 2; do
        ip -n "$ns" link add "wan$i" type veth peer name "r$i"
        ip -n "$ns" addr add "10.$i.0.2/24" dev "wan$i"
        ip -n "$ns" -6 addr add "fd00:$i::2/64" dev "wan$i" nodad
        ip -n "$ns" link set "r$i" up; ip -n "$ns" link set "wan$i" up
    done
}

# The batch files: plain routes, routes by a nexthop object, and the moves of each.
for i in $(seq 0 $((n - 1))); do
    a=$((i / 256)) b=$((i % 256))
    echo "route add 172.$((16 + a / 256)).$((a % 256)).$b/32 via 10.1.0.1 dev wan1 table 300 proto 147" >>"$work/plain4"
    echo "route replace 172.$((16 + a / 256)).$((a % 256)).$b/32 via 10.2.0.1 dev wan2 table 300 proto 147" >>"$work/move4"
    echo "route add 172.$((16 + a / 256)).$((a % 256)).$b/32 nhid 1 table 300 proto 147" >>"$work/nhid4"
    printf 'route add fd10::%x:%x/128 via fd00:1::1 dev wan1 table 300 proto 147\n' "$a" "$b" >>"$work/plain6"
    printf 'route replace fd10::%x:%x/128 via fd00:2::1 dev wan2 table 300 proto 147\n' "$a" "$b" >>"$work/move6"
    printf 'route add fd10::%x:%x/128 nhid 2 table 300 proto 147\n' "$a" "$b" >>"$work/nhid6"
done
printf 'nexthop add id 1 via 10.1.0.1 dev wan1 proto 147\nnexthop add id 2 via fd00:1::1 dev wan1 proto 147\nnexthop add id 3 via 10.2.0.1 dev wan2 proto 147\nnexthop add id 4 via fd00:2::1 dev wan2 proto 147\n' >"$work/nexthops"
printf 'nexthop replace id 1 via 10.2.0.1 dev wan2 proto 147\n' >"$work/nhmove4"
printf 'nexthop replace id 2 via fd00:2::1 dev wan2 proto 147\n' >"$work/nhmove6"

ms() { local s e; s=$(date +%s%N); "$@"; e=$(date +%s%N); echo $(((e - s) / 1000)); }
slab() { awk '/^SUnreclaim:/ { print $2 }' /proc/meminfo; }
batch() { ip -n "$ns" "$1" -batch "$2"; }

declare -A best mem
for kind in plain nhid; do
    for fam in 4 6; do
        adds=() moves=() kib=()
        for r in $(seq 1 "$runs"); do
            setup
            [ $kind = nhid ] && ip -n "$ns" -batch "$work/nexthops"
            sync; before=$(slab)
            adds+=("$(ms batch "-$fam" "$work/$kind$fam")")
            kib+=($(($(slab) - before)))
            if [ $kind = plain ]; then moves+=("$(ms batch "-$fam" "$work/move$fam")")
            else moves+=("$(ms ip -n "$ns" -batch "$work/nhmove$fam")"); fi
            [ "$(ip -n "$ns" -$fam route show table 300 | grep -c wan2)" = $n ] || [ $kind = nhid ] || { echo "move $kind$fam incomplete" >&2; exit 1; }
            ip netns del "$ns"
        done
        best[$kind$fam.add]=$(printf '%s\n' "${adds[@]}" | sort -n | head -1)
        best[$kind$fam.move]=$(printf '%s\n' "${moves[@]}" | sort -n | head -1)
        mem[$kind$fam]=$(printf '%s\n' "${kib[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p")
    done
done

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "N1: $n owned routes per family in one table, ip -batch, best of $runs (memory: median SUnreclaim growth); $cpu, $(nproc) cores"
printf '%-6s %-28s %12s %12s %8s\n' family measure "plain routes" "by nexthop" ratio
for fam in 4 6; do
    for m in add move; do
        p=${best[plain$fam.$m]} h=${best[nhid$fam.$m]}
        printf '%-6s %-28s %9.1f ms %9.1f ms %8s\n' "IPv$fam" "$([ $m = add ] && echo "add $n routes" || echo "move all to gateway 2")" \
            "$(echo "$p / 1000" | bc -l)" "$(echo "$h / 1000" | bc -l)" "$(echo "scale=2; $h / $p" | bc -l)"
    done
    p=${mem[plain$fam]} h=${mem[nhid$fam]}
    printf '%-6s %-28s %9d KiB %9d KiB %8s\n' "IPv$fam" "kernel slab for the routes" "$p" "$h" "$( [ "$p" -gt 0 ] && echo "scale=2; $h / $p" | bc -l || echo -)"
done
