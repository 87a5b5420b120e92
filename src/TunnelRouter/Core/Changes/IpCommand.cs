using System.Globalization;
using System.Text;

namespace TunnelRouter.Core;

/// <summary>
/// Renders routes and rules as iproute2 arguments: for people (names, "ip -4 ..." as wg-quick prints them
/// with "[#] ") and for the ip backend's batch input (numbers, no "ip" and no family flag, because one
/// batch process runs per family).
/// </summary>
public static class IpCommand
{
    public static string Display(Change change, TableNames tables, ProtocolNames protocols) => change.Display(tables, protocols);

    /// <summary>The <c>ip -batch</c> line of a change iproute2 makes.</summary>
    public static string Batch(Change change) =>
        change.Batch() ?? throw new ArgumentException($"{change.GetType().Name} is not an iproute2 change", nameof(change));

    public static string RouteArgs(Route r, TableNames tables, ProtocolNames protocols)
    {
        var sb = new StringBuilder();
        if (r.Type != RouteType.Unicast) sb.Append(r.Type.ToString().ToLowerInvariant()).Append(' ');
        sb.Append(Net.FormatDestination(r.Destination));
        if (r.Nexthop != 0) sb.Append(" nhid ").Append(r.Nexthop);
        if (r.Gateway is not null) sb.Append(" via ").Append(r.Gateway);
        if (r.Device is not null) sb.Append(" dev ").Append(r.Device);
        if (r.Source is not null) sb.Append(" src ").Append(r.Source);
        sb.Append(" table ").Append(tables.Format(r.Table));
        sb.Append(" proto ").Append(protocols.Format(r.Protocol));
        if (r.Metric != (r.Family.IsV6() ? Route.DefaultV6Metric : 0)) sb.Append(" metric ").Append(r.Metric);
        if (r.OnLink) sb.Append(" onlink");
        if (r.Mtu != 0) sb.Append(" mtu ").Append(r.Mtu);
        return sb.ToString();
    }

    /// <summary>"id 5 via 198.51.100.1 dev eth1 proto P [onlink]" or "id 7 group 5,3/6 proto P".</summary>
    public static string NexthopArgs(Nexthop n, ProtocolNames protocols)
    {
        var sb = new StringBuilder("id ").Append(n.Id);
        if (n.IsGroup) sb.Append(" group ").Append(string.Join('/', n.Group!));
        if (n.Gateway is not null) sb.Append(" via ").Append(n.Gateway);
        if (n.Device is not null) sb.Append(" dev ").Append(n.Device);
        sb.Append(" proto ").Append(protocols.Format(n.Protocol));
        if (n.OnLink) sb.Append(" onlink");
        return sb.ToString();
    }

    public static string RuleArgs(Rule r, TableNames tables, ProtocolNames protocols)
    {
        var sb = new StringBuilder();
        if (r.Not) sb.Append("not ");
        sb.Append("from ").Append(r.From is { } f ? Net.Format(f) : "all");
        if (r.To is { } t) sb.Append(" to ").Append(Net.Format(t));
        if (r.FwMark is { } mark)
        {
            sb.Append(" fwmark 0x").Append(mark.ToString("x", CultureInfo.InvariantCulture));
            if (r.FwMask is { } mask && mask != uint.MaxValue) sb.Append("/0x").Append(mask.ToString("x", CultureInfo.InvariantCulture));
        }
        if (r.Iif is not null) sb.Append(" iif ").Append(r.Iif);
        if (r.Oif is not null) sb.Append(" oif ").Append(r.Oif);
        if (r.IpProto is { } p) sb.Append(" ipproto ").Append(IpProtocols.Format(p));
        if (r.SourcePort is { } sp) sb.Append(" sport ").Append(sp);
        if (r.DestinationPort is { } dp) sb.Append(" dport ").Append(dp);
        if (r.UidRange is { } uid) sb.Append(" uidrange ").Append(uid);
        if (r.Tos != 0) sb.Append(" tos 0x").Append(r.Tos.ToString("x2", CultureInfo.InvariantCulture));
        if (r.SuppressPrefixLength is { } spl) sb.Append(" suppress_prefixlength ").Append(spl);
        sb.Append(" pref ").Append(r.Priority);
        sb.Append(r.Action switch
        {
            RuleAction.Lookup => " lookup " + tables.Format(r.Table),
            _ => " " + r.Action.ToString().ToLowerInvariant(),
        });
        sb.Append(" protocol ").Append(protocols.Format(r.Protocol));
        return sb.ToString();
    }
}

/// <summary>IP protocol numbers by the names iproute2 and /etc/protocols use.</summary>
public static class IpProtocols
{
    static readonly (byte Number, string Name)[] Known =
        [(1, "icmp"), (6, "tcp"), (17, "udp"), (47, "gre"), (50, "esp"), (58, "ipv6-icmp"), (132, "sctp")];

    public static string Format(byte number) =>
        Array.Find(Known, k => k.Number == number).Name ?? number.ToString(CultureInfo.InvariantCulture);

    public static bool TryParse(string text, out byte number)
    {
        foreach (var (n, name) in Known)
            if (name == text || (text == "icmpv6" && n == 58)) { number = n; return true; }
        return byte.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out number);
    }
}
