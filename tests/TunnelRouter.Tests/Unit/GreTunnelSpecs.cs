using System.Net;
using TunnelRouter.Core;
using Xunit;

namespace TunnelRouter.Tests.Unit;

public class GreTunnelSpecs
{
    static readonly IPAddress A = IPAddress.Parse("203.0.113.1"), B = IPAddress.Parse("203.0.113.2");
    static readonly IPAddress A6 = IPAddress.Parse("2001:db8::1"), B6 = IPAddress.Parse("2001:db8::2");

    static GreTunnel Gre(uint? key = null, uint mtu = 1476) => new("gre_black", GreMode.Gre, A, B, key, key, mtu: mtu);

    [Theory]
    [InlineData(GreMode.Gre, false, 24)]
    [InlineData(GreMode.Gre, true, 28)]
    [InlineData(GreMode.GreTap, false, 38)]
    [InlineData(GreMode.GreTap, true, 42)]
    [InlineData(GreMode.Ip6Gre, false, 52)]
    [InlineData(GreMode.Ip6Gre, true, 56)]
    [InlineData(GreMode.Ip6GreTap, false, 66)]
    [InlineData(GreMode.Ip6GreTap, true, 70)]
    public void The_overhead_is_what_the_kernel_subtracts_from_the_underlay_MTU(GreMode mode, bool key, int overhead)
    {
        Assert.Equal(overhead, mode.Overhead(key));
    }

    [Fact]
    public void Over_a_1500_link_plain_GRE_gets_1476_and_ip6gre_1448()
    {
        Assert.Equal(1476, 1500 - GreMode.Gre.Overhead(false));
        Assert.Equal(1448, 1500 - GreMode.Ip6Gre.Overhead(false));
    }

    [Fact]
    public void A_plain_tunnel_renders_like_the_seed_plus_its_MTU()
    {
        var add = new AddLink(Gre());

        Assert.Equal("ip link add gre_black mtu 1476 type gre remote 203.0.113.2 local 203.0.113.1", add.Display(new TableNames(), new ProtocolNames()));
        Assert.Equal("link add gre_black mtu 1476 type gre remote 203.0.113.2 local 203.0.113.1", add.Batch());
        Assert.Equal(System.Net.Sockets.AddressFamily.Unspecified, add.Family);
    }

    [Fact]
    public void Every_parameter_renders_for_iproute2()
    {
        var t = new GreTunnel("gre1", GreMode.GreTap, null, B, iKey: 5, oKey: 6, ttl: 64, tos: 0x10, pmtuDisc: false, mtu: 1400, underlay: "eth0");

        Assert.Equal("link add gre1 mtu 1400 type gretap remote 203.0.113.2 ikey 5 okey 6 ttl 64 tos 0x10 nopmtudisc dev eth0", new AddLink(t).Batch());
    }

    [Fact]
    public void Ip6gre_speaks_of_hop_limit_and_traffic_class_and_has_no_pmtudisc_switch()
    {
        var t = new GreTunnel("gre6", GreMode.Ip6Gre, A6, B6, ttl: 255, tos: 0x20, pmtuDisc: false, mtu: 1448);

        Assert.True(t.PMtuDisc);
        Assert.Equal("link add gre6 mtu 1448 type ip6gre remote 2001:db8::2 local 2001:db8::1 hoplimit 255 tclass 0x20", new AddLink(t).Batch());
        Assert.Equal(64, new GreTunnel("x", GreMode.Ip6Gre, null, B6).Ttl);
        Assert.Equal(0, new GreTunnel("x", GreMode.Gre, null, B).Ttl);
    }

    [Fact]
    public void A_change_in_place_spells_out_every_parameter_since_iproute2_keeps_what_is_not_said()
    {
        var change = new ChangeLink(Gre(key: 1, mtu: 1472), Gre(key: 2, mtu: 1472));

        Assert.Equal("link set gre_black mtu 1472 type gre remote 203.0.113.2 local 203.0.113.1 ikey 2 okey 2 ttl inherit tos 0x00 pmtudisc", change.Batch());
        Assert.Equal(new ChangeLink(Gre(key: 2, mtu: 1472), Gre(key: 1, mtu: 1472)), change.Inverse());
    }

