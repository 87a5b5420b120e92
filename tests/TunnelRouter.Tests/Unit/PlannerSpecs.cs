using System.Net;
using System.Net.Sockets;
using TunnelRouter.Core;
using Xunit;

namespace TunnelRouter.Tests.Unit;

public class PlannerSpecs
{
    const byte Ours = 148, Theirs = 4;
    static readonly Ownership Owns = Ownership.ByProtocol(Ours);

    static Route R(string dst, string? dev = "tun0", byte proto = Ours, uint table = 200, string? via = null, uint? metric = null) =>
        new(Net.ParsePrefix("dst", dst), table, proto, device: dev, gateway: via is null ? null : IPAddress.Parse(via), metric: metric);

    static Rule From(string net, uint pref = 1000, byte proto = Ours) =>
        new(Net.ParsePrefix("from", net).Family(), pref, RuleAction.Lookup, 200, proto, from: Net.ParsePrefix("from", net));

    static string[] Lines(IEnumerable<Change> plan) => plan.Select(IpCommand.Batch).ToArray();

    [Fact]
    public void Missing_routes_are_added_and_present_ones_left_alone()
    {
        var desired = new KernelState([R("10.10.10.0/24"), R("fd00::/64")], []);
        var current = new KernelState([R("10.10.10.0/24")], []);

        Assert.Equal(["route add fd00::/64 dev tun0 table 200 proto 148"], Lines(Planner.Plan(desired, current, Owns)));
    }

    [Fact]
    public void The_same_state_twice_plans_nothing()
    {
        var state = new KernelState([R("10.10.10.0/24"), R("fd00::/64")], [From("10.10.10.0/24")]);

        Assert.Empty(Planner.Plan(state, state, Owns));
    }

    [Fact]
    public void Owned_objects_no_longer_desired_are_deleted_after_the_adds()
    {
        var desired = new KernelState([R("10.10.11.0/24")], [From("10.10.11.0/24")]);
        var current = new KernelState([R("10.10.10.0/24")], [From("10.10.10.0/24")]);

        Assert.Equal(
        [
            "route add 10.10.11.0/24 dev tun0 table 200 proto 148",
            "rule add from 10.10.11.0/24 pref 1000 lookup 200 protocol 148",
            "rule del from 10.10.10.0/24 pref 1000 lookup 200 protocol 148",
            "route del 10.10.10.0/24 dev tun0 table 200 proto 148",
        ], Lines(Planner.Plan(desired, current, Owns)));
    }

    [Fact]
    public void Foreign_routes_and_rules_are_never_deleted()
    {
        var current = new KernelState([R("192.0.2.0/24", "eth0", Theirs)], [From("192.0.2.0/24", 1000, Theirs)]);

        Assert.Empty(Planner.Plan(KernelState.Empty, current, Owns));
    }

    [Fact]
    public void A_changed_route_with_the_same_key_is_replaced_in_place()
    {
        var desired = new KernelState([R("default", dev: null, via: "192.168.1.1")], []);
        var current = new KernelState([R("default", dev: null, via: "192.168.1.254")], []);

        Assert.Equal(["route replace default via 192.168.1.1 table 200 proto 148"], Lines(Planner.Plan(desired, current, Owns)));
    }

    [Fact]
    public void A_foreign_IPv4_route_in_the_way_is_a_conflict_not_a_silent_takeover()
    {
        var desired = new KernelState([R("10.10.10.0/24")], []);
        var current = new KernelState([R("10.10.10.0/24", "eth0", Theirs)], []);

        var e = Assert.Throws<ConflictException>(() => Planner.Plan(desired, current, Owns));
        Assert.Contains("not owned", e.Message);
    }

    [Fact]
    public void IPv4_changes_come_before_IPv6_within_a_phase()
    {
        var desired = new KernelState([R("fd00::/64"), R("10.0.0.0/8")], []);

        Assert.Equal([AddressFamily.InterNetwork, AddressFamily.InterNetworkV6],
            Planner.Plan(desired, KernelState.Empty, Owns).Select(c => c.Family).ToArray());
    }

    [Fact]
    public void IPv4_rules_go_in_after_their_routes_and_IPv6_rules_before_them_and_come_out_the_other_way()
    {
        // An IPv6 rule change makes the kernel walk every IPv6 route; IPv4 rules cost the same either way. A table's
        // unreachable route (a kill switch written as a Routes line) is in place before any rule points at it.
        var kill = new Route(Net.ParsePrefix("dst", "::/0"), 200, Ours, metric: uint.MaxValue, type: RouteType.Unreachable);
        var both = new KernelState([R("10.10.10.0/24"), R("fd00::/64"), kill], [From("10.10.10.0/24"), From("fd00:1::/64")]);

        Assert.Equal(
        [
            "route add 10.10.10.0/24 dev tun0 table 200 proto 148",
            "rule add from 10.10.10.0/24 pref 1000 lookup 200 protocol 148",
            "route add unreachable default table 200 proto 148 metric 4294967295",
            "rule add from fd00:1::/64 pref 1000 lookup 200 protocol 148",
            "route add fd00::/64 dev tun0 table 200 proto 148",
        ], Lines(Planner.Plan(both, KernelState.Empty, Owns)));
        Assert.Equal(
        [
            "rule del from 10.10.10.0/24 pref 1000 lookup 200 protocol 148",
            "route del 10.10.10.0/24 dev tun0 table 200 proto 148",
            "route del fd00::/64 dev tun0 table 200 proto 148",
            "rule del from fd00:1::/64 pref 1000 lookup 200 protocol 148",
            "route del unreachable default table 200 proto 148 metric 4294967295",
        ], Lines(Planner.Remove(both, Owns)));
    }

    [Fact]
    public void Every_change_inverts_to_its_opposite()
    {
        var a = R("10.0.0.0/8");
        var b = R("10.0.0.0/8", via: "10.10.10.2");

        Assert.Equal(new DeleteRoute(a), new AddRoute(a).Inverse());
        Assert.Equal(new AddRoute(a), new DeleteRoute(a).Inverse());
        Assert.Equal(new ReplaceRoute(b, a), new ReplaceRoute(a, b).Inverse());
        Assert.Equal(new DeleteRule(From("10.0.0.0/8")), new AddRule(From("10.0.0.0/8")).Inverse());
    }

    [Fact]
    public void Remove_plans_deleting_only_owned_objects()
    {
        var current = new KernelState([R("10.0.0.0/8"), R("192.0.2.0/24", "eth0", Theirs)], [From("10.0.0.0/8"), From("192.0.2.0/24", 1000, Theirs)]);

        Assert.Equal(
        [
            "rule del from 10.0.0.0/8 pref 1000 lookup 200 protocol 148",
            "route del 10.0.0.0/8 dev tun0 table 200 proto 148",
        ], Lines(Planner.Remove(current, Owns)));
    }
}
