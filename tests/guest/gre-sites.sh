#!/bin/sh
# Seed 000 for real, inside the guest kernel (UML or QEMU): two sites joined by a veth "internet", each applying its own
# policy with the published tunnel-router. The xUnit test (GreSitesGuestSpecs) asserts on what this reports.
# Policies come from TR_WORK: the contrib example, and variants the test writes.
. "$(dirname "$0")/lib.sh"
two_sites

# A GRE link made by hand in site A: tunnel-router must never touch it.
ip -n siteA link add gre_hand type gre remote 203.0.113.50 local 203.0.113.1
ip -n siteA link set gre_hand up

# --- Seed 000: a GRE tunnel plus a route to the other site's LAN over it --------------------------
ping_lan 192.168.10.1 192.168.20.1 ping.before 1
run plan1.a tr siteA plan -c "$W/site-a.json"
run apply1.a tr siteA apply -c "$W/site-a.json"
run apply1.b tr siteB apply -c "$W/site-b.json"
ping_lan 192.168.10.1 192.168.20.1 ping1
link_json link1.a siteA gre_black
say "route1.a $(ip -n siteA route show 192.168.20.0/24)"
say "route1.b $(ip -n siteB route show 192.168.10.0/24)"
run apply2.a tr siteA apply -c "$W/site-a.json"
run plan2.a tr siteA plan -c "$W/site-a.json"
run status.a tr siteA status
run statusjson.a tr siteA status --json

# --- A key on both ends: keyless to keyed recreates the link; a new key changes it in place --------
say "index.before $(ifindex siteA gre_black)"
run dry.a tr siteA apply --dry-run -c "$W/site-a.json" Tunnels:0:Key=1001
say "index.dry $(ifindex siteA gre_black)"
link_json link.dry.a siteA gre_black
run key1.a tr siteA apply -c "$W/site-a.json" Tunnels:0:Key=1001
run key1.b tr siteB apply -c "$W/site-b.json" Tunnels:0:Key=1001
say "index.key1 $(ifindex siteA gre_black)"
ping_lan 192.168.10.1 192.168.20.1 ping.key1
link_json link.key1.a siteA gre_black
say "iplink.key1.a $(ip -n siteA -d -o link show gre_black)"
run key2.a tr siteA apply -c "$W/site-a.json" Tunnels:0:Key=1002
ping_lan 192.168.10.1 192.168.20.1 ping.halfway 1
run key2.b tr siteB apply -c "$W/site-b.json" Tunnels:0:Key=1002
say "index.key2 $(ifindex siteA gre_black)"
ping_lan 192.168.10.1 192.168.20.1 ping.key2
link_json link.key2.a siteA gre_black

# --- A link with a tunnel's name that tunnel-router did not make is a conflict ---------------------
ip -n siteB link add gre_grey type gre remote 203.0.113.77 local 203.0.113.2
before=$(dump siteB)
run conflict.b tr siteB apply -c "$W/site-b.json" Tunnels:0:Name=gre_grey Tunnels:0:Routes:0=192.168.10.0/24
after=$(dump siteB)
[ "$before" = "$after" ]; say "conflict.unchanged $?"

# --- Removed from site A's policy: deleted there; the hand-made GRE link stays ---------------------
run remove.a tr siteA apply -c "$W/empty.json"
ip -n siteA link show gre_black >/dev/null 2>&1; say "removed.gre_black $?"
ip -n siteA link show gre_hand >/dev/null 2>&1; say "removed.gre_hand $?"
say "removed.route $(ip -n siteA route show 192.168.20.0/24)"
run flush.b tr siteB flush
ip -n siteB link show gre_black >/dev/null 2>&1; say "flushed.gre_black $?"
ip -n siteB link show gre_grey >/dev/null 2>&1; say "flushed.gre_grey $?"

