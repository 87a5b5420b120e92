namespace TunnelRouter.Config;

/// <summary>One key of the policy as tunnel-router.json(5) documents it. <see cref="Key"/> is the key as
/// <see cref="ConfigSchema.AllKeys"/> spells it: "Table", or "Uplinks.Gateway" for a key of a list's objects.</summary>
public sealed record PolicyKey(string Key, string Type, string Default, string Description, string Example);

/// <summary>
/// Every key of the policy file: its type, default, meaning and an example — the source of tunnel-router.json(5).
/// A spec holds it to <see cref="ConfigSchema"/>: a key the schema accepts and this reference does not name fails it,
/// and so does an entry the schema does not know.
/// </summary>
public static class PolicyReference
{
    const string Lines = "list of strings", Flag = "boolean", Number = "number", Text = "string", Objects = "list of objects";

    public static readonly PolicyKey[] Keys =
    [
        new("Table", Text, "vpn", "The OpenVPN hook's policy table: a name or a number. Rules and routes of the policy may name it too.", "\"vpn\""),
        new("TableId", Number, "the first id of 200-249 no rt_tables file names", "The number given to Table when the host's rt_tables files do not define it.", "200"),
        new("Protocol", Number, "147", "Route and rule protocol of everything apply creates: what tunnel-router owns.", "147"),
        new("HookProtocol", Number, "148", "Protocol of what the OpenVPN hook creates; apply never deletes these.", "148"),
        new("PoolRules", Flag, "false", "The hook adds \"from POOL lookup TABLE\" for each pool of a server's tunnel (and removes it on down).", "true"),
        new("RoutedNetworks", Flag, "the value of PoolRules", "A server's routed networks (route_network_N: the networks behind its clients' iroutes) as routes through the tunnel in the policy table.", "true"),
        new("PoolRulePriority", Number, "1000", "Priority of the hook's pool rules (its band is 1000-1999).", "1000"),
        new("Backend", Text, "netlink", "How the kernel is changed: netlink (rtnetlink over a socket: no fork, exact errno) or ip (iproute2).", "\"ip\""),
        new("LogFile", Text, "none", "Also log to this file.", "\"/var/log/tunnel-router.log\""),
        new("Iproute2Dir", Text, "/etc/iproute2", "Where rt_tables, rt_tables.d and rt_protos.d are read and tunnel-router's drop-ins are written.", "\"/etc/iproute2\""),
        new("LockFile", Text, "/run/tunnel-router/lock", "The host-wide lock that serialises every change to the kernel.", "\"/run/tunnel-router/lock\""),
        new("LockTimeoutSeconds", Number, "60", "How long a command waits for the lock before it fails.", "60"),
        new("WatchResyncSeconds", Number, "300", "How often watch re-reads everything whatever the events said.", "300"),
        new("Tables", "object of names and numbers", "{}", "Named tables the policy uses, written to rt_tables.d/tunnel-router.conf when the host does not define them.", "{ \"vpn\": 200, \"lan1\": 10 }"),
        new("Rules", Lines, "[]", "Rules as written after 'ip rule add'; without pref, priorities from 2000 in steps of 10.", "[ \"from 10.10.10.0/24 lookup vpn\" ]"),
        new("Routes", Lines, "[]", "Routes as written after 'ip route add'.", "[ \"default via 192.168.1.1 table vpn\" ]"),
        new("FailClosed", Lines, "[]", "Tables that must never fall through: each gets an owned unreachable default in both families at the table's highest metric (the kill switch).", "[ \"vpn\" ]"),
        new("PrefixLists", Objects, "[]", "Routes made from prefix files: each prefix of File (one a line, # comments) becomes Route.", "[ { \"File\": \"/etc/tunnel-router/lists/ru.txt\", \"Route\": \"dev tun0 table vpn\" } ]"),
        new("PrefixLists.File", Text, "required", "The prefix file: IPv4 and IPv6 prefixes, one a line.", "\"/etc/tunnel-router/lists/ru.txt\""),
        new("PrefixLists.Route", Text, "required", "The route each prefix becomes, without its destination.", "\"via 10.8.0.1 dev tun0 table vpn\""),
        new("Uplinks", Objects, "[]", "Uplinks of a multi-homed host: each gets its own table with its default route and \"from ADDRESS lookup TABLE\".", "[ { \"Interface\": \"eth0\", \"Table\": \"lan1\" } ]"),
        new("Uplinks.Interface", Text, "required", "The uplink's device.", "\"eth0\""),
        new("Uplinks.Table", Text, "required", "The uplink's table: a name or a number.", "\"lan1\""),
        new("Uplinks.Address", Text, "the interface's addresses", "The uplink's address with its prefix length.", "\"192.168.1.6/24\""),
        new("Uplinks.Gateway", Text, "the interface's default gateway", "The gateway of Address's family, or of either family when the addresses are read from the interface.", "\"192.168.1.1\""),
        new("Uplinks.Gateway6", Text, "none", "The IPv6 gateway beside an IPv4 Gateway: an uplink of both families.", "\"fe80::1\""),
        new("Uplinks.Priority", Number, "from 3000, in steps of 10", "The priority of the uplink's rules.", "3000"),
        new("Uplinks.Name", Text, "the Interface", "The name Failover lines and status use for the uplink.", "\"wan1\""),
        new("Uplinks.Track", Text, "none (its carrier alone)", "Health tracking: ICMP echo from the uplink's address to each target (an address, or gateway) every interval; down losses in a row make it down, up answers up again, traffic fails back after hold seconds more. Defaults: interval 1, timeout half the interval, down 3, up 3, hold 30. Run by watch.", "\"9.9.9.9 2620:fe::9 interval 1 down 3 up 3 hold 30\""),
        new("Failover", Lines, "[]", "Tables whose default route (each family) follows the first healthy uplink named after via, by the uplinks' Name; none healthy: no route (a FailClosed table's kill switch refuses). Optional metric. watch follows the uplinks' health.", "[ \"table vpn via wan1 wan2\" ]"),
        new("Marks", Objects, "[]", "Packet marks set in tunnel-router's own nftables table (inet tunnel_router), in order; a later match overrides an earlier one.", "[ { \"Chain\": \"output\", \"Protocol\": \"tcp\", \"DestinationPorts\": \"22\", \"Mark\": \"0xf2\" } ]"),
        new("Marks.Chain", Text, "required", "output (packets this host sends) or prerouting (packets it receives or forwards).", "\"output\""),
        new("Marks.Family", Text, "from the addresses; both without any", "ipv4 or ipv6, for an entry without addresses.", "\"ipv6\""),
        new("Marks.Source", Text, "any", "The source address or prefix; a leading ! negates it.", "\"!192.168.192.0/24\""),
        new("Marks.Destination", Text, "any", "The destination address or prefix; a leading ! negates it.", "\"5.5.5.2\""),
        new("Marks.Protocol", Text, "any", "tcp, udp, sctp, icmp, icmpv6, ... or a number.", "\"tcp\""),
        new("Marks.SourcePorts", Text, "any", "Ports and ranges (tcp, udp and sctp only).", "\"1000-2000\""),
        new("Marks.DestinationPorts", Text, "any", "Ports and ranges (tcp, udp and sctp only).", "\"80,443\""),
        new("Marks.InputInterface", Text, "any", "prerouting only; a trailing + matches every name with that prefix.", "\"br-lan\""),
        new("Marks.OutputInterface", Text, "any", "output only.", "\"eth1\""),
        new("Marks.Mark", Text, "required", "The mark to set, hexadecimal or decimal; 0 or clear clears it.", "\"0xf2\""),
        new("Marks.Mask", Text, "all 32 bits", "The bits of the mark this entry sets.", "\"0xff\""),
        new("Sysctls", "object of names and strings", "{}", "Kernel settings the policy needs: net.* only, set in key order, never reverted by flush.", "{ \"net.ipv4.ip_forward\": \"1\" }"),
        new("Instances", Objects, "[]", "Rules and routes the OpenVPN hook installs for a tunnel whose device matches Dev, with ${NAME} placeholders for OpenVPN's variables.", "[ { \"Dev\": \"tun2\", \"Routes\": [ \"default via ${route_vpn_gateway} dev ${dev} table nyet\" ] } ]"),
        new("Instances.Dev", Text, "required", "A device name or a pattern with * and ?; the first entry that matches wins.", "\"tun*\""),
        new("Instances.Rules", Lines, "[]", "Rule lines, with placeholders.", "[ \"from 192.168.10.0/24 to 198.51.100.7 lookup nyet\" ]"),
        new("Instances.Routes", Lines, "[]", "Route lines, with placeholders.", "[ \"default via ${route_vpn_gateway} dev ${dev} table nyet\" ]"),
        new("Tunnels", Objects, "[]", "GRE tunnels apply creates, changes and removes.", "[ { \"Name\": \"gre_black\", \"Remote\": \"203.0.113.2\", \"Addresses\": [ \"10.255.0.1/30\" ] } ]"),
        new("Tunnels.Name", Text, "required", "The link's name, at most 15 bytes.", "\"gre_black\""),
        new("Tunnels.Mode", Text, "gre", "gre, gretap, ip6gre or ip6gretap.", "\"ip6gre\""),
        new("Tunnels.Local", Text, "the kernel's choice", "The outer source address.", "\"198.51.100.1\""),
        new("Tunnels.Remote", Text, "required", "The outer destination address.", "\"203.0.113.2\""),
        new("Tunnels.Key", Text, "none (keyless GRE)", "One GRE key both ways (RFC 2890): a number or a dotted quad.", "\"42\""),
        new("Tunnels.IKey", Text, "Key", "The key of packets received.", "\"42\""),
        new("Tunnels.OKey", Text, "Key", "The key of packets sent.", "\"43\""),
        new("Tunnels.Ttl", Number, "0 (inherit); 64 for ip6gre", "The outer TTL (hop limit for ip6gre).", "64"),
        new("Tunnels.Tos", Number, "0", "The outer TOS (traffic class for ip6gre).", "0"),
        new("Tunnels.PMtuDisc", Flag, "true", "Path MTU discovery (DF on the outer header); gre and gretap only.", "false"),
        new("Tunnels.Mtu", Number, "the underlay's MTU minus the encapsulation", "The tunnel's MTU.", "1476"),
        new("Tunnels.Underlay", Text, "none (the kernel routes to Remote)", "Bind the tunnel to this device.", "\"eth0\""),
        new("Tunnels.Dev", Text, "none", "The same as Underlay (iproute2's word).", "\"eth0\""),
        new("Tunnels.Addresses", Lines, "[]", "Addresses on the tunnel, IPv4 and IPv6, with prefix length.", "[ \"10.255.0.1/30\" ]"),
        new("Tunnels.Routes", Lines, "[]", "Routes over the tunnel: a prefix, optionally with table and metric.", "[ \"192.168.50.0/24 table vpn\" ]"),
        new("Routing", "object", "none", "A routing daemon (BIRD or FRR) running OSPF over the owned tunnels, configured through a file tunnel-router owns.", "{ \"Daemon\": \"bird\", \"Interfaces\": [ \"gre_ab cost 10\" ] }"),
        new("Routing.Daemon", Text, "required", "bird or frr.", "\"bird\""),
        new("Routing.Protocol", Text, "ospf", "The routing protocol (ospf is the one so far).", "\"ospf\""),
        new("Routing.Area", Text, "0", "The OSPF area of every interface: a number or a dotted quad.", "\"0.0.0.1\""),
        new("Routing.Hello", Number, "10", "The hello interval on the tunnels, in seconds.", "10"),
        new("Routing.Dead", Number, "40", "The dead interval on the tunnels, in seconds.", "40"),
        new("Routing.Settle", Number, "30", "How long apply waits for the daemon to run OSPF on each interface, in seconds.", "30"),
        new("Routing.ConfigFile", Text, "/etc/bird/tunnel-router.conf or /etc/frr/tunnel-router.conf", "The file tunnel-router writes for the daemon.", "\"/etc/bird/tunnel-router.conf\""),
        new("Routing.Control", Text, "the daemon's own", "BIRD's control socket, or FRR's vty socket directory.", "\"/run/bird/bird.ctl\""),
        new("Routing.Interfaces", Lines, "[]", "Interfaces that run OSPF point to point, with an optional cost (default 10).", "[ \"gre_ab cost 10\" ]"),
        new("Routing.Stubs", Lines, "[]", "Interfaces whose networks are announced without adjacencies (the LANs).", "[ \"lan0\" ]"),
    ];
}
