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
                -z /run/site$s/frr/zserv.api --vty_socket /run/site$s/frr -u frr -g frr \
                --log file:/run/site$s/frr/$d.log --log-level info >/dev/null 2>&1
            [ $d = zebra ] && { until_true 90 test -S /run/site$s/frr/zserv.api || say "fatal site$s: zebra made no socket"; }
        done
    fi
done

# stall KEY: what every site's kernel and daemon say, as "@@ KEY.stall LINE": a wait that ran out explains itself
# (which interfaces the daemon runs OSPF on, what zebra or BIRD knows of each link and address, the neighbours,
# the daemons' last log lines).
stall() {
    for s in A B C; do
        {
            echo "== site$s: kernel"; ip -n site$s -o -4 addr show; ip -n site$s route show
            if [ "$daemon" = bird ]; then
                c="birdc -s /run/site$s/bird.ctl"
                echo "== site$s: show ospf interface"; $c show ospf interface tunnel_router
                echo "== site$s: show ospf neighbors"; $c show ospf neighbors tunnel_router
                echo "== site$s: show interfaces"; $c show interfaces
            else
                c="vtysh --vty_socket /run/site$s/frr"
                echo "== site$s: show ip ospf interface"; $c -c 'show ip ospf interface' | grep -E '^[^ ]+ is |Internet Address|not running'
                echo "== site$s: show ip ospf neighbor"; $c -c 'show ip ospf neighbor'
                echo "== site$s: show interface brief"; $c -c 'show interface brief'
                for d in zebra ospfd; do echo "== site$s: $d.log"; tail -n 15 /run/site$s/frr/$d.log 2>/dev/null; done
            fi
        } 2>&1 | sed "s|^|@@ $1.stall |"
    done
}

# wait_route SITE PREFIX DEVICE KEY: seconds (uptime) until the route to PREFIX goes over DEVICE, reported.
# Waits for what it waits for, up to 90 s of the guest's clock (convergence takes 5-20 s; an emulated guest on a
# busy host may miss hellos and form its adjacencies late: the spec reports the time, never a limit); a wait that
# runs out reports the daemons' state (stall), well before the host gives up on the guest.
wait_route() {
    until=$(( $(cut -d. -f1 /proc/uptime) + 90 ))
    while ! ip -n "$1" route show "$2" | grep -q "dev $3 proto $proto"; do
        if [ "$(cut -d. -f1 /proc/uptime)" -gt "$until" ]; then stall "$4"; break; fi
        sleep 0.1
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
until=$(( $(cut -d. -f1 /proc/uptime) + 90 ))
while [ "$(full_a)" -lt 2 ]; do
    if [ "$(cut -d. -f1 /proc/uptime)" -gt "$until" ]; then stall neighbours.a; break; fi
    sleep 0.2
done
say "neighbours.a $(full_a)"
say "converged $(cut -d' ' -f1 /proc/uptime)"
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

# The race on purpose (issue "FRR never takes some tunnels into OSPF"): site A's daemon is frozen while the apply
# makes both tunnels and their addresses again, so that FRR's zebra, woken, reads addresses before their links and
# drops some (FRRouting/frr#13288); BIRD, one socket, reads them in order. The apply must end with OSPF running on
# both tunnels either way.
if [ "$daemon" = bird ]; then frozen=$(cat /run/siteA/bird.pid); else frozen=$(cat /run/siteA/frr/zebra.pid); fi
kill -STOP "$frozen"
tr siteA apply -c "$W/site-a.json" >/tmp/race.out 2>&1 &
apply=$!
# The daemon wakes once both tunnels and their addresses are back (not after a time that had to be long enough).
made() { ip -n siteA -o -4 addr show dev gre_ab | grep -q inet && ip -n siteA -o -4 addr show dev gre_ac | grep -q inet; }
until_true 90 made || say "race.unmade $(cut -d' ' -f1 /proc/uptime)"
kill -CONT "$frozen"
wait $apply; rc=$?
sed 's|^|@@ race.out |' /tmp/race.out
say "race.rc $rc"
if [ "$daemon" = bird ]; then
    say "race.ospf $(birdc -s /run/siteA/bird.ctl show ospf interface tunnel_router | awk '/^Interface /{ printf "%s ", $2 }')"
else
    say "race.ospf $(vtysh --vty_socket /run/siteA/frr -c 'show ip ospf interface' | awk '/^[^ ]+ is (up|down)$/{ printf "%s ", $1 }')"
fi