    [Fact]
    public void Link_and_address_changes_render_and_invert()
    {
        var a = InterfaceAddress.Parse("a", "10.255.0.1/30");

        Assert.Equal("link set gre_black alias tunnel-router", new SetLinkAlias("gre_black", "tunnel-router").Batch());
        Assert.Equal("link set gre_black alias \"\"", new SetLinkAlias("gre_black", "tunnel-router").Inverse().Batch());
        Assert.Equal("link set gre_black up", new SetLinkUp("gre_black").Batch());
        Assert.Equal(new SetLinkDown("gre_black"), new SetLinkUp("gre_black").Inverse());
        Assert.Equal("link set gre_black mtu 1400", new SetLinkMtu("gre_black", 1400, 1476).Batch());
        Assert.Equal(new SetLinkMtu("gre_black", 1476, 1400), new SetLinkMtu("gre_black", 1400, 1476).Inverse());
        Assert.Equal("ip -4 address add 10.255.0.1/30 dev gre_black", new AddAddress("gre_black", a).Display(new TableNames(), new ProtocolNames()));
        Assert.Equal("ip -6 address del fd00::1/64 dev gre_black",
            new DeleteAddress("gre_black", InterfaceAddress.Parse("a", "fd00::1/64")).Display(new TableNames(), new ProtocolNames()));
        Assert.Equal(new DeleteAddress("gre_black", a), new AddAddress("gre_black", a).Inverse());
        Assert.Equal(new DeleteLink(Gre()), new AddLink(Gre()).Inverse());
    }

    [Fact]
    public void Undoing_a_delete_brings_the_link_back_marked_up_and_addressed()
    {
        var a = InterfaceAddress.Parse("a", "10.255.0.1/30");
        var ll = InterfaceAddress.Parse("a", "fe80::200:5efe:cb00:7101/64");
        var was = new Link("gre_black", 7, "gre", 1476, true, "tunnel-router", Gre(), [a, ll]);

        var undo = new DeleteLink(Gre(), was).Undo().Select(c => c.Batch()!).ToArray();

        Assert.Equal(
        [
            "link add gre_black mtu 1476 type gre remote 203.0.113.2 local 203.0.113.1",
            "link set gre_black alias tunnel-router",
            "link set gre_black up",
            "address add 10.255.0.1/30 dev gre_black",
        ], undo);
    }

    [Fact]
    public void Tunnels_with_equal_parameters_are_equal_and_any_difference_makes_them_differ()
    {
        Assert.Equal(Gre(key: 1), Gre(key: 1));
        Assert.Equal(Gre(key: 1).GetHashCode(), Gre(key: 1).GetHashCode());
        Assert.NotEqual(Gre(key: 1), Gre(key: 2));
        Assert.NotEqual(Gre(), Gre(mtu: 1400));
        Assert.NotEqual(Gre(), Gre() with { Remote = IPAddress.Parse("203.0.113.3") });
        Assert.NotEqual(Gre(), Gre() with { Mode = GreMode.GreTap });
    }

    [Fact]
    public void Only_what_iproute2_cannot_change_in_place_needs_a_new_link()
    {
        Assert.False(Gre(key: 1).NeedsRecreate(Gre(key: 2)));
        Assert.False(Gre().NeedsRecreate(Gre() with { Remote = IPAddress.Parse("203.0.113.9"), Ttl = 64 }));
        Assert.False(Gre().NeedsRecreate(Gre(mtu: 1400)));
        Assert.True(Gre().NeedsRecreate(Gre(key: 1)));
        Assert.True(Gre(key: 1).NeedsRecreate(Gre()));
        Assert.True(Gre().NeedsRecreate(Gre() with { Mode = GreMode.GreTap }));
        Assert.True(Gre().NeedsRecreate(Gre() with { Underlay = "eth0" }));
        Assert.True(Gre().NeedsRecreate(Gre() with { Local = null }));
    }
}
