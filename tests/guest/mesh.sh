#!/bin/sh
# Three sites, a full GRE mesh made by tunnel-router, OSPF by BIRD or FRR ($W/daemon) configured by
# tunnel-router (its Routing section), inside the guest kernel. The xUnit test (GreMeshGuestSpecs) writes the
# policies and asserts on what this reports.
. "$(dirname "$0")/lib.sh"
daemon=$(cat "$W/daemon")

# Underlay: one veth per pair of sites. AB 203.0.113.4/30, BC .8/30, AC .12/30; LANs 192.168.{1,2,3}.0/24.
for s in A B C; do ip netns add site$s; ip -n site$s link set lo up; done
pair() { # pair X Y NET: uXY between siteX (.NET+1) and siteY (.NET+2)
    ip link add u$1$2 netns site$1 type veth peer name u$1$2 netns site$2
    ip -n site$1 addr add 203.0.113.$(($3 + 1))/30 dev u$1$2
    ip -n site$2 addr add 203.0.113.$(($3 + 2))/30 dev u$1$2
    ip -n site$1 link set u$1$2 up; ip -n site$2 link set u$1$2 up
}
pair A B 4; pair B C 8; pair A C 12
n=0
for s in A B C; do
    n=$((n + 1))
    ip -n site$s link add lan0 type veth peer name lan0p
    ip -n site$s addr add 192.168.$n.1/24 dev lan0
    ip -n site$s link set lan0 up; ip -n site$s link set lan0p up
    ip netns exec site$s sysctl -qw net.ipv4.ip_forward=1
    if [ "$daemon" = bird ]; then
        # The admin's own bird.conf: the kernel protocol, and an include of the file tunnel-router owns.
        mkdir -p /run/site$s/bird
        cat >/run/site$s/bird.conf <<EOC
router id 10.0.0.$n;
protocol device { scan time 1; }
protocol kernel { ipv4 { export all; import none; }; }
include "/run/site$s/bird/tunnel-router*.conf";
EOC
        ip netns exec site$s bird -c /run/site$s/bird.conf -s /run/site$s/bird.ctl -P /run/site$s/bird.pid
    else
        # The admin's own frr.conf: the router id; tunnel-router's interface stanzas come through vtysh.
        mkdir -p /run/site$s/frr /run/site$s/etc && chmod 777 /run/site$s/frr
        printf 'hostname site%s\nrouter ospf\n ospf router-id 10.0.0.%s\n' $s $n >/run/site$s/frr/frr.conf
        for d in zebra ospfd; do
            ip netns exec site$s /usr/lib/frr/$d -d -f /run/site$s/frr/frr.conf -i /run/site$s/frr/$d.pid \
                -z /run/site$s/frr/zserv.api --vty_socket /run/site$s/frr -u frr -g frr >/dev/null 2>&1
            [ $d = zebra ] && while [ ! -S /run/site$s/frr/zserv.api ]; do sleep 0.1; done
        done
    fi
done

# wait_route SITE PREFIX DEVICE KEY: seconds (uptime) until the route to PREFIX goes over DEVICE, reported.
# Gives up after 180 s of the guest's clock: an emulated guest on a busy host may miss hellos and form its
# adjacencies late (what the spec reports is the time, never a limit).
wait_route() {
    until=$(( $(cut -d. -f1 /proc/uptime) + 180 ))
    while ! ip -n "$1" route show "$2" | grep -q "dev $3 proto $proto"; do
        [ "$(cut -d. -f1 /proc/uptime)" -gt "$until" ] && break; sleep 0.1
    done
    say "$4 $(cut -d' ' -f1 /proc/uptime) $(ip -n "$1" route show "$2")"
}
[ "$daemon" = bird ] && proto=bird || proto=ospf
ping_ac() { ip netns exec siteA ping -c 1 -W "${2:-2}" -I 192.168.1.1 192.168.3.1 >/dev/null 2>&1; say "$1 $?"; }

run apply.a tr siteA apply -c "$W/site-a.json"
run apply.b tr siteB apply -c "$W/site-b.json"
run apply.c tr siteC apply -c "$W/site-c.json"
conf_a=$( [ "$daemon" = bird ] && echo /run/siteA/bird/tunnel-router.conf || echo /run/siteA/etc/tunnel-router.conf )
say "file.a $(awk '{ gsub(/\t/, " "); printf "%s ", $0 }' "$conf_a")"
say "pin.a $(ip -n siteA route show 203.0.113.14)"
wait_route siteA 192.168.3.0/24 gre_ac route.direct
# C's way back converges on its own clock: the ping waits for it too, not only for A's route.
wait_route siteC 192.168.1.0/24 gre_ac route.direct.back
ping_ac ping.direct
full_a() {
    if [ "$daemon" = bird ]; then birdc -s /run/siteA/bird.ctl show ospf neighbors | grep -c Full
    else vtysh --vty_socket /run/siteA/frr -c 'show ip ospf neighbor' | grep -c Full; fi
}
until=$(( $(cut -d. -f1 /proc/uptime) + 180 ))
while [ "$(full_a)" -lt 2 ] && [ "$(cut -d. -f1 /proc/uptime)" -le "$until" ]; do sleep 0.2; done
say "neighbours.a $(full_a)"
run plan.a tr siteA plan -c "$W/site-a.json"

# The A–C tunnel leaves A's policy: A→C goes through B once OSPF has noticed (C within its dead interval).
say "removed $(cut -d' ' -f1 /proc/uptime)"
run remove.a tr siteA apply -c "$W/site-a-no-ac.json"
wait_route siteA 192.168.3.0/24 gre_ab route.via_b
i=0; until ip netns exec siteA ping -c 1 -W 1 -I 192.168.1.1 192.168.3.1 >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -gt 60 ] && break
done
say "reachable.via_b $(cut -d' ' -f1 /proc/uptime) $i"
say "hops.via_b $(ip netns exec siteA ping -c 1 -W 2 -I 192.168.1.1 -R 192.168.3.1 2>/dev/null | grep -c '10.255.2.1')"

# Back in the policy: the direct path returns.
say "restored $(cut -d' ' -f1 /proc/uptime)"
run restore.a tr siteA apply -c "$W/site-a.json"
wait_route siteA 192.168.3.0/24 gre_ac route.restored
wait_route siteC 192.168.1.0/24 gre_ac route.restored.back
ping_ac ping.restored 3

# flush at A: the mesh's links, pins and BIRD's protocol go; BIRD keeps running.
run flush.a tr siteA flush -c "$W/site-a.json"
say "flushed.links $(ip -n siteA -o link show type gre | grep -c gre_)"
say "flushed.file $(grep -c 'protocol ospf\|ip ospf area' "$conf_a")"
if [ "$daemon" = bird ]; then
    say "flushed.daemon $(birdc -s /run/siteA/bird.ctl show status | grep -c 'Daemon is up')"
else
    say "flushed.daemon $(vtysh --vty_socket /run/siteA/frr -c 'show running-config' | grep -c 'ip ospf area')"
fi
