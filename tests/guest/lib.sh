# Helpers for the guest scenarios (sourced). Results are "@@ KEY VALUE" lines on the console.
set -u
W=$TR_WORK

say() { echo "@@ $*"; }

# tunnel-router in a site, with an environment built from scratch (as OpenVPN would) and that site's
# own iproute2 name directory and lock.
tr() {
    site=$1; shift
    ip netns exec "$site" env -i TUNNEL_ROUTER_CONFIG= TUNNEL_ROUTER_IPROUTE2DIR="/tmp/$site/iproute2" TUNNEL_ROUTER_LOCKFILE="/run/$site.lock" \
        "$TR_BIN" "$@"
}

# run KEY COMMAND...: every output line as "@@ KEY.out LINE", then "@@ KEY.rc N".
run() {
    key=$1; shift
    out=$("$@" 2>&1); rc=$?
    printf '%s\n' "$out" | sed "s|^|@@ $key.out |"
    say "$key.rc $rc"
    say "$key.uptime $(cut -d' ' -f1 /proc/uptime)"
}

# until_true SECONDS COMMAND...: runs COMMAND until it succeeds, for up to SECONDS of the guest's clock (a ceiling for
# what is waited on, not a time the step needs: an emulated guest on a loaded host takes longer); 1 when it ran out.
until_true() {
    limit=$(( $(cut -d. -f1 /proc/uptime) + $1 )); shift
    until "$@"; do
        [ "$(cut -d. -f1 /proc/uptime)" -gt "$limit" ] && return 1
        sleep 0.1
    done
}

link_json() { say "$1 $(ip -n "$2" -j -d address show "$3" 2>/dev/null || echo '[]')"; }
ifindex() { ip -n "$1" -o link show "$2" 2>/dev/null | cut -d: -f1; }
# ping_lan SRC DST KEY [WAIT]: one ping from site A; a ping expected to fail waits 1 s, not 3.
ping_lan() { ip netns exec siteA ping -c 1 -W "${4:-3}" -I "$1" "$2" >/dev/null 2>&1; say "$3 $?"; }
dump() { ip -n "$1" -d -o link show; ip -n "$1" -o addr show; ip -n "$1" route show table all; ip -n "$1" -6 route show table all; }

# Two sites (network namespaces) joined by a veth "internet" (IPv4 and IPv6), a LAN in each.
two_sites() {
    for s in siteA siteB; do ip netns add $s; ip -n $s link set lo up; done
    ip link add inet0 netns siteA type veth peer name inet0 netns siteB
    ip -n siteA addr add 203.0.113.1/24 dev inet0
    ip -n siteB addr add 203.0.113.2/24 dev inet0
    ip -n siteA addr add 2001:db8:113::1/64 dev inet0 nodad
    ip -n siteB addr add 2001:db8:113::2/64 dev inet0 nodad
    ip -n siteA link add lan0 type veth peer name lan0p
    ip -n siteB link add lan0 type veth peer name lan0p
    ip -n siteA addr add 192.168.10.1/24 dev lan0; ip -n siteA addr add fd00:10::1/64 dev lan0 nodad
    ip -n siteB addr add 192.168.20.1/24 dev lan0; ip -n siteB addr add fd00:20::1/64 dev lan0 nodad
    for s in siteA siteB; do for d in inet0 lan0 lan0p; do ip -n $s link set $d up; done; done
}
