using System.Net;
using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>Tunnels and routing planned together by the reconciler, against a snapshot of plain data.</summary>
public class TunnelReconcilerSpecs
{
    static readonly GreTunnel Black = new("gre_black", GreMode.Gre, IPAddress.Parse("203.0.113.1"), IPAddress.Parse("203.0.113.2"), mtu: 1476);
    static readonly InterfaceAddress Inner = InterfaceAddress.Parse("a", "10.255.0.1/30");
    static readonly Link Inet0 = new("inet0", 2, "veth", 1500, true, null, null, [InterfaceAddress.Parse("a", "203.0.113.1/24")]);
    static readonly Link BlackLink = new("gre_black", 7, "gre", 1476, true, TunnelPlanner.OwnerAlias, Black, [Inner]);
    static readonly Route OverBlack = new(Net.ParsePrefix("d", "192.168.20.0/24"), TableNames.Main, 147, device: "gre_black");

    static TunnelOptions Seed() => new()
    {
        Name = "gre_black", Local = "203.0.113.1", Remote = "203.0.113.2", Addresses = ["10.255.0.1/30"], Routes = ["192.168.20.0/24"],
    };

    /// <summary>A kernel of plain data: the links and routes given; the route to any remote goes out of inet0.</summary>
    static KernelSnapshot Kernel(IReadOnlyList<Link> links, IReadOnlyList<Route> routes) => new()
    {
        State = new KernelState(routes, []),
        Links = links,
        RouteDevices = new Dictionary<IPAddress, string?> { [IPAddress.Parse("203.0.113.2")] = "inet0" },
    };

    List<string> PlanAll(TunnelRouterOptions options, KernelSnapshot snapshot) =>
        Reconciler.Plan(PolicyParser.Parse(options, Iproute2Files.Of(), "policy.json"), snapshot, ReconcileMode.Converge)
            .Changes.Select(c => c.ToString()).ToList();

    [Fact]
    public void Tunnels_come_first_and_their_routes_are_not_the_routing_parts_to_delete()
    {
        // inet0's connected network (the kernel's, protocol 2) reaches the route's gateway.
        var connected = new Route(Net.ParsePrefix("c", "203.0.113.0/24"), TableNames.Main, 2, device: "inet0");
        var plan = PlanAll(new TunnelRouterOptions { Tunnels = [Seed()], Routes = ["10.20.0.0/16 via 203.0.113.254"] },
            Kernel([Inet0, BlackLink], [OverBlack, connected]));

        Assert.Equal(["ip -4 route add 10.20.0.0/16 via 203.0.113.254 table 254 proto 147"], plan);
    }

    [Fact]
    public void A_tunnel_removed_from_the_policy_loses_its_route_once_then_its_link()
    {
        var plan = PlanAll(new TunnelRouterOptions(), Kernel([Inet0, BlackLink], [OverBlack]));

        Assert.Equal(["ip -4 route del 192.168.20.0/24 dev gre_black table 254 proto 147", "ip link del gre_black"], plan);
    }

    [Fact]
    public void The_MTU_left_to_tunnel_router_is_the_underlays_minus_the_overhead()
    {
        var keyed = Seed();
        keyed.Key = "5";
        var change = Assert.Single(PlanAll(new TunnelRouterOptions { Tunnels = [keyed] },
            Kernel([Inet0, BlackLink with { Gre = Black with { IKey = 4, OKey = 4, Mtu = 1472 }, Mtu = 1472 }], [OverBlack])));

        Assert.StartsWith("ip link set gre_black mtu 1472 type gre remote 203.0.113.2 local 203.0.113.1 ikey 5 okey 5", change);
    }

    [Fact]
    public void A_top_level_route_over_a_tunnel_is_an_error_pointing_at_the_tunnels_routes()
    {
        var e = Assert.Throws<InputException>(() =>
            PlanAll(new TunnelRouterOptions { Tunnels = [Seed()], Routes = ["192.168.30.0/24 dev gre_black"] }, Kernel([Inet0], [])));

        Assert.Equal("policy.json: Routes[0]: goes over tunnel gre_black; list it in Tunnels[0].Routes, where it is made and removed with the tunnel", e.Message);
    }
}
