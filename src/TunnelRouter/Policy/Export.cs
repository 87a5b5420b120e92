using System.Globalization;
using System.Net;
using System.Text;
using TunnelRouter.Core;

namespace TunnelRouter.Policy;

/// <summary>One file an export writes: its path on the target system and its text.</summary>
public sealed record ExportFile(string Path, string Text);

/// <summary>The policy as a distribution's own network configuration persists it, and what that format cannot say.</summary>
public sealed record ExportResult(IReadOnlyList<ExportFile> Files, IReadOnlyList<string> NotExpressible)
{
    /// <summary>What the admin must know to use the files (how device names map, which names a tool reads).</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];
}

/// <summary>What an export renders: the policy's routing with every route's device known.</summary>
public sealed record ExportInput(
    IReadOnlyList<Route> Routes,
    IReadOnlyList<Rule> Rules,
    IReadOnlyList<TunnelConfigEntry> Tunnels,
    int Marks,
    IReadOnlyList<KeyValuePair<string, string>> Sysctls,
    TableNames Tables)
{
    /// <summary>The target's own name of a device: OpenWrt's logical interface (uci), NetworkManager's connection
    /// (nmcli), from --interface/--connection DEV=NAME.</summary>
    public IReadOnlyDictionary<string, string> Names { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);
}

/// <summary>
/// <c>tunnel-router export --format networkd|ifcfg|uci|nmcli</c>: the policy's rules, routes and GRE tunnels as
/// systemd-networkd drop-ins, RHEL's rule-DEV/route-DEV files (seed 003), OpenWrt's /etc/config/network sections
/// (seed 002) or nmcli commands. Pure. A rule belongs to no device, but each format files it under one: its iif,
/// else the device of its table's routes. What a format cannot express (marks, above all) is listed, never dropped.
/// </summary>
public static class Export
{
    public static readonly string[] Formats = ["networkd", "ifcfg", "uci", "nmcli"];

    public static ExportResult Render(string format, ExportInput p)
    {
        // A balancing Failover line's route goes by a kernel nexthop group, which none of the formats has: listed, not dropped.
        var balanced = p.Routes.Where(r => r.Nexthop != 0).ToList();
        if (balanced.Count > 0) p = p with { Routes = [.. p.Routes.Where(r => r.Nexthop == 0)] };
        var result = format switch
        {
            "networkd" => Networkd(p),
            "ifcfg" => Ifcfg(p),
            "uci" => Uci(p),
            "nmcli" => Nmcli(p),
            _ => throw new InputException("--format", $"'{Net.Printable(format)}' is not a format{Suggest.DidYouMean(format, Formats)} (networkd, ifcfg, uci, nmcli)"),
        };
        return balanced.Count == 0 ? result : result with
        {
            NotExpressible = [.. result.NotExpressible, .. balanced.Select(r =>
                $"route '{IpCommand.RouteArgs(r, p.Tables, ProtocolNames.Numeric)}' of a weighted Failover line: {format} has no nexthop groups; balancing needs tunnel-router watch")],
        };
    }

    /// <summary>The device a rule is filed under: its iif, else the device of a route in its table, else its oif.</summary>
    public static string DeviceOf(Rule r, IReadOnlyList<Route> routes) =>
        r.Iif is { } iif && iif != "lo" ? iif
        : routes.FirstOrDefault(x => x.Table == r.Table && x.Device is not null && x.Family == r.Family)?.Device
          ?? routes.FirstOrDefault(x => x.Table == r.Table && x.Device is not null)?.Device
          ?? r.Oif ?? routes.FirstOrDefault(x => x.Device is not null)?.Device ?? "lo";

