namespace TunnelRouter.Config;

/// <summary>
/// The policy file (/etc/tunnel-router/tunnel-router.json), overridden by TUNNEL_ROUTER_* environment
/// variables and by Key=Value on the command line. Bound with the configuration binding source
/// generator (no reflection, AOT-safe). Every key is documented in the README.
/// </summary>
public sealed class TunnelRouterOptions
{
    /// <summary>The policy table of the OpenVPN hook: a name or a number.</summary>
    public string Table { get; set; } = "vpn";

    /// <summary>The number given to <see cref="Table"/> when the host's rt_tables do not define it; unset, the
    /// first id from 200–249 that no rt_tables file names (200 for the first, as the eduVPN how-to's "vpn").</summary>
    public uint? TableId { get; set; }

    /// <summary>Route protocol (and rule protocol) of everything <c>apply</c> creates. 147 is unassigned
    /// in iproute2's rt_protos (taken: 0–18, 42, 84, 99, 186–192).</summary>
    public uint Protocol { get; set; } = 147;

    /// <summary>Protocol of what the OpenVPN hook creates: its own number, so that <c>apply</c> (which
    /// owns 147) and 64 hooks (which own 148, each on its own device) never take each other's objects.</summary>
    public uint HookProtocol { get; set; } = 148;

    /// <summary>Add "from POOL lookup TABLE" for each tunnel network on up (and remove it on down).</summary>
    public bool PoolRules { get; set; }

    /// <summary>A server's routed networks (its route_network_N / route_ipv6_network_N: the networks behind its
    /// clients' iroutes) as routes through the tunnel in the policy table, so the pool reaches them through the
    /// tunnel and not through the table's default route. Unset: on with <see cref="PoolRules"/>.</summary>
    public bool? RoutedNetworks { get; set; }

    /// <summary>Priority of pool rules: the hook's band is 1000–1999.</summary>
    public uint PoolRulePriority { get; set; } = 1000;

    /// <summary>"netlink" (rtnetlink over a socket: no fork, exact errno) or "ip" (iproute2).</summary>
    public string Backend { get; set; } = "netlink";

    public string? LogFile { get; set; }

    /// <summary>Where rt_tables, rt_tables.d and rt_protos.d live.</summary>
    public string Iproute2Dir { get; set; } = "/etc/iproute2";

    public string LockFile { get; set; } = "/run/tunnel-router/lock";

    public uint LockTimeoutSeconds { get; set; } = 60;

    /// <summary>How often <c>watch</c> re-reads everything whatever the events said: a lost event (a full socket
    /// buffer) is caught by then. Calico resyncs every 90 s; 300 keeps an idle gateway idle.</summary>
    public uint WatchResyncSeconds { get; set; } = 300;

    /// <summary>Named tables the policy uses, e.g. { "lan1": 10, "lan2": 20 }, written to the drop-in
    /// when the host does not define them.</summary>
    public Dictionary<string, uint> Tables { get; set; } = [];

    /// <summary>iproute2 rule lines: "from 10.10.10.0/24 lookup vpn pref 1000".</summary>
    public List<string> Rules { get; set; } = [];

    /// <summary>iproute2 route lines: "default via 192.168.1.1 table vpn".</summary>
    public List<string> Routes { get; set; } = [];

    /// <summary>Tables that must never fall through (the kill switch): each gets an owned "unreachable default" in
    /// both families at the table's highest metric, installed whatever devices exist.</summary>
    public List<string> FailClosed { get; set; } = [];

    /// <summary>Routes made from prefix files: lists of 10,000s of prefixes kept as text, not JSON.</summary>
    public List<PrefixListOptions> PrefixLists { get; set; } = [];

    /// <summary>GRE tunnels apply creates, changes and removes (see docs/gre.md).</summary>
    public List<TunnelOptions> Tunnels { get; set; } = [];

    /// <summary>Per-instance rules and routes the OpenVPN hook installs, with ${NAME} placeholders (see docs/openvpn.md).</summary>
    public List<InstanceOptions> Instances { get; set; } = [];

    /// <summary>Uplinks of a multi-homed host: each gets its own table and "from ADDRESS lookup TABLE".</summary>
    public List<UplinkOptions> Uplinks { get; set; } = [];

    /// <summary>Tables whose default route follows the first healthy of their uplinks: "table vpn via wan1 wan2"
    /// (see docs/uplinks.md).</summary>
    public List<string> Failover { get; set; } = [];

