using TunnelRouter.Config;

namespace TunnelRouter.Tests.Support;

/// <summary>
/// Seed 002 (OpenWrt, "Routing traffic over a non-preferred gateway"): its complete firewall.user, one
/// entry per iptables line, in the same order.
/// </summary>
public static class Seed002
{
    public const string NetLan = "192.168.192.0/24", NetWan = "172.20.10.0/24", NetVpn = "5.5.5.0/24";
    public const string IpWan = "172.20.10.2", IpVpn = "5.5.5.2", GwWan = "172.20.10.1", GwVpn = "5.5.5.1";
    public const string MarkVpn = "0xf2", MarkWan = "0xf1", MarkClr = "0x00";

    static MarkOptions M(string chain, string mark, string? src = null, string? dst = null, string? proto = null, string? sports = null) =>
        new() { Chain = chain, Mark = mark, Source = src, Destination = dst, Protocol = proto, SourcePorts = sports };

    public static List<MarkOptions> Marks() =>
    [
        // iptables -t mangle -A OUTPUT ! -d $NET_LAN -p tcp -m multiport --sports $PORT_VPN_WAN -j $MARK_VPN
        M("output", MarkVpn, dst: "!" + NetLan, proto: "tcp", sports: "80"),
        // iptables -t mangle -A OUTPUT ! -d $NET_LAN -s $IP_VPN -j $MARK_VPN
        M("output", MarkVpn, src: IpVpn, dst: "!" + NetLan),
        // iptables -t mangle -A OUTPUT ! -d $NET_LAN -s $IP_WAN -j $MARK_WAN
        M("output", MarkWan, src: IpWan, dst: "!" + NetLan),
        // iptables -t mangle -A OUTPUT -d $NET_VPN -s $IP_VPN -j $MARK_CLR
        M("output", MarkClr, src: IpVpn, dst: NetVpn),
        // iptables -t mangle -A OUTPUT -d $NET_WAN -s $IP_WAN -j $MARK_CLR
        M("output", MarkClr, src: IpWan, dst: NetWan),
        // iptables -t mangle -A PREROUTING ! -d $NET_LAN -s $NET_LAN -p tcp -m multiport --sports $PORT_VPN_LAN -j $MARK_VPN
        M("prerouting", MarkVpn, src: NetLan, dst: "!" + NetLan, proto: "tcp", sports: "80,443"),
        // iptables -t mangle -A PREROUTING ! -d $NET_LAN -s $NET_LAN -p udp -m multiport --sports $PORT_VPN_LAN -j $MARK_VPN
        M("prerouting", MarkVpn, src: NetLan, dst: "!" + NetLan, proto: "udp", sports: "80,443"),
        // iptables -t mangle -A PREROUTING -d $NET_VPN -s $NET_LAN -j $MARK_CLR
        M("prerouting", MarkClr, src: NetLan, dst: NetVpn),
        // iptables -t mangle -A PREROUTING -d $NET_WAN -s $NET_LAN -j $MARK_CLR
        M("prerouting", MarkClr, src: NetLan, dst: NetWan),
    ];

    /// <summary>The same as policy JSON, for the published binary.</summary>
    public static string MarksJson()
    {
        var entries = Marks().Select(m =>
        {
            var fields = new List<string> { $"\"Chain\": \"{m.Chain}\"" };
            if (m.Source is not null) fields.Add($"\"Source\": \"{m.Source}\"");
            if (m.Destination is not null) fields.Add($"\"Destination\": \"{m.Destination}\"");
            if (m.Protocol is not null) fields.Add($"\"Protocol\": \"{m.Protocol}\"");
            if (m.SourcePorts is not null) fields.Add($"\"SourcePorts\": \"{m.SourcePorts}\"");
            fields.Add($"\"Mark\": \"{m.Mark}\"");
            return "    { " + string.Join(", ", fields) + " }";
        });
        return "[\n" + string.Join(",\n", entries) + "\n  ]";
    }
}