    static List<string> Common(ExportInput p, string format, List<ExportFile> files)
    {
        var not = new List<string>();
        if (p.Marks > 0)
            not.Add($"Marks ({p.Marks} entries): {format} has no packet marking; keep them in nftables (tunnel-router apply, or the nft table 'tunnel-router plan' prints, in /etc/nftables.conf)");
        if (p.Sysctls.Count > 0)
            files.Add(new("/etc/sysctl.d/90-tunnel-router.conf", string.Concat(p.Sysctls.Select(kv => $"{kv.Key} = {kv.Value}\n"))));
        return not;
    }

    static string Table(ExportInput p, uint t) => p.Tables.Format(t);

    static string Num(uint t) => t.ToString(CultureInfo.InvariantCulture);

    // ---- systemd-networkd -------------------------------------------------------------------------------

    static ExportResult Networkd(ExportInput p)
    {
        var files = new List<ExportFile>();
        var not = Common(p, "systemd-networkd", files);
        var byDevice = new SortedDictionary<string, StringBuilder>(StringComparer.Ordinal);
        StringBuilder For(string dev) => byDevice.TryGetValue(dev, out var sb) ? sb : byDevice[dev] = new StringBuilder();
        var tunnelOf = p.Tunnels.ToDictionary(t => t.Link.Name, StringComparer.Ordinal);

        foreach (var r in p.Rules)
        {
            var sb = For(DeviceOf(r, p.Routes)).Append("[RoutingPolicyRule]\n");
            if (r.From is { } f) sb.Append("From=").Append(Net.Format(f)).Append('\n');
            if (r.To is { } t) sb.Append("To=").Append(Net.Format(t)).Append('\n');
            if (r.From is null && r.To is null) sb.Append("Family=").Append(r.Family.IsV6() ? "ipv6" : "ipv4").Append('\n');
            if (r.FwMark is { } m) sb.Append("FirewallMark=0x").Append(m.ToString("x", CultureInfo.InvariantCulture))
                .Append(r.FwMask is { } mask && mask != uint.MaxValue ? "/0x" + mask.ToString("x", CultureInfo.InvariantCulture) : "").Append('\n');
            if (r.Iif is { } iif) sb.Append("IncomingInterface=").Append(iif).Append('\n');
            if (r.Oif is { } oif) sb.Append("OutgoingInterface=").Append(oif).Append('\n');
            if (r.IpProto is { } proto) sb.Append("IPProtocol=").Append(IpProtocols.Format(proto)).Append('\n');
            if (r.SourcePort is { } sp) sb.Append("SourcePort=").Append(sp).Append('\n');
            if (r.DestinationPort is { } dp) sb.Append("DestinationPort=").Append(dp).Append('\n');
            if (r.UidRange is { } uid) sb.Append("User=").Append(uid).Append('\n');
            if (r.Tos != 0) sb.Append("TypeOfService=").Append(r.Tos).Append('\n');
            if (r.SuppressPrefixLength is { } spl) sb.Append("SuppressPrefixLength=").Append(spl).Append('\n');
            if (r.Not) sb.Append("Invert=yes\n");
            sb.Append("Priority=").Append(r.Priority).Append('\n');
            if (r.Action == RuleAction.Lookup) sb.Append("Table=").Append(Num(r.Table)).Append('\n');
            else sb.Append("Type=").Append(r.Action.ToString().ToLowerInvariant()).Append('\n');
            sb.Append('\n');
        }
        foreach (var r in p.Routes.Concat(p.Tunnels.SelectMany(t => t.Routes)))
            NetworkdRoute(For(r.Device ?? "lo"), r);

        foreach (var t in p.Tunnels)
        {
            var l = t.Link;
            var netdev = new StringBuilder("[NetDev]\n").Append("Name=").Append(l.Name).Append('\n')
                .Append("Kind=").Append(l.Mode.Kind()).Append('\n');
            if (l.Mtu != 0) netdev.Append("MTUBytes=").Append(l.Mtu).Append('\n');
            netdev.Append("\n[Tunnel]\n");
            if (l.Local is not null) netdev.Append("Local=").Append(l.Local).Append('\n');
            netdev.Append("Remote=").Append(l.Remote).Append('\n');
            if (l.IKey is { } ik) netdev.Append("InputKey=").Append(ik).Append('\n');
            if (l.OKey is { } ok) netdev.Append("OutputKey=").Append(ok).Append('\n');
            netdev.Append("TTL=").Append(l.Ttl).Append('\n');
            files.Add(new($"/etc/systemd/network/90-tunnel-router-{l.Name}.netdev", netdev.ToString()));
            var network = new StringBuilder("[Match]\nName=").Append(l.Name).Append("\n\n[Network]\n");
            foreach (var a in t.Addresses) network.Append("Address=").Append(a.Address).Append('/').Append(a.PrefixLength).Append('\n');
            network.Append('\n');
            if (byDevice.Remove(l.Name, out var own)) network.Append(own);
            files.Add(new($"/etc/systemd/network/90-tunnel-router-{l.Name}.network", network.ToString().TrimEnd('\n') + "\n"));
            var underlay = l.Underlay ?? "UNDERLAY";
            For(underlay).Insert(0, $"[Network]\nTunnel={l.Name}\n\n");
            if (l.Underlay is null)
                not.Add($"{t.Field}: the underlay device is read from the kernel at apply time; file its 'Tunnel={l.Name}' under the .network of the device that reaches {l.Remote}");
        }
        foreach (var (dev, sb) in byDevice)
            files.Insert(0, new($"/etc/systemd/network/{dev}.network.d/tunnel-router.conf",
                $"# a drop-in for the .network file that matches {dev} (e.g. 10-{dev}.network.d/)\n" + sb.ToString().TrimEnd('\n') + "\n"));
        return new(files, not);
    }

