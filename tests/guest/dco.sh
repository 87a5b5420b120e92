#!/bin/sh
# OpenVPN 2.6 with data channel offload (ovpn-dco-v2, built for this guest's kernel by scripts/guest-dco.sh),
# tunnel-router as the server's --up/--down hook with PoolRules and a network behind a client (RoutedNetworks).
# The xUnit test (DcoGuestSpecs) writes the policy, the certificates and OpenVPN's configurations into $W and
# asserts on what this reports.
#
#  cA (client1, 10.10.10.2, fd00:4242::1000) ── ua 203.0.113.1/30 ─┐
#                                 srv (OpenVPN server, tun0 = ovpn-dco) ── lan 192.168.1.100, fd00:1::100 ── nat .1, ::1
#  cB (client2, 10.10.10.20, fd00:4242::20) ─── ub 203.0.113.5/30 ─┘
#   └ lan50 192.168.50.1, fd00:50::1 ── behind 192.168.50.10, fd00:50::10 (iroute and iroute-ipv6 behind client2)
#
# Client1 holds 10.10.10.2, the pool's first address, which OpenVPN also uses as the gateway of the server's own
# "route" lines (route_vpn_gateway): if anything forwarded by that gateway, client1's packets for the network
# behind client2 would come back to client1.
. "$(dirname "$0")/lib.sh"

ovpn() { # ovpn NS NAME: OpenVPN in namespace NS with /run/NAME.conf, its log in /run/NAME.log
    ip netns exec "$1" openvpn --config "/run/$2.conf" --log "/run/$2.log" --writepid "/run/$2.pid" --tmp-dir /run --daemon
}
# OpenVPN's configurations: nothing in them turns DCO on; it is on wherever the module is loaded and the
# configuration qualifies (topology subnet, AEAD ciphers, no compression).
cat >/run/server.conf <<EOF
dev tun0
proto udp
port 1194
topology subnet
server 10.10.10.0 255.255.255.0
server-ipv6 fd00:4242::/64
route 192.168.50.0 255.255.255.0
route-ipv6 fd00:50::/64
push "route 192.168.50.0 255.255.255.0"
push "route-ipv6 fd00:50::/64"
client-config-dir /run/ccd
ca $W/pki/ca.crt
cert $W/pki/server.crt
key $W/pki/server.key
dh none
script-security 2
up "$TR_BIN --config $W/policy.json"
down "$TR_BIN --config $W/policy.json"
verb 4
EOF
mkdir -p /run/ccd
cat >/run/ccd/client2 <<EOF
ifconfig-push 10.10.10.20 255.255.255.0
ifconfig-ipv6-push fd00:4242::20/64
iroute 192.168.50.0 255.255.255.0
iroute-ipv6 fd00:50::/64
EOF
for c in 1 2; do
    cat >/run/client$c.conf <<EOF
client
dev tun
proto udp
remote 203.0.113.$((c * 4 - 3)) 1194
nobind
remote-cert-tls server
explicit-exit-notify 1
ca $W/pki/ca.crt
cert $W/pki/client$c.crt
key $W/pki/client$c.key
verb 3
EOF
done
# wait_log NAME TEXT KEY: until OpenVPN's log says TEXT (bounded); reports KEY with the guest's uptime and 0 or 1.
logged() { grep -q "$2" "/run/$1.log" 2>/dev/null; }
wait_log() { until_true 90 logged "$1" "$2"; say "$3 $? $(cut -d' ' -f1 /proc/uptime)"; }
counter() { # counter NS CHAIN N: packets of the Nth counter of table inet lab's CHAIN in NS
    ip netns exec "$1" nft list chain inet lab "$2" | sed -n 's/.*counter packets \([0-9]*\) .*/\1/p' | sed -n "${3}p"
}
routes() { # routes KEY NS ARGS...: each line of "ip route show ARGS" as "@@ KEY LINE"
    key=$1 ns=$2; shift 2
    ip -n "$ns" route show "$@" | sed "s|^|@@ $key |"
    say "$key.end"
}
routes6() { # the same for IPv6, without the kernel's link-local and multicast routes
    key=$1 ns=$2; shift 2
    ip -n "$ns" -6 route show "$@" | grep -v '^fe80:\|^multicast\|^local\|^anycast' | sed "s|^|@@ $key |"
    say "$key.end"
}
hook() { ip netns exec srv env -i "$TR_BIN" "$@" --config "$W/policy.json"; }