    /// <summary>Packet marks TunnelRouter sets in its own nftables table (inet tunnel_router), in order;
    /// a later matching entry overrides an earlier one, as iptables MARK does.</summary>
    public List<MarkOptions> Marks { get; set; } = [];

    /// <summary>Kernel settings the policy needs: { "net.ipv4.ip_forward": "1" }; net.* only, set in key order,
    /// never reverted by flush.</summary>
    public Dictionary<string, string> Sysctls { get; set; } = [];

    /// <summary>A routing daemon running OSPF over the owned tunnels; null for none.</summary>
    public RoutingOptions? Routing { get; set; }

    /// <summary>Where each value came from, for errors; set by the loader, not a configuration key (a method,
    /// so the binder never sees it).</summary>
    public ConfigOrigins? Origins() => _origins;
    public TunnelRouterOptions WithOrigins(ConfigOrigins origins) { _origins = origins; return this; }

    /// <summary>A key's name in errors, with where its value came from: "/etc/tunnel-router/tunnel-router.json: Table",
    /// "TUNNEL_ROUTER_TABLE: Table", "command line: Table".</summary>
    public string FieldOf(string key) => _origins is { } o ? $"{o.Of(key)}: {key}" : key;
    ConfigOrigins? _origins;
}

/// <summary>One uplink: { "Interface": "eth0", "Table": "lan1", "Address": "192.168.1.6/24", "Gateway": "192.168.1.1" }.
/// Address and Gateway are read from the kernel when left out.</summary>
public sealed class UplinkOptions
{
    public string? Interface { get; set; }
    public string? Table { get; set; }
    public string? Address { get; set; }
    /// <summary>The gateway of the Address's family, or of either family when the addresses are read from the interface.</summary>
    public string? Gateway { get; set; }
    /// <summary>The IPv6 gateway, beside an IPv4 Gateway: an uplink of both families.</summary>
    public string? Gateway6 { get; set; }
    public uint? Priority { get; set; }
    /// <summary>The name Failover lines use for it; the Interface by default.</summary>
    public string? Name { get; set; }
    /// <summary>How its health is tracked: "9.9.9.9 interval 1 down 3 up 3 hold 30" (see docs/uplinks.md).</summary>
    public string? Track { get; set; }
}

/// <summary>One prefix file: { "File": "/etc/tunnel-router/lists/ru.txt", "Route": "via 10.8.0.1 dev tun0 table vpn" }.
/// Each prefix of the file (one a line, IPv4 and IPv6 mixed, # comments) becomes that route.</summary>
public sealed class PrefixListOptions
{
    public string? File { get; set; }
    public string? Route { get; set; }
}

/// <summary>The policy's <c>Routing</c> section: a routing daemon (BIRD or FRR) running OSPF over the owned
/// tunnels, configured through a file tunnel-router owns. See docs/routing.md.</summary>
public sealed class RoutingOptions
{
    /// <summary>bird or frr.</summary>
    public string? Daemon { get; set; }

    /// <summary>ospf (the one protocol so far).</summary>
    public string Protocol { get; set; } = "ospf";

    /// <summary>The OSPF area of every interface: a number or a dotted quad; default 0 (the backbone).</summary>
    public string Area { get; set; } = "0";

    /// <summary>Hello and dead intervals (seconds) on the tunnels: OSPF's own defaults, 10 and 40.</summary>
    public uint Hello { get; set; } = 10;
    public uint Dead { get; set; } = 40;

    /// <summary>How long (seconds) an apply that changed the daemon's file or its interfaces waits for the daemon to run
    /// OSPF on each of them before it fails naming the ones it never took; default 30 (an emulated or loaded host is slow).</summary>
    public uint Settle { get; set; } = 30;

    /// <summary>The file tunnel-router writes; default /etc/bird/tunnel-router.conf or /etc/frr/tunnel-router.conf.</summary>
    public string? ConfigFile { get; set; }

    /// <summary>BIRD's control socket (birdc -s), or FRR's vty socket directory (vtysh --vty_socket); default the daemon's own.</summary>
    public string? Control { get; set; }

    /// <summary>Interfaces that run OSPF, point to point: "gre_ab cost 10" (cost default 10). Usually owned tunnels.</summary>
    public List<string> Interfaces { get; set; } = [];

    /// <summary>Interfaces whose networks are announced without forming adjacencies (the LANs): "lan0".</summary>
    public List<string> Stubs { get; set; } = [];
}
