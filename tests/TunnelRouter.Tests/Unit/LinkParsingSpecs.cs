using System.Net;
using TunnelRouter.Core;
using TunnelRouter.Kernel;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>Links as iproute2 6.1 prints them (<c>ip -j -d address show</c>), captured from the UML guest.</summary>
public class LinkParsingSpecs
{
    const string Json = """
        [{"ifindex":2,"link":null,"ifname":"gre0","flags":["NOARP"],"mtu":1476,"operstate":"DOWN","linkinfo":{"info_kind":"gre","info_data":{"remote":"any","local":"any","ttl":0,"pmtudisc":false}},"addr_info":[]},
         {"ifindex":12,"link":null,"ifname":"gre_black","flags":["POINTOPOINT","NOARP","UP","LOWER_UP"],"mtu":1472,"operstate":"UNKNOWN","linkinfo":{"info_kind":"gre","info_data":{"remote":"203.0.113.2","local":"203.0.113.1","ttl":0,"pmtudisc":true,"ikey":"0.0.3.233","okey":"0.0.3.233"}},"ifalias":"tunnel-router",
          "addr_info":[{"family":"inet","local":"10.255.0.1","prefixlen":30,"scope":"global","label":"gre_black"},{"family":"inet6","local":"fe80::200:5efe:cb00:7101","prefixlen":64,"scope":"link"}]},
         {"ifindex":10,"link":null,"ifname":"g2","flags":["BROADCAST","MULTICAST"],"mtu":1362,"linkinfo":{"info_kind":"gretap","info_data":{"remote":"203.0.113.2","local":"203.0.113.1","ttl":0,"tos":"0x10","pmtudisc":false}}},
         {"ifindex":11,"link":null,"ifname":"g3","flags":["POINTOPOINT","NOARP"],"mtu":1348,"linkinfo":{"info_kind":"ip6gre","info_data":{"remote":"2001:db8::2","local":"2001:db8::1","ttl":255,"encap_limit":4,"tclass":"0x10","flowlabel":"0x00000"}}},
         {"ifindex":13,"link":"v0","ifname":"g5","flags":["POINTOPOINT","NOARP"],"mtu":1300,"linkinfo":{"info_kind":"gre","info_data":{"remote":"203.0.113.3","local":"any","link":"v0","ttl":64,"pmtudisc":true,"ikey":"0.0.0.7","okey":"0.0.0.7"}}},
         {"ifindex":8,"link":"v1","ifname":"v0","flags":["UP"],"mtu":1400,"linkinfo":{"info_kind":"veth"},"addr_info":[{"family":"inet","local":"203.0.113.1","prefixlen":24}]}]
        """;

    static readonly Dictionary<string, Link> Links = IpBackend.ParseLinks(Json).ToDictionary(l => l.Name);

    [Fact]
    public void An_owned_keyed_tunnel_reads_back_equal_to_what_was_asked_for()
    {
        var l = Links["gre_black"];

        Assert.Equal(new GreTunnel("gre_black", GreMode.Gre, IPAddress.Parse("203.0.113.1"), IPAddress.Parse("203.0.113.2"), 1001, 1001, mtu: 1472), l.Gre);
        Assert.True(l.Up);
        Assert.True(TunnelPlanner.IsOwned(l));
        Assert.Equal(["10.255.0.1/30", "fe80::200:5efe:cb00:7101/64"], l.Addresses.Select(a => a.ToString()));
    }

    [Fact]
    public void Tap_ip6gre_and_bound_tunnels_read_their_parameters()
    {
        Assert.Equal(new GreTunnel("g2", GreMode.GreTap, IPAddress.Parse("203.0.113.1"), IPAddress.Parse("203.0.113.2"), tos: 0x10, pmtuDisc: false, mtu: 1362), Links["g2"].Gre);
        Assert.Equal(new GreTunnel("g3", GreMode.Ip6Gre, IPAddress.Parse("2001:db8::1"), IPAddress.Parse("2001:db8::2"), ttl: 255, tos: 0x10, mtu: 1348), Links["g3"].Gre);
        Assert.Equal(new GreTunnel("g5", GreMode.Gre, null, IPAddress.Parse("203.0.113.3"), 7, 7, ttl: 64, mtu: 1300, underlay: "v0"), Links["g5"].Gre);
    }

    [Fact]
    public void Fallback_devices_and_other_kinds_carry_no_tunnel_and_are_never_ours()
    {
        Assert.Null(Links["gre0"].Gre);
        Assert.False(TunnelPlanner.IsOwned(Links["gre0"]));
        Assert.Equal(("veth", 1400u, (GreTunnel?)null), (Links["v0"].Kind, Links["v0"].Mtu, Links["v0"].Gre));
        Assert.False(TunnelPlanner.IsOwned(Links["g5"]));
    }
}