# The module, loaded as a distribution's kernel would load it (modprobe; OpenVPN itself only checks for it).
run modprobe modprobe ovpn-dco-v2
say "module $(cat /sys/module/ovpn_dco_v2/version 2>/dev/null || echo none)"

for n in srv nat cA cB behind; do ip netns add $n; ip -n $n link set lo up; done
ip link add ua netns srv type veth peer name ua netns cA
ip link add ub netns srv type veth peer name ub netns cB
ip link add lan netns srv type veth peer name lan netns nat
ip link add lan50 netns cB type veth peer name lan50 netns behind
ip -n srv addr add 203.0.113.1/30 dev ua; ip -n cA addr add 203.0.113.2/30 dev ua
ip -n srv addr add 203.0.113.5/30 dev ub; ip -n cB addr add 203.0.113.6/30 dev ub
ip -n srv addr add 192.168.1.100/24 dev lan; ip -n nat addr add 192.168.1.1/24 dev lan
ip -n cB addr add 192.168.50.1/24 dev lan50; ip -n behind addr add 192.168.50.10/24 dev lan50
ip -n srv addr add fd00:1::100/64 dev lan nodad; ip -n nat addr add fd00:1::1/64 dev lan nodad
ip -n cB addr add fd00:50::1/64 dev lan50 nodad; ip -n behind addr add fd00:50::10/64 dev lan50 nodad
for l in srv:ua cA:ua srv:ub cB:ub srv:lan nat:lan cB:lan50 behind:lan50; do ip -n "${l%%:*}" link set "${l#*:}" up; done
ip -n behind route add default via 192.168.50.1
ip -n behind -6 route add default via fd00:50::1
ip -n nat route add 10.0.0.0/8 via 192.168.1.100
ip -n nat -6 route add fd00:4242::/64 via fd00:1::100
for n in srv cB nat; do ip netns exec $n sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1; done
# The far ends count what arrives: the host behind client2, client2 itself (client to client), client1 (anything
# for the network behind client2 that came to the wrong client), and the NAT router (anything for that network
# that left by the policy table's default route).
nft_in() { ns=$1; shift; out=$(ip netns exec "$ns" nft -f - 2>&1) || say "fatal nft in $ns: $out"; }
nft_in behind <<'EOF'
table inet lab {
    chain seen {
        type filter hook input priority 0;
        ip saddr 10.10.10.2 ip daddr 192.168.50.10 icmp type echo-request counter
        ip6 saddr fd00:4242::1000 ip6 daddr fd00:50::10 icmpv6 type echo-request counter
    }
}
EOF
nft_in cB <<'EOF'
table inet lab {
    chain seen {
        type filter hook input priority 0;
        ip saddr 10.10.10.2 ip daddr 10.10.10.20 icmp type echo-request counter
    }
}
EOF
# The same counters where a packet must not go: client1 and the NAT router.
for at in cA nat; do
    nft_in "$at" <<'EOF'
table inet lab {
    chain seen {
        type filter hook prerouting priority 0;
        ip daddr 192.168.50.0/24 counter
        ip6 daddr fd00:50::/64 counter
    }
}
EOF
done

run apply hook apply
ovpn srv server
wait_log server "Initialization Sequence Completed" server.ready
grep -E "DCO|data channel offload|ovpn-dco" /run/server.log | sed 's|^|@@ server.dco |'
say "link.tun0 $(ip -n srv -d -o link show tun0)"
routes policy.up srv table 200
ovpn cA client1
wait_log client1 "Initialization Sequence Completed" client1.ready
ovpn cB client2
wait_log client2 "Initialization Sequence Completed" client2.ready
# The server learns client2's iroute when client2's connection completes; its log says so at verb 4.
iroute() { ip -n srv route show 192.168.50.0/24 | grep -q 'metric 100'; }
no_iroute() { ! iroute; }
until_true 90 iroute
say "client1.addr $(ip -n cA -4 -o addr show dev tun0 | awk '{ print $4 }')"
say "client2.addr $(ip -n cB -4 -o addr show dev tun0 | awk '{ print $4 }')"
say "client1.addr6 $(ip -n cA -6 -o addr show dev tun0 scope global | awk '{ print $4 }')"
say "client2.addr6 $(ip -n cB -6 -o addr show dev tun0 scope global | awk '{ print $4 }')"
say "client1.link $(ip -n cA -d -o link show tun0 | grep -o 'ovpn-dco[^ ]*' | head -1)"
routes main srv
routes policy srv table 200
routes6 main6 srv
routes6 policy6 srv table 200
say "rules $(ip -n srv rule show | grep -c 'proto 148')"
ip -n srv rule show | sed 's|^|@@ rule |'
ip -n srv -6 rule show | sed 's|^|@@ rule6 |'

