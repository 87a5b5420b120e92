using System.Net;
using TunnelRouter.Core;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>Issue 13: routes that make a gateway reachable go in first and come out last, whatever the file's order.</summary>
public class RouteOrderSpecs
{
    const byte Ours = 148;
    static readonly Ownership Owns = Ownership.ByProtocol(Ours);

    static Route R(string dst, string? via = null, bool onlink = false, string dev = "tun2", uint table = 100) =>
        new(Net.ParsePrefix("dst", dst), table, Ours, device: dev, gateway: via is null ? null : IPAddress.Parse(via), onLink: onlink);

    static string[] Lines(IEnumerable<Change> plan) => plan.Select(IpCommand.Batch).ToArray();

    [Fact]
    public void In_net30_the_peers_route_goes_in_before_the_default_route_via_the_peer()
    {
        var desired = new KernelState([R("default", via: "10.8.0.5"), R("198.51.100.7/32", via: "10.8.0.5"), R("10.8.0.5/32")], []);

        var plan = Lines(Planner.Plan(desired, KernelState.Empty, Owns));

        Assert.Equal(
        [
            "route add 10.8.0.5 dev tun2 table 100 proto 148",
            "route add default via 10.8.0.5 dev tun2 table 100 proto 148",
            "route add 198.51.100.7 via 10.8.0.5 dev tun2 table 100 proto 148",
        ], plan);
    }

    [Fact]
    public void Deletes_go_the_other_way_round()
    {
        var current = new KernelState([R("10.8.0.0/24"), R("default", via: "10.8.0.1")], []);

        var plan = Lines(Planner.Remove(current, Owns));

        Assert.Equal(["route del default via 10.8.0.1 dev tun2 table 100 proto 148", "route del 10.8.0.0/24 dev tun2 table 100 proto 148"], plan);
    }

    [Fact]
    public void A_chain_of_gateways_is_ordered_link_by_link()
    {
        var desired = new KernelState([R("192.0.2.0/24", via: "10.9.0.1"), R("10.9.0.0/24", via: "10.8.0.1"), R("10.8.0.0/24")], []);

        var plan = Lines(Planner.Plan(desired, KernelState.Empty, Owns));

        Assert.Equal(["10.8.0.0/24", "10.9.0.0/24", "192.0.2.0/24"], plan.Select(l => l.Split(' ')[2]));
    }

    [Fact]
    public void An_onlink_route_needs_nothing_before_it_and_keeps_the_files_order()
    {
        var desired = new KernelState([R("default", via: "10.8.0.1", onlink: true), R("10.8.0.0/24")], []);

        var plan = Lines(Planner.Plan(desired, KernelState.Empty, Owns));

        Assert.Equal(["default", "10.8.0.0/24"], plan.Select(l => l.Split(' ')[2]));
    }

    [Fact]
    public void A_route_in_another_table_does_not_count_and_a_cycle_keeps_the_order()
    {
        var other = new KernelState([R("default", via: "10.8.0.1"), R("10.8.0.0/24", table: 200)], []);
        Assert.Equal(["default", "10.8.0.0/24"], Lines(Planner.Plan(other, KernelState.Empty, Owns)).Select(l => l.Split(' ')[2]));

        var cycle = new KernelState([R("10.1.0.0/24", via: "10.2.0.1"), R("10.2.0.0/24", via: "10.1.0.1")], []);
        Assert.Equal(2, Planner.Plan(cycle, KernelState.Empty, Owns).Count);
    }
}
