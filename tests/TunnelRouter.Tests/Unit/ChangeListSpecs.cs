using System.Net;
using TunnelRouter.Core;
using TunnelRouter.Kernel.Netlink;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>The plan of a prefix file is read, not copied: the planner's changes are made as they are read, joined and
/// cut without copies, and a route of a packed list goes to the kernel written from the packed form.</summary>
public class ChangeListSpecs
{
    const byte Ours = 147;
    static readonly Ownership Owns = Ownership.ByProtocol(Ours);

    static Route R(string dst, string? dev = "tun0", uint table = 400, string? via = null, string? src = null, uint? metric = null,
        bool onlink = false, uint mtu = 0, RouteType type = RouteType.Unicast) =>
        new(Net.ParsePrefix("dst", dst), table, Ours, device: dev, gateway: via is null ? null : IPAddress.Parse(via),
            source: src is null ? null : IPAddress.Parse(src), metric: metric, type: type, onLink: onlink, mtu: mtu);

    static PackedRoutes Packed(params Route[] routes)
    {
        var packed = new PackedRoutes();
        foreach (var r in routes) packed.Add(r);
        return packed;
    }

    [Fact]
    public void A_plan_of_packed_routes_reads_as_the_changes_and_hands_out_each_route_packed()
    {
        var desired = Packed(R("10.1.0.0/24"), R("10.2.0.0/24"), R("fd00:1::/64"));
        var current = Packed(R("10.9.0.0/24"));

        var plan = Planner.Plan(new KernelState(desired, []), new KernelState(current, []), Owns);

        Assert.Equal(
        [
            "route add 10.1.0.0/24 dev tun0 table 400 proto 147",
            "route add 10.2.0.0/24 dev tun0 table 400 proto 147",
            "route add fd00:1::/64 dev tun0 table 400 proto 147",
            "route del 10.9.0.0/24 dev tun0 table 400 proto 147",
        ], plan.Select(IpCommand.Batch));
        var packed = Assert.IsAssignableFrom<IPackedChanges>(plan);
        Assert.True(packed.TryPacked(1, out var second, out var delete));
        Assert.False(delete);
        Assert.Equal(R("10.2.0.0/24"), second.ToRoute());
        Assert.True(packed.TryPacked(3, out var last, out delete));
        Assert.True(delete);
        Assert.Equal(R("10.9.0.0/24"), last.ToRoute());
    }

    [Fact]
    public void A_change_that_is_not_a_packed_route_is_read_by_index()
    {
        var rule = new Rule(System.Net.Sockets.AddressFamily.InterNetwork, 5000, RuleAction.Lookup, 400, Ours, from: Net.ParsePrefix("from", "100.64.0.0/24"));

        var plan = Planner.Plan(new KernelState(Packed(R("10.1.0.0/24")), [rule]), KernelState.Empty, Owns);

        Assert.Equal(2, plan.Count);
        Assert.False(((IPackedChanges)plan).TryPacked(1, out _, out _));
        Assert.Equal(new AddRule(rule), plan[1]);
    }

    [Fact]
    public void Joined_and_cut_lists_read_through_to_their_parts_packed_routes_included()
    {
        var planned = Planner.Plan(new KernelState(Packed(R("10.1.0.0/24"), R("10.2.0.0/24")), []), KernelState.Empty, Owns);
        Change sysctl = new SetSysctl("net.ipv4.ip_forward", "0", "1");

        var joined = ChangeList.Concat([sysctl], [], planned, [sysctl]);
        var cut = ChangeList.Slice(joined, 2, 2);

        Assert.Equal([sysctl, planned[0], planned[1], sysctl], joined);
        Assert.Equal([planned[1], sysctl], cut);
        Assert.True(((IPackedChanges)joined).TryPacked(2, out var route, out _));
        Assert.Equal(R("10.2.0.0/24"), route.ToRoute());
        Assert.True(((IPackedChanges)cut).TryPacked(0, out route, out _));
        Assert.Equal(R("10.2.0.0/24"), route.ToRoute());
        Assert.False(((IPackedChanges)cut).TryPacked(1, out _, out _));
        Assert.Same(planned, ChangeList.Concat([], planned, []));
        Assert.Same(planned, ChangeList.Slice(planned, 0, planned.Count));
    }

    public static TheoryData<Route> Routes() =>
    [
        R("10.1.0.0/24"),
        R("default", dev: null, via: "192.0.2.1", metric: 20),
        R("192.0.2.7", via: "10.8.0.1", onlink: true, src: "10.8.0.2", mtu: 1400, table: 1000),
        R("fd00:1::/64", via: "fe80::1"),
        R("2001:db8::/32", dev: null, type: RouteType.Unreachable, metric: 4294967295),
    ];

    [Theory]
    [MemberData(nameof(Routes))]
    public void A_packed_route_is_written_as_the_same_request_as_its_route(Route route)
    {
        foreach (var (type, flags) in new[] { (Nl.RTM_NEWROUTE, (ushort)(Nl.NLM_F_CREATE | Nl.NLM_F_EXCL)), (Nl.RTM_DELROUTE, (ushort)0) })
        {
            var made = new NetlinkWriter();
            NetlinkRoutes.Write(made, type, flags, 7, route, 3);
            var packed = new NetlinkWriter();
            NetlinkRoutes.Write(packed, type, flags, 7, Packed(route).At(0), 3);

            Assert.Equal(made.Span.ToArray(), packed.Span.ToArray());
        }
    }
}