# From the pool (client1) to the network behind client2: through the tunnel, to client2, not client1, not the NAT router.
ip netns exec cA ping -c 1 -W 5 192.168.50.10 >/dev/null 2>&1
ip netns exec cA ping -c 3 -i 0.3 -W 5 192.168.50.10 >/dev/null 2>&1; say "ping.behind $?"
# What the kernel chose for the pool's packet (the policy table), and what ovpn-dco-v2 looks up to pick the peer:
# a route to the destination alone, as "ip route get" without a source (main).
say "route.get $(ip -n srv route get 192.168.50.10 from 10.10.10.2 iif tun0)"
say "route.get.dco $(ip -n srv route get 192.168.50.10)"
ip netns exec cA ping -c 1 -W 5 fd00:50::10 >/dev/null 2>&1
ip netns exec cA ping -c 3 -i 0.3 -W 5 fd00:50::10 >/dev/null 2>&1; say "ping6.behind $?"
say "route6.get $(ip -n srv -6 route get fd00:50::10 from fd00:4242::1000 iif tun0)"
say "route6.get.dco $(ip -n srv -6 route get fd00:50::10)"
say "count6.behind $(counter behind seen 2)"
say "count6.client1 $(counter cA seen 2)"
say "count6.nat $(counter nat seen 2)"
say "count.behind $(counter behind seen 1)"
say "count.client1 $(counter cA seen 1)"
say "count.nat $(counter nat seen 1)"
# Client to client, through the kernel (DCO), from the pool's policy table.
ip netns exec cA ping -c 2 -i 0.3 -W 5 10.10.10.20 >/dev/null 2>&1; say "ping.c2c $?"
say "count.c2c $(counter cB seen 1)"
ip netns exec srv ip -s -d link show tun0 | sed 's|^|@@ tun0.stats |'

# tunnel-router beside OpenVPN's own routes in main: apply and doctor leave them, and the policy table keeps its route.
run apply.again hook apply
run doctor hook doctor
run plan hook plan
routes main.after srv
routes policy.after srv table 200
routes6 main6.after srv
routes6 policy6.after srv table 200

# Client2 goes: OpenVPN takes its iroute out of main; the policy table's route stays (the network comes back
# with the client); what is left in main for the network is OpenVPN's own route (metric 200) via 10.10.10.2.
kill "$(cat /run/client2.pid)"
until_true 90 no_iroute
say "client2.gone $(cut -d' ' -f1 /proc/uptime)"
routes main.gone srv 192.168.50.0/24
routes policy.gone srv table 200
ip netns exec cA ping -c 1 -W 2 192.168.50.10 >/dev/null 2>&1; say "ping.gone $?"
say "count.client1.gone $(counter cA seen 1)"
say "count.nat.gone $(counter nat seen 1)"
routes6 main6.gone srv fd00:50::/64
ip netns exec cA ping -c 1 -W 2 fd00:50::10 >/dev/null 2>&1; say "ping6.gone $?"
say "count6.client1.gone $(counter cA seen 2)"
say "count6.nat.gone $(counter nat seen 2)"

# The server stops: its down hook removes what its up made.
say "server.stop $(cut -d' ' -f1 /proc/uptime)"
pid=$(cat /run/server.pid) # OpenVPN removes its pid file as it exits
kill "$pid"
exited() { [ ! -e "/proc/$pid" ]; }
until_true 90 exited
say "server.stopped $(cut -d' ' -f1 /proc/uptime)"
grep -F "[#]" /run/server.log | sed 's|^|@@ server.hook |'
say "left $(ip -n srv route show table all proto 148 | wc -l) $(ip -n srv rule show | grep -c 'proto 148') $(ip -n srv -6 route show table all proto 148 | wc -l) $(ip -n srv -6 rule show | grep -c 'proto 148')"
