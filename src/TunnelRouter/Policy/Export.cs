using System.Globalization;
using System.Net;
using System.Text;
using TunnelRouter.Core;

namespace TunnelRouter.Policy;

/// <summary>One file an export writes: its path on the target system and its text.</summary>
public sealed record ExportFile(string Path, string Text);

/// <summary>The policy as a distribution's own network configuration persists it, and what that format cannot say.</summary>
public sealed record ExportResult(IReadOnlyList<ExportFile> Files, IReadOnlyList<string> NotExpressible);

/// <summary>What an export renders: the policy's routing with every route's device known.</summary>
public sealed record ExportInput(
    IReadOnlyList<Route> Routes,
    IReadOnlyList<Rule> Rules,
    IReadOnlyList<TunnelConfigEntry> Tunnels,
    int Marks,
    IReadOnlyList<KeyValuePair<string, string>> Sysctls,
    TableNames Tables);

/// <summary>
/// <c>tunnel-router export --format networkd|ifcfg|uci|nmcli</c>: the policy's rules, routes and GRE tunnels as
/// systemd-networkd drop-ins, RHEL's rule-DEV/route-DEV files (seed 003), OpenWrt's /etc/config/network sections
/// (seed 002) or nmcli commands. Pure. A rule belongs to no device, but each format files it under one: its iif,
/// else the device of its table's routes. What a format cannot express (marks, above all) is listed, never dropped.
/// </summary>
public static class Export
{
    public static readonly string[] Formats = ["networkd", "ifcfg", "uci", "nmcli"];