    static void NetworkdRoute(StringBuilder sb, Route r)
    {
        sb.Append("[Route]\n");
        sb.Append("Destination=").Append(Net.Format(r.Destination)).Append('\n');
        if (r.Gateway is { } g) sb.Append("Gateway=").Append(g).Append('\n');
        if (r.OnLink) sb.Append("GatewayOnLink=yes\n");
        if (r.Source is { } s) sb.Append("PreferredSource=").Append(s).Append('\n');
        if (r.Table != TableNames.Main) sb.Append("Table=").Append(Num(r.Table)).Append('\n');
        if (r.Metric != (r.Family.IsV6() ? Route.DefaultV6Metric : 0)) sb.Append("Metric=").Append(r.Metric).Append('\n');
        if (r.Type != RouteType.Unicast) sb.Append("Type=").Append(r.Type.ToString().ToLowerInvariant()).Append('\n');
        if (r.Mtu != 0) sb.Append("MTUBytes=").Append(r.Mtu).Append('\n');
        if (r.Gateway is null && r.Type == RouteType.Unicast) sb.Append("Scope=link\n");
        sb.Append('\n');
    }

    // ---- RHEL ifcfg (network-scripts) ---------------------------------------------------------------------

    static ExportResult Ifcfg(ExportInput p)
    {
        var files = new List<ExportFile>();
        var not = Common(p, "ifcfg (network-scripts)", files);
        var text = new SortedDictionary<string, StringBuilder>(StringComparer.Ordinal);
        void Add(string file, string line) => (text.TryGetValue(file, out var sb) ? sb : text[file] = new StringBuilder()).Append(line).Append('\n');
        const string dir = "/etc/sysconfig/network-scripts/";

        // The files hold what follows "ip rule add" / "ip route add": tunnel-router's own line syntax, without its protocol.
        foreach (var r in p.Rules)
            Add($"{dir}rule{(r.Family.IsV6() ? "6" : "")}-{DeviceOf(r, p.Routes)}", Strip(IpCommand.RuleArgs(r, p.Tables, ProtocolNames.Numeric), " protocol "));
        foreach (var r in p.Routes.Concat(p.Tunnels.SelectMany(t => t.Routes)))
            Add($"{dir}route{(r.Family.IsV6() ? "6" : "")}-{r.Device ?? "lo"}", RouteLine(r, p));
        foreach (var t in p.Tunnels)
        {
            var l = t.Link;
            // ifup-tunnel makes TYPE=GRE (ip tunnel add mode gre) and TYPE=GRE6 (ip -6 tunnel add mode ip6gre; initscripts
            // 10.03 and later); it has no tap modes.
            if (l.Mode is not (GreMode.Gre or GreMode.Ip6Gre))
            {
                not.Add($"{t.Field} ({l.Name}, {l.Mode.Kind()}): ifup-tunnel makes gre (TYPE=GRE) and ip6gre (TYPE=GRE6) tunnels only, no tap modes");
                continue;
            }
            var sb = new StringBuilder($"DEVICE={l.Name}\nTYPE={(l.Mode == GreMode.Gre ? "GRE" : "GRE6")}\nONBOOT=yes\nBOOTPROTO=none\n");
            if (l.Local is not null) sb.Append("MY_OUTER_IPADDR=").Append(l.Local).Append('\n');
            sb.Append("PEER_OUTER_IPADDR=").Append(l.Remote).Append('\n');
            // One inner IPv4 address (MY_INNER_IPADDR, ip addr add); IPv6 ones through ifup-ipv6, as for any interface.
            var v4 = t.Addresses.Where(a => !a.Family.IsV6()).ToList();
            var v6 = t.Addresses.Where(a => a.Family.IsV6()).ToList();
            if (v4.Count > 0) sb.Append("MY_INNER_IPADDR=").Append(v4[0].Address).Append('/').Append(v4[0].PrefixLength).Append('\n');
            if (v4.Count > 1) not.Add($"{t.Field} ({l.Name}): ifup-tunnel adds one IPv4 address (MY_INNER_IPADDR); {string.Join(", ", v4.Skip(1).Select(a => $"{a.Address}/{a.PrefixLength}"))} left out");
            if (v6.Count > 0)
            {
                sb.Append("IPV6INIT=yes\nIPV6ADDR=").Append(v6[0].Address).Append('/').Append(v6[0].PrefixLength).Append('\n');
                if (v6.Count > 1) sb.Append("IPV6ADDR_SECONDARIES=\"").Append(string.Join(' ', v6.Skip(1).Select(a => $"{a.Address}/{a.PrefixLength}"))).Append("\"\n");
            }
            if (v4.Count == 0)
                not.Add($"{t.Field} ({l.Name}): no IPv4 address; ifup-tunnel runs 'ip addr add' with an empty MY_INNER_IPADDR, which fails with a message and goes on");
            if (l.IKey is { } ik && l.OKey == ik) sb.Append("KEY=").Append(ik).Append('\n');
            else if (l.IKey is not null || l.OKey is not null) not.Add($"{t.Field}: ifcfg has one KEY for both directions; IKey and OKey differ");
            sb.Append("TTL=").Append(l.Ttl).Append('\n');
            if (l.Mtu != 0) sb.Append("MTU=").Append(l.Mtu).Append('\n');
            if (l.Tos != 0) not.Add($"{t.Field} ({l.Name}): ifup-tunnel sets no TOS (policy: 0x{l.Tos:x2})");
            if (!l.PMtuDisc) not.Add($"{t.Field} ({l.Name}): ifup-tunnel cannot turn path MTU discovery off");
            files.Add(new($"{dir}ifcfg-{l.Name}", sb.ToString()));
        }
        foreach (var (file, sb) in text) files.Insert(0, new(file, sb.ToString()));
        return new(files, not);
    }

