using System.Net;
using System.Net.Sockets;
using TunnelRouter.Core;
using Xunit;

namespace TunnelRouter.Tests.Unit;

public class IpCommandSpecs
{
    static readonly TableNames Tables = NamedTables();
    static readonly ProtocolNames Protocols = NamedProtocols();

    static TableNames NamedTables() { var t = new TableNames(); t.Load("200 vpn\n"); return t; }
    static ProtocolNames NamedProtocols() { var p = new ProtocolNames(); p.Load("148 tunnel-router-hook\n"); return p; }

    [Fact]
    public void The_hook_route_renders_as_the_eduVPN_script_wrote_it_plus_our_protocol()
    {
        var r = new Route(Net.ParsePrefix("d", "10.10.10.0/24"), 200, 148, device: "tun0");

        Assert.Equal("ip -4 route add 10.10.10.0/24 dev tun0 table vpn proto tunnel-router-hook",
            IpCommand.Display(new AddRoute(r), Tables, Protocols));
        Assert.Equal("route add 10.10.10.0/24 dev tun0 table 200 proto 148", IpCommand.Batch(new AddRoute(r)));
    }

    [Fact]
    public void Every_route_attribute_renders()
    {
        var r = new Route(Net.ParsePrefix("d", "default", AddressFamily.InterNetworkV6), 200, 147, device: "eth1",
            gateway: IPAddress.Parse("fd00:1010:1010:1010::1"), source: IPAddress.Parse("fd00:1010:1010:1010::100"),
            metric: 10, onLink: true, mtu: 1400);

        Assert.Equal("ip -6 route replace default via fd00:1010:1010:1010::1 dev eth1 src fd00:1010:1010:1010::100 table vpn proto 147 metric 10 onlink mtu 1400",
            IpCommand.Display(new ReplaceRoute(r, r), Tables, Protocols));
    }

    [Fact]
    public void Typed_routes_render_their_type()
    {
        var r = new Route(Net.ParsePrefix("d", "default"), 200, 147, type: RouteType.Unreachable, metric: 4278198272);
        Assert.Equal("route add unreachable default table 200 proto 147 metric 4278198272", IpCommand.Batch(new AddRoute(r)));
    }

    [Fact]
    public void Every_rule_selector_renders_in_iproute2_syntax()
    {
        var r = new Rule(AddressFamily.InterNetwork, 50, RuleAction.Lookup, 200, 147,
            from: Net.ParsePrefix("f", "1.2.3.0/24"), to: Net.ParsePrefix("t", "4.5.6.0/24"), not: true, fwMark: 5, fwMask: 0xff,
            iif: "tun0", oif: "lo", sourcePort: new PortRange(10, 20), destinationPort: new PortRange(80, 80), ipProto: 6,
            uidRange: new UidRange(1, 5), tos: 0x10, suppressPrefixLength: 0);

        Assert.Equal("rule add not from 1.2.3.0/24 to 4.5.6.0/24 fwmark 0x5/0xff iif tun0 oif lo ipproto tcp sport 10-20 dport 80 uidrange 1-5 tos 0x10 suppress_prefixlength 0 pref 50 lookup 200 protocol 147",
            IpCommand.Batch(new AddRule(r)));
    }

    [Fact]
    public void Rule_actions_other_than_lookup_render_as_their_keyword()
    {
        var r = new Rule(AddressFamily.InterNetworkV6, 60, RuleAction.Prohibit, 0, 147, fwMark: 0xf2);
        Assert.Equal("ip -6 rule add from all fwmark 0xf2 pref 60 prohibit protocol 147", IpCommand.Display(new AddRule(r), Tables, Protocols));
    }

    [Fact]
    public void Name_files_parse_like_iproute2_reads_them()
    {
        var t = new TableNames();
        var clashes = t.Load("# comment\n255 local\n200\tvpn # eduVPN\n 10 lan1\nbogus line\n0x14 lan2\n201 vpn\n");

        Assert.True(t.TryGetId("vpn", out var vpn));
        Assert.Equal(200u, vpn);
        Assert.True(t.TryGetId("lan2", out var lan2));
        Assert.Equal(20u, lan2);
        Assert.Equal("lan1", t.Format(10));
        Assert.Equal("main", t.Format(254));
        Assert.Equal(["vpn"], clashes);
    }
}