    public static ExportResult Render(string format, ExportInput p) => format switch
    {
        "networkd" => Networkd(p),
        "ifcfg" => Ifcfg(p),
        "uci" => Uci(p),
        "nmcli" => Nmcli(p),
        _ => throw new InputException("--format", $"'{Net.Printable(format)}' is not a format{Suggest.DidYouMean(format, Formats)} (networkd, ifcfg, uci, nmcli)"),
    };

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
            if (l.Mode is not GreMode.Gre)
            {
                not.Add($"{t.Field} ({l.Name}, {l.Mode.Kind()}): ifup-tunnel makes plain IPv4 GRE only");
                continue;
            }
            var sb = new StringBuilder($"DEVICE={l.Name}\nTYPE=GRE\nONBOOT=yes\nBOOTPROTO=none\n");
            if (l.Local is not null) sb.Append("MY_OUTER_IPADDR=").Append(l.Local).Append('\n');
            sb.Append("PEER_OUTER_IPADDR=").Append(l.Remote).Append('\n');
            if (t.Addresses.FirstOrDefault(a => !a.Family.IsV6()) is { } a4)
                sb.Append("MY_INNER_IPADDR=").Append(a4.Address).Append('/').Append(a4.PrefixLength).Append('\n');
            if (l.IKey is { } ik && l.OKey == ik) sb.Append("KEY=").Append(ik).Append('\n');
            else if (l.IKey is not null || l.OKey is not null) not.Add($"{t.Field}: ifcfg has one KEY for both directions; IKey and OKey differ");
            sb.Append("TTL=").Append(l.Ttl).Append('\n');
            if (l.Mtu != 0) sb.Append("MTU=").Append(l.Mtu).Append('\n');
            files.Add(new($"{dir}ifcfg-{l.Name}", sb.ToString()));
        }
        foreach (var (file, sb) in text) files.Insert(0, new(file, sb.ToString()));
        return new(files, not);
    }

    static string RouteLine(Route r, ExportInput p) => Strip(IpCommand.RouteArgs(r, p.Tables, ProtocolNames.Numeric), " proto ");

    /// <summary>A line without tunnel-router's ownership word: a persisted line belongs to the distribution.</summary>
    static string Strip(string line, string word)
    {
        var i = line.IndexOf(word, StringComparison.Ordinal);
        if (i < 0) return line;
        var end = line.IndexOf(' ', i + word.Length);
        return line[..i] + (end < 0 ? "" : line[end..]);
    }

    // ---- OpenWrt uci (/etc/config/network) ----------------------------------------------------------------

    static ExportResult Uci(ExportInput p)
    {
        var files = new List<ExportFile>();
        var not = Common(p, "OpenWrt's /etc/config/network", files);
        var sb = new StringBuilder("# 'interface' options name a logical interface; replace each device name with the interface that has it (e.g. 'vpn' for br-vpn)\n");
        static void O(StringBuilder sb, string key, object value) => sb.Append("\toption ").Append(key).Append(" '").Append(value).Append("'\n");
        foreach (var r in p.Rules)
        {
            sb.Append("\nconfig ").Append(r.Family.IsV6() ? "rule6" : "rule").Append('\n');
            if (r.From is { } f) O(sb, "src", Net.Format(f));
            if (r.To is { } t) O(sb, "dest", Net.Format(t));
            if (r.FwMark is { } m) O(sb, "mark", "0x" + m.ToString("x", CultureInfo.InvariantCulture)
                + (r.FwMask is { } mask && mask != uint.MaxValue ? "/0x" + mask.ToString("x", CultureInfo.InvariantCulture) : ""));
            if (r.Iif is { } iif) O(sb, "in", iif);
            if (r.Oif is { } oif) O(sb, "out", oif);
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
            if (r.Device is { } dev) O(sb, "interface", dev);
            O(sb, "target", Net.Format(r.Destination.PrefixLength == 0 ? r.Destination : r.Destination));
            if (r.Gateway is { } g) O(sb, "gateway", g);
            if (r.Source is { } s) O(sb, "source", s);
            if (r.Metric != (r.Family.IsV6() ? Route.DefaultV6Metric : 0)) O(sb, "metric", r.Metric);
            if (r.Type != RouteType.Unicast) O(sb, "type", r.Type.ToString().ToLowerInvariant());
            if (r.OnLink) O(sb, "onlink", 1);
            if (r.Mtu != 0) O(sb, "mtu", r.Mtu);
        }
        foreach (var t in p.Tunnels)
        {
            var l = t.Link;
            var proto = l.Mode switch { GreMode.Gre => "gre", GreMode.GreTap => "gretap", GreMode.Ip6Gre => "grev6", _ => "grev6tap" };
            sb.Append("\nconfig interface '").Append(l.Name).Append("'\n");
            O(sb, "proto", proto);
            if (l.Local is not null) O(sb, "ipaddr", l.Local);
            O(sb, "peeraddr", l.Remote);
            if (l.Mtu != 0) O(sb, "mtu", l.Mtu);
            O(sb, "ttl", l.Ttl);
            if (l.IKey is { } ik) O(sb, "ikey", ik);
            if (l.OKey is { } ok) O(sb, "okey", ok);
            // OpenWrt names the GRE device after the interface ("gre4-NAME"); its addresses live on a static interface over it.
            var device = $"{(l.Mode.UnderlayFamily().IsV6() ? "grev6" : "gre4")}{(l.Mode is GreMode.GreTap or GreMode.Ip6GreTap ? "t" : "")}-{l.Name}";
            sb.Append("\nconfig interface '").Append(l.Name).Append("_static'\n");
            O(sb, "proto", "static");
            O(sb, "device", device);
            foreach (var a in t.Addresses)
                O(sb, a.Family.IsV6() ? "ip6addr" : "ipaddr", $"{a.Address}/{a.PrefixLength}");
            not.Add($"{t.Field}: OpenWrt names the device {device}, not {l.Name}; routes over it above say {l.Name}");
        }
        files.Insert(0, new("/etc/config/network (append)", sb.ToString()));
        return new(files, not);
    }

    // ---- NetworkManager (nmcli) ----------------------------------------------------------------------------

    static ExportResult Nmcli(ExportInput p)
    {
        var files = new List<ExportFile>();
        var not = Common(p, "NetworkManager", files);
        var sb = new StringBuilder("#!/bin/sh\n# each connection is named after its device here; use 'nmcli -g GENERAL.CONNECTION device show DEV' for the real name\nset -e\n");
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
            sb.Append($"nmcli connection modify {DeviceOf(r, p.Routes)} +ipv{(r.Family.IsV6() ? 6 : 4)}.routing-rules \"{rule}\"\n");
        }
        foreach (var r in p.Routes.Concat(p.Tunnels.SelectMany(t => t.Routes)))
        {
            var route = new StringBuilder(Net.Format(r.Destination));
            if (r.Gateway is { } g) route.Append(' ').Append(g);
            if (r.Metric != (r.Family.IsV6() ? Route.DefaultV6Metric : 0)) route.Append(' ').Append(r.Metric);
            if (r.Table != TableNames.Main) route.Append(" table=").Append(Num(r.Table));
            if (r.Source is { } s) route.Append(" src=").Append(s);
            if (r.OnLink) route.Append(" onlink=true");
            if (r.Mtu != 0) route.Append(" mtu=").Append(r.Mtu);
            if (r.Type != RouteType.Unicast) route.Append(" type=").Append(r.Type.ToString().ToLowerInvariant());
            sb.Append($"nmcli connection modify {r.Device ?? "lo"} +ipv{(r.Family.IsV6() ? 6 : 4)}.routes \"{route}\"\n");
        }
        foreach (var t in p.Tunnels)
        {
            var l = t.Link;
            var mode = l.Mode switch { GreMode.Gre => "gre", GreMode.Ip6Gre => "ip6gre", _ => null };
            if (mode is null) { not.Add($"{t.Field} ({l.Name}, {l.Mode.Kind()}): nmcli's ip-tunnel has no {l.Mode.Kind()} mode"); continue; }
            sb.Append($"nmcli connection add type ip-tunnel con-name {l.Name} ifname {l.Name} mode {mode} remote {l.Remote}");
            if (l.Local is not null) sb.Append($" local {l.Local}");
            if (l.IKey is { } ik) sb.Append($" ip-tunnel.input-key {ik}");
            if (l.OKey is { } ok) sb.Append($" ip-tunnel.output-key {ok}");
            if (l.Mtu != 0) sb.Append($" ip-tunnel.mtu {l.Mtu}");
            sb.Append($" ip-tunnel.ttl {l.Ttl}");
            foreach (var fam in new[] { 4, 6 })
            {
                var list = t.Addresses.Where(a => a.Family.IsV6() == (fam == 6)).Select(a => $"{a.Address}/{a.PrefixLength}").ToList();
                sb.Append(list.Count > 0 ? $" ipv{fam}.method manual ipv{fam}.addresses {string.Join(",", list)}" : $" ipv{fam}.method disabled");
            }
            sb.Append('\n');
        }
        sb.Append("nmcli connection reload\n");
        files.Insert(0, new("nmcli commands", sb.ToString()));
        return new(files, not);
    }
}