    /// <summary>What follows "ip route add" in a route-DEV file: without tunnel-router's protocol, and without "table main"
    /// (the file's lines go to main unless they say otherwise).</summary>
    static string RouteLine(Route r, ExportInput p) =>
        r.Table == TableNames.Main ? Strip(Strip(IpCommand.RouteArgs(r, p.Tables, ProtocolNames.Numeric), " proto "), " table ")
            : Strip(IpCommand.RouteArgs(r, p.Tables, ProtocolNames.Numeric), " proto ");

    /// <summary>A line without tunnel-router's ownership word: a persisted line belongs to the distribution.</summary>
    static string Strip(string line, string word)
    {
        var i = line.IndexOf(word, StringComparison.Ordinal);
        if (i < 0) return line;
        var end = line.IndexOf(' ', i + word.Length);
        return line[..i] + (end < 0 ? "" : line[end..]);
    }

    // ---- OpenWrt uci (/etc/config/network) ----------------------------------------------------------------

    /// <summary>OpenWrt's netifd: rules' in/out and routes' interface name logical interfaces ('wan', 'vpn'), never
    /// devices; the device of a GRE interface is gre4-NAME, gre4t-NAME, gre6-NAME or gre6t-NAME (package gre's gre.sh),
    /// its addresses on a static interface over that device; table names are read from /etc/iproute2/rt_tables alone.</summary>
    static ExportResult Uci(ExportInput p)
    {
        var files = new List<ExportFile>();
        var not = Common(p, "OpenWrt's /etc/config/network", files);
        var notes = new List<string>();
        var tunnels = p.Tunnels.ToDictionary(t => t.Link.Name, StringComparer.Ordinal);
        var unnamed = new SortedSet<string>(StringComparer.Ordinal);
        // A policy tunnel is OpenWrt's interface NAME (proto gre); its addresses, and so its routes, are NAME_static's.
        string Logical(string device)
        {
            if (p.Names.TryGetValue(device, out var name)) return name;
            if (tunnels.ContainsKey(device)) return device + "_static";
            unnamed.Add(device);
            return device;
        }
        var sb = new StringBuilder();
        static void O(StringBuilder sb, string key, object value) => sb.Append("\toption ").Append(key).Append(" '").Append(value).Append("'\n");
        foreach (var r in p.Rules)
        {
            sb.Append("\nconfig ").Append(r.Family.IsV6() ? "rule6" : "rule").Append('\n');
            if (r.From is { } f) O(sb, "src", Net.Format(f));
            if (r.To is { } t) O(sb, "dest", Net.Format(t));
            if (r.FwMark is { } m) O(sb, "mark", "0x" + m.ToString("x", CultureInfo.InvariantCulture)
                + (r.FwMask is { } mask && mask != uint.MaxValue ? "/0x" + mask.ToString("x", CultureInfo.InvariantCulture) : ""));
            // OpenWrt's own interface of lo is 'loopback'.
            if (r.Iif is { } iif) O(sb, "in", iif == "lo" && !p.Names.ContainsKey("lo") ? "loopback" : Logical(iif));
            if (r.Oif is { } oif) O(sb, "out", Logical(oif));
            if (r.IpProto is { } proto) O(sb, "ipproto", IpProtocols.Format(proto));
            if (r.SourcePort is { } sp) O(sb, "sport", sp);
            if (r.DestinationPort is { } dp) O(sb, "dport", dp);
            if (r.UidRange is { } uid) O(sb, "uidrange", uid);
            if (r.Tos != 0) O(sb, "tos", r.Tos);
            if (r.SuppressPrefixLength is { } spl) O(sb, "suppress_prefixlength", spl);
            if (r.Not) O(sb, "invert", 1);
            O(sb, "priority", r.Priority);
            if (r.Action == RuleAction.Lookup) O(sb, "lookup", Table(p, r.Table));
            else O(sb, "action", r.Action.ToString().ToLowerInvariant());
        }
        foreach (var r in p.Routes.Concat(p.Tunnels.SelectMany(t => t.Routes)))
        {
            sb.Append("\nconfig ").Append(r.Family.IsV6() ? "route6" : "route").Append('\n');
            if (r.Table != TableNames.Main) O(sb, "table", Table(p, r.Table));
            // Without 'interface' netifd puts the route on its loopback interface, with no device: the kernel's choice.
            if (r.Device is { } dev) O(sb, "interface", Logical(dev));
            O(sb, "target", Net.Format(r.Destination));
            if (r.Gateway is { } g) O(sb, "gateway", g);
            if (r.Source is { } src) O(sb, "source", src);
            if (r.Metric != (r.Family.IsV6() ? Route.DefaultV6Metric : 0)) O(sb, "metric", r.Metric);
            if (r.Type != RouteType.Unicast) O(sb, "type", r.Type.ToString().ToLowerInvariant());
            if (r.OnLink) O(sb, "onlink", 1);
            if (r.Mtu != 0) O(sb, "mtu", r.Mtu);
        }
        foreach (var t in p.Tunnels)
        {
            var l = t.Link;
            var v6 = l.Mode.UnderlayFamily().IsV6();
            var (proto, prefix) = l.Mode switch
            {
                GreMode.Gre => ("gre", "gre4"),
                GreMode.GreTap => ("gretap", "gre4t"),
                GreMode.Ip6Gre => ("grev6", "gre6"),
                _ => ("grev6tap", "gre6t"),
            };
            sb.Append("\nconfig interface '").Append(l.Name).Append("'\n");
            O(sb, "proto", proto);
            // gre/gretap take ipaddr/peeraddr, grev6/grev6tap ip6addr/peer6addr (gre.sh).
            if (l.Local is not null) O(sb, v6 ? "ip6addr" : "ipaddr", l.Local);
            O(sb, v6 ? "peer6addr" : "peeraddr", l.Remote);
            if (l.Underlay is { } under) O(sb, "tunlink", Logical(under));
            // gre.sh makes the tunnel 1280 bytes when mtu is unset: always say it.
            if (l.Mtu != 0) O(sb, "mtu", l.Mtu);
            else not.Add($"{t.Field} ({l.Name}): its MTU is worked out from the underlay at apply time; OpenWrt's gre makes it 1280 unless 'mtu' is set: add it");
            O(sb, "ttl", l.Ttl);
            if (l.Tos != 0) O(sb, "tos", "0x" + l.Tos.ToString("x2", CultureInfo.InvariantCulture));
            if (!v6 && !l.PMtuDisc) O(sb, "df", 0);
            if (l.IKey is { } ik) O(sb, "ikey", ik);
            if (l.OKey is { } ok) O(sb, "okey", ok);
            var device = $"{prefix}-{l.Name}";
            if (device.Length > InterfaceName.MaxLength)
                not.Add($"{t.Field} ({l.Name}): OpenWrt names its device {device}, longer than the kernel's {InterfaceName.MaxLength} characters; give the tunnel a name of at most {InterfaceName.MaxLength - prefix.Length - 1}");
            sb.Append("\nconfig interface '").Append(l.Name).Append("_static'\n");
            O(sb, "proto", "static");
            O(sb, "device", device);
            foreach (var a in t.Addresses)
                O(sb, a.Family.IsV6() ? "ip6addr" : "ipaddr", $"{a.Address}/{a.PrefixLength}");
            notes.Add($"{t.Field}: OpenWrt's device for {l.Name} is {device}; its addresses and routes belong to the interface {l.Name}_static");
        }
        var header = new StringBuilder("# netifd names logical interfaces, not devices");
        var mapped = p.Names.Where(kv => !tunnels.ContainsKey(kv.Key)).OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        if (mapped.Count > 0) header.Append(": ").Append(string.Join(", ", mapped.Select(kv => $"'{kv.Value}' is {kv.Key}")));
        header.Append('\n');
        if (unnamed.Count > 0)
        {
            header.Append("# no logical interface given for ").Append(string.Join(", ", unnamed)).Append(": written as the device name\n");
            notes.Add($"no logical interface given for {string.Join(", ", unnamed)}: the sections name the device, which netifd does not know; pass --interface DEV=NAME for each (NAME: the 'config interface' whose device is DEV, e.g. --interface {unnamed.First()}=wan)");
        }
        var tables = p.Rules.Select(r => r.Table).Concat(p.Routes.Select(r => r.Table)).Distinct()
            .Where(t => t is not (0 or TableNames.Main or TableNames.Local or TableNames.Default) && Table(p, t) != Num(t)).Order().ToList();
        if (tables.Count > 0)
            notes.Add($"tables by name ({string.Join(", ", tables.Select(t => Table(p, t)))}): netifd reads names from /etc/iproute2/rt_tables alone, not rt_tables.d; put {string.Join(", ", tables.Select(t => $"'{Num(t)} {Table(p, t)}'"))} there");
        files.Insert(0, new("/etc/config/network (append)", header.Append(sb).ToString()));
        return new(files, not) { Notes = notes };
    }

