using System.Net;
using TunnelRouter.Core;
using Xunit;

namespace TunnelRouter.Tests.Unit;

public class TunnelPlannerSpecs
{
    const byte Ours = 147;
    static readonly IPAddress A = IPAddress.Parse("203.0.113.1"), B = IPAddress.Parse("203.0.113.2");
    static readonly InterfaceAddress Inner = InterfaceAddress.Parse("a", "10.255.0.1/30");

    static GreTunnel Gre(string name = "gre_black", uint? key = null, uint mtu = 1476) => new(name, GreMode.Gre, A, B, key, key, mtu: mtu);

    static Route Over(string dst, string dev = "gre_black", uint table = 254, byte proto = Ours) =>
        new(Net.ParsePrefix("d", dst), table, proto, device: dev);

    static TunnelSpec Spec(GreTunnel t, string route = "192.168.20.0/24") => new(t, [Inner], [Over(route, t.Name)]);

    static Link Have(GreTunnel t, bool up = true, string? alias = TunnelPlanner.OwnerAlias, params InterfaceAddress[] addresses) =>
        new(t.Name, 7, t.Mode.Kind(), t.Mtu, up, alias, t, addresses.Length == 0 ? [Inner] : addresses);

    static string[] Lines(IEnumerable<Change> plan) => plan.Select(c => c.ToString()).ToArray();

    [Fact]
    public void A_new_tunnel_is_created_marked_brought_up_addressed_and_routed_in_that_order()
    {
        var plan = TunnelPlanner.Plan([Spec(Gre())], [], [], Ours);

        Assert.Equal(
        [
            "ip link add gre_black mtu 1476 type gre remote 203.0.113.2 local 203.0.113.1",
            "ip link set gre_black alias tunnel-router",
            "ip link set gre_black up",
            "ip -4 address add 10.255.0.1/30 dev gre_black",
            "ip -4 route add 192.168.20.0/24 dev gre_black table 254 proto 147",
        ], Lines(plan));
    }

    [Fact]
    public void A_tunnel_as_the_policy_wants_it_plans_nothing()
    {
        Assert.Empty(TunnelPlanner.Plan([Spec(Gre())], [Have(Gre())], [Over("192.168.20.0/24")], Ours));
    }

    [Fact]
    public void A_key_appearing_recreates_the_link_and_puts_back_its_addresses_and_routes()
    {
        var plan = TunnelPlanner.Plan([Spec(Gre(key: 7, mtu: 1472))], [Have(Gre())], [Over("192.168.20.0/24")], Ours);

        Assert.Equal(
        [
            "ip link del gre_black",
            "ip link add gre_black mtu 1472 type gre remote 203.0.113.2 local 203.0.113.1 ikey 7 okey 7",
            "ip link set gre_black alias tunnel-router",
            "ip link set gre_black up",
            "ip -4 address add 10.255.0.1/30 dev gre_black",
            "ip -4 route add 192.168.20.0/24 dev gre_black table 254 proto 147",
        ], Lines(plan));
    }

    [Fact]
    public void A_new_key_value_changes_the_link_in_place_and_leaves_addresses_and_routes_alone()
    {
        var plan = TunnelPlanner.Plan([Spec(Gre(key: 8, mtu: 1472))], [Have(Gre(key: 7, mtu: 1472))], [Over("192.168.20.0/24")], Ours);

        var change = Assert.IsType<ChangeLink>(Assert.Single(plan));
        Assert.Equal(7u, change.Old.IKey);
        Assert.Equal(8u, change.New.OKey);
    }

    [Fact]
    public void Only_a_new_MTU_is_set_on_its_own()
    {
        var plan = TunnelPlanner.Plan([Spec(Gre(mtu: 1400))], [Have(Gre())], [Over("192.168.20.0/24")], Ours);

        Assert.Equal(new SetLinkMtu("gre_black", 1400, 1476), Assert.Single(plan));
    }

    [Fact]
    public void A_tunnel_someone_brought_down_is_brought_up_again()
    {
        Assert.Equal(new SetLinkUp("gre_black"),
            Assert.Single(TunnelPlanner.Plan([Spec(Gre())], [Have(Gre(), up: false)], [Over("192.168.20.0/24")], Ours)));
    }

    [Fact]
    public void Addresses_are_added_before_routes_and_extra_ones_removed_after_but_never_the_kernels_link_local()
    {
        var old = InterfaceAddress.Parse("a", "10.254.0.1/30");
        var linkLocal = InterfaceAddress.Parse("a", "fe80::200:5efe:cb00:7101/64");

        var plan = TunnelPlanner.Plan([Spec(Gre())], [Have(Gre(), addresses: [old, linkLocal])], [Over("192.168.20.0/24")], Ours);

        Assert.Equal(["ip -4 address add 10.255.0.1/30 dev gre_black", "ip -4 address del 10.254.0.1/30 dev gre_black"], Lines(plan));
    }

    [Fact]
    public void A_tunnel_gone_from_the_policy_is_deleted_last_and_other_tunnels_are_untouched()
    {
        var other = Gre("gre_white") with { Remote = IPAddress.Parse("203.0.113.3") };

        var plan = TunnelPlanner.Plan([Spec(Gre())], [Have(Gre()), Have(other)],
            [Over("192.168.20.0/24"), Over("192.168.30.0/24", "gre_white")], Ours);

        Assert.Equal(["ip -4 route del 192.168.30.0/24 dev gre_white table 254 proto 147", "ip link del gre_white"], Lines(plan));
    }

    [Fact]
    public void Links_without_the_mark_are_never_touched_even_of_kind_gre()
    {
        var foreign = Have(Gre("gre_hand"), alias: null);

        Assert.Empty(TunnelPlanner.Plan([], [foreign], [Over("10.9.0.0/16", "gre_hand", proto: 4)], Ours));
        Assert.Empty(TunnelPlanner.Remove([foreign]));
    }

    [Fact]
    public void A_policy_tunnel_whose_name_a_foreign_link_holds_is_a_conflict()
    {
        var e = Assert.Throws<ConflictException>(() => TunnelPlanner.Plan([Spec(Gre())], [Have(Gre(), alias: "someone-else")], [], Ours));

        Assert.Equal("link gre_black exists and was not created by tunnel-router (its alias is not 'tunnel-router'); " +
                     "rename the tunnel in the policy or delete the link", e.Message);
    }

    [Fact]
    public void Foreign_routes_over_our_tunnel_are_left_alone()
    {
        var plan = TunnelPlanner.Plan([Spec(Gre())], [Have(Gre())], [Over("192.168.20.0/24"), Over("10.1.0.0/16", proto: 4)], Ours);

        Assert.Empty(plan);
    }

    [Fact]
    public void A_route_moving_from_a_removed_tunnel_to_a_new_one_is_replaced_before_the_old_link_goes()
    {
        var white = Gre("gre_white") with { Remote = IPAddress.Parse("203.0.113.3") };

        var plan = TunnelPlanner.Plan([Spec(white, "192.168.20.0/24")], [Have(Gre())], [Over("192.168.20.0/24")], Ours);

        Assert.Equal("ip -4 route replace 192.168.20.0/24 dev gre_white table 254 proto 147", Lines(plan)[4]);
        Assert.Equal("ip link del gre_black", Lines(plan)[^1]);
    }

    [Fact]
    public void Flush_deletes_every_owned_tunnel()
    {
        Assert.Equal(["ip link del gre_black"], Lines(TunnelPlanner.Remove([Have(Gre()), Have(Gre("x"), alias: null)])));
    }
}
