#!/bin/sh
# ip6gre between two sites' IPv6 underlay addresses, and the MTU of every mode against the kernel's own
# choice, inside the guest kernel (UML or QEMU). The xUnit test (GreIp6GuestSpecs) asserts on what this reports.
. "$(dirname "$0")/lib.sh"
two_sites

# --- ip6gre between the sites' IPv6 underlay addresses, carrying IPv6 and IPv4 --------------------
run apply6.a tr siteA apply -c "$W/site-a6.json"
run apply6.b tr siteB apply -c "$W/site-b6.json"
link_json link6.a siteA gre6_black
ip netns exec siteA ping -6 -c 1 -W 3 -I fd00:10::1 fd00:20::1 >/dev/null 2>&1; say "ping6.lan $?"
ip netns exec siteA ping -c 1 -W 3 10.255.6.2 >/dev/null 2>&1; say "ping6.inner4 $?"
run again6.a tr siteA apply -c "$W/site-a6.json"

# --- The MTU tunnel-router computes is the kernel's own, for every mode ---------------------------
ip netns add mtu; ip -n mtu link set lo up
ip -n mtu link add u0 mtu 1400 type veth peer name u1
ip -n mtu addr add 198.51.100.1/24 dev u0; ip -n mtu addr add 2001:db8:51::1/64 dev u0 nodad
ip -n mtu link set u0 up; ip -n mtu link set u1 up
run mtu.apply tr mtu apply -c "$W/mtu.json"
# The same tunnels made by hand without an MTU, to other remotes on the same underlay: the kernel's choice.
ip -n mtu link add k_gre type gre local 198.51.100.1 remote 198.51.100.20
ip -n mtu link add k_gretap type gretap local 198.51.100.1 remote 198.51.100.21 key 7
ip -n mtu link add k_ip6gre type ip6gre local 2001:db8:51::1 remote 2001:db8:51::20
ip -n mtu link add k_ip6gretap type ip6gretap local 2001:db8:51::1 remote 2001:db8:51::21 key 7
for m in gre gretap ip6gre ip6gretap; do
    say "mtu.$m $(ip -n mtu -j link show t_$m | sed 's/.*"mtu":\([0-9]*\).*/\1/') $(ip -n mtu -j link show k_$m | sed 's/.*"mtu":\([0-9]*\).*/\1/')"
done