    // ---- NetworkManager (nmcli) ----------------------------------------------------------------------------

    /// <summary>nmcli changes connection profiles, not devices: each device's connection is named by --connection
    /// DEV=NAME, or else looked up when the script runs (the connection active on the device), and the changes are put
    /// into effect with 'nmcli device reapply'. The tunnels' connections are the script's own, named after them.</summary>
    static ExportResult Nmcli(ExportInput p)
    {
        var files = new List<ExportFile>();
        var not = Common(p, "NetworkManager", files);
        var notes = new List<string>();
        var tunnels = p.Tunnels.Select(t => t.Link.Name).ToHashSet(StringComparer.Ordinal);
        var devices = new List<string>();
        var body = new StringBuilder();
        string Connection(string device)
        {
            if (tunnels.Contains(device)) return Quote(device);
            if (!devices.Contains(device)) devices.Add(device);
            return p.Names.TryGetValue(device, out var name) ? Quote(name) : $"\"${Variable(device)}\"";
        }
        foreach (var r in p.Rules)
        {
            var rule = new StringBuilder("priority ").Append(r.Priority);
            if (r.Not) rule.Append(" not");
            rule.Append(" from ").Append(r.From is { } f ? Net.Format(f) : r.Family.IsV6() ? "::/0" : "0.0.0.0/0");
            if (r.To is { } t) rule.Append(" to ").Append(Net.Format(t));
            if (r.FwMark is { } m) rule.Append(" fwmark 0x").Append(m.ToString("x", CultureInfo.InvariantCulture))
                .Append(r.FwMask is { } mask && mask != uint.MaxValue ? "/0x" + mask.ToString("x", CultureInfo.InvariantCulture) : "");
            if (r.Iif is { } iif) rule.Append(" iif ").Append(iif);
            if (r.Oif is { } oif) rule.Append(" oif ").Append(oif);
            if (r.IpProto is { } proto) rule.Append(" ipproto ").Append(proto);
            if (r.SourcePort is { } sp) rule.Append(" sport ").Append(sp);
            if (r.DestinationPort is { } dp) rule.Append(" dport ").Append(dp);
            if (r.UidRange is { } uid) rule.Append(" uidrange ").Append(uid);
            if (r.Tos != 0) rule.Append(" tos 0x").Append(r.Tos.ToString("x2", CultureInfo.InvariantCulture));
            if (r.SuppressPrefixLength is { } spl) rule.Append(" suppress_prefixlength ").Append(spl);
            rule.Append(r.Action == RuleAction.Lookup ? $" table {Num(r.Table)}" : $" type {r.Action.ToString().ToLowerInvariant()}");
            body.Append($"nmcli connection modify {Connection(DeviceOf(r, p.Routes))} +ipv{(r.Family.IsV6() ? 6 : 4)}.routing-rules \"{rule}\"\n");
        }
        foreach (var r in p.Routes.Concat(p.Tunnels.SelectMany(t => t.Routes)))
        {
            var route = new StringBuilder(Net.Format(r.Destination));
            if (r.Gateway is { } g) route.Append(' ').Append(g);
            if (r.Metric != (r.Family.IsV6() ? Route.DefaultV6Metric : 0)) route.Append(' ').Append(r.Metric);
            if (r.Table != TableNames.Main) route.Append(" table=").Append(Num(r.Table));
            if (r.Source is { } src) route.Append(" src=").Append(src);
            if (r.OnLink) route.Append(" onlink=true");
            if (r.Mtu != 0) route.Append(" mtu=").Append(r.Mtu);
            if (r.Type != RouteType.Unicast) route.Append(" type=").Append(r.Type.ToString().ToLowerInvariant());
            body.Append($"nmcli connection modify {Connection(r.Device ?? "lo")} +ipv{(r.Family.IsV6() ? 6 : 4)}.routes \"{route}\"\n");
        }
        var made = new List<string>();
        foreach (var t in p.Tunnels)
        {
            var l = t.Link;
            var mode = l.Mode switch { GreMode.Gre => "gre", GreMode.Ip6Gre => "ip6gre", _ => null };
            if (mode is null) { not.Add($"{t.Field} ({l.Name}, {l.Mode.Kind()}): nmcli's ip-tunnel has no {l.Mode.Kind()} mode"); continue; }
            var add = new StringBuilder($"nmcli connection add type ip-tunnel con-name {Quote(l.Name)} ifname {l.Name} mode {mode} remote {l.Remote}");
            if (l.Local is not null) add.Append($" local {l.Local}");
            if (l.IKey is { } ik) add.Append($" ip-tunnel.input-key {ik}");
            if (l.OKey is { } ok) add.Append($" ip-tunnel.output-key {ok}");
            if (l.Mtu != 0) add.Append($" ip-tunnel.mtu {l.Mtu}");
            add.Append($" ip-tunnel.ttl {l.Ttl}");
            foreach (var fam in new[] { 4, 6 })
            {
                var list = t.Addresses.Where(a => a.Family.IsV6() == (fam == 6)).Select(a => $"{a.Address}/{a.PrefixLength}").ToList();
                add.Append(list.Count > 0 ? $" ipv{fam}.method manual ipv{fam}.addresses {string.Join(",", list)}" : $" ipv{fam}.method disabled");
            }
            // Made before the lines that add its routes.
            body.Insert(0, add.Append('\n').ToString());
            made.Add(l.Name);
        }

        var sb = new StringBuilder("#!/bin/sh\nset -e\n");
        var lookedUp = devices.Where(d => !p.Names.ContainsKey(d)).ToList();
        if (lookedUp.Count > 0)
        {
            sb.Append("# the NetworkManager connection active on a device (--connection DEV=NAME names it instead)\n")
              .Append("connection() {\n\tc=$(nmcli -g GENERAL.CONNECTION device show \"$1\")\n")
              .Append("\t[ -n \"$c\" ] || { echo \"$1: no NetworkManager connection is active on it\" >&2; exit 1; }\n")
              .Append("\tprintf '%s\\n' \"$c\"\n}\n");
            foreach (var d in lookedUp) sb.Append($"{Variable(d)}=$(connection {d})\n");
            notes.Add($"the connections of {string.Join(", ", lookedUp)} are the ones active on them when the script runs; name them with --connection DEV=NAME to fix them now");
        }
        sb.Append(body);
        foreach (var d in devices) sb.Append($"nmcli device reapply {d}\n");
        foreach (var n in made) sb.Append($"nmcli connection up {Quote(n)}\n");
        files.Insert(0, new("nmcli commands", sb.ToString()));
        return new(files, not) { Notes = notes };
    }

    /// <summary>The shell variable holding a device's connection: "con_eth0", "con_br_lan".</summary>
    static string Variable(string device) => "con_" + string.Concat(device.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_'));

    /// <summary>A connection name as one shell word.</summary>
    static string Quote(string name) =>
        name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.' or ':' or '@') ? name : "'" + name.Replace("'", "'\\''") + "'";
}
