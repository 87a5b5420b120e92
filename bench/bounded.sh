#!/usr/bin/env bash
# B1: bounded work for hostile input within the size caps (issue 22). Each worst case is built here and read once by
# tunnel-router plan and once by a plain tool that only reads it (jq for a policy, wc -l for a prefix file); the table
# gives wall time and peak RSS of both, and their ratio. Nothing here is asserted: a timed test would be flaky.
#   B1a  a policy of 1,000,000 bad Rules lines (5 MB)
#   B1b  the policy cap (16 MiB) filled with bad Rules lines ("x",), about 4.2 million of them
#   B1c  a prefix file of one 200 MB line (the hook parses it at every VPN start)
#   B1d  a prefix file of 1,000,000 valid IPv4 /24s (the documented scale, for comparison)
#
#   bench/bounded.sh        (root; TUNNEL_ROUTER_BIN=path to skip the build)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/bounded.sh: run as root (the policy must be root's)" >&2; exit 1; }
bin=${TUNNEL_ROUTER_BIN:-}
if [ -z "$bin" ]; then
    ./install.sh --prefix artifacts/bench-install >/dev/null
    bin=$PWD/artifacts/bench-install/sbin/tunnel-router
fi
work=$(mktemp -d /tmp/tunnel-router-bounded.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"

python3 - "$work" <<'PY'
import sys, os
w = sys.argv[1]
with open(f"{w}/b1a.json", "w") as f: f.write('{"Rules": [' + ",".join(['"x"'] * 1_000_000) + ']}')
n = (16 * 1024 * 1024 - 64) // 4
with open(f"{w}/b1b.json", "w") as f: f.write('{"Rules": [' + ",".join(['"x"'] * n) + ']}')
with open(f"{w}/b1c.txt", "w") as f: f.write("1" * (200 * 1000 * 1000))
with open(f"{w}/b1d.txt", "w") as f:
    f.write("".join(f"{10 + i // 65536}.{(i // 256) % 256}.{i % 256}.0/24\n" for i in range(1_000_000)))
PY
for f in "$work"/*; do chmod 0644 "$f"; done

# time and peak RSS of one run: "SECONDS KB"
measure() { /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>&1 || true; tail -n 1 "$work/time"; }

printf '%-5s %-44s %16s %16s %8s %8s\n' case input "plan s / MB" "baseline s / MB" "time x" "RSS x"
line() {
    local name=$1 what=$2 ours=$3 base=$4
    read -r ot om <<<"$ours"; read -r bt bm <<<"$base"
    awk -v n="$name" -v w="$what" -v ot="$ot" -v om="$om" -v bt="$bt" -v bm="$bm" 'BEGIN {
        printf "%-5s %-44s %7.2f / %6.0f %7.2f / %6.0f %8.1f %8.1f\n", n, w, ot, om / 1024, bt, bm / 1024,
            (bt > 0 ? ot / bt : 0), (bm > 0 ? om / bm : 0) }'
}
run_plan() { measure env -i TUNNEL_ROUTER_IPROUTE2DIR="$work" TUNNEL_ROUTER_LOCKFILE="$work/lock" "$bin" plan "$@"; }

line B1a "1,000,000 bad Rules (5 MB) vs jq length" "$(run_plan -c "$work/b1a.json")" "$(measure jq '.Rules | length' "$work/b1a.json")"
line B1b "16 MiB of bad Rules vs jq length" "$(run_plan -c "$work/b1b.json")" "$(measure jq '.Rules | length' "$work/b1b.json")"
line B1c "prefix file of one 200 MB line vs wc -l" "$(run_plan -c "" "PrefixLists:0:File=$work/b1c.txt" "PrefixLists:0:Route=dev lo")" "$(measure wc -l "$work/b1c.txt")"
line B1d "1,000,000 valid /24s (for scale) vs wc -l" "$(run_plan -c "" "PrefixLists:0:File=$work/b1d.txt" "PrefixLists:0:Route=dev lo")" "$(measure wc -l "$work/b1d.txt")"
