using System.Net;
using System.Net.Sockets;
using TunnelRouter.Host;
using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;
using TunnelRouter.Tests.Support;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>Balancing Failover lines ("via wan1 weight 3 wan2 weight 1") parsed and planned from hand-made snapshots: one
/// nexthop group per line and family over the healthy uplinks, which a failover rewrites without touching a route.</summary>
public class UplinkBalanceSpecs : IDisposable
{
    const byte Proto = 147;
    readonly string _dir = Directory.CreateTempSubdirectory("tunnel-router-balance-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    ParsedPolicy Parse(TunnelRouterOptions o) => PolicyParser.Parse(o, Iproute2Files.Load(_dir), "policy.json");

    static TunnelRouterOptions TwoUplinks(string failover = "table vpn via wan1 weight 3 wan2 weight 1") => new()
    {
        Tables = new() { ["wan1"] = 11, ["wan2"] = 12, ["vpn"] = 200 },
        FailClosed = ["vpn"],
        Rules = ["from 192.168.50.0/24 lookup vpn"],
        Uplinks =
        [
            new UplinkOptions { Name = "wan1", Interface = "eth0", Table = "wan1", Address = "198.51.100.2/24", Gateway = "198.51.100.1", Track = "9.9.9.9" },
            new UplinkOptions { Name = "wan2", Interface = "eth1", Table = "wan2", Address = "203.0.113.2/24", Gateway = "203.0.113.1", Track = "9.9.9.9" },
        ],
        Failover = [failover],
    };

    static readonly KernelState Connected = new(
    [
        new Route(IPNetwork.Parse("198.51.100.0/24"), TableNames.Main, 2, "eth0"), new Route(IPNetwork.Parse("203.0.113.0/24"), TableNames.Main, 2, "eth1"),
    ], []);

    static readonly uint Wan1 = Nexthop.IdOf(Proto, 1), Wan2 = Nexthop.IdOf(Proto, 3), Group = Nexthop.IdOf(Proto, 0x80000);

    static KernelSnapshot Kernel(KernelState? state = null, params (string Uplink, PathState State)[] health) => new()
    {
        State = state ?? Connected,
        NftInstalled = false,
        Links = Snapshots.Links("eth0", "eth1"),
        UplinkStates = health.ToDictionary(h => new UplinkPath(h.Uplink, AddressFamily.InterNetwork), h => h.State),
    };

    /// <summary>The kernel after a plan was applied to <paramref name="before"/>.</summary>
    static KernelState Applied(KernelState before, PolicyPlan plan)
    {
        var routes = before.Routes.ToList();
        var rules = before.Rules.ToList();
        var nexthops = before.Nexthops.ToList();
        foreach (var c in plan.Changes)
            switch (c)
            {
                case AddRoute a: routes.Add(a.Route); break;
                case DeleteRoute d: routes.Remove(d.Route); break;
                case ReplaceRoute r: routes[routes.IndexOf(r.Old)] = r.New; break;
                case AddRule a: rules.Add(a.Rule); break;
                case DeleteRule d: rules.Remove(d.Rule); break;
                case AddNexthop a: nexthops.Add(a.Nexthop); break;
                case DeleteNexthop d: nexthops.Remove(d.Nexthop); break;
                case ReplaceNexthop r: nexthops[nexthops.IndexOf(r.Old)] = r.New; break;
            }
        return new KernelState(routes, rules) { Nexthops = nexthops };
    }

    static List<string> Lines(PolicyPlan plan, Func<string, bool> which) => [.. plan.Changes.Select(c => c.Batch()).OfType<string>().Where(which)];

    static bool Balancing(string line) => line.StartsWith("nexthop", StringComparison.Ordinal) || line.Contains("table 200") && line.Contains("default nhid");

    [Fact]
    public void A_weighted_line_is_parsed_with_a_weight_per_uplink_and_1_where_none_is_written()
    {
        var f = Parse(TwoUplinks("table vpn via wan1 weight 3 wan2 metric 7")).Failover.Single();

        Assert.True(f.Balances);
        Assert.Equal(["wan1", "wan2"], f.Via);
        Assert.Equal([(ushort)3, (ushort)1], f.Weights);
        Assert.Equal(7u, f.Metric);
    }

    [Fact]
    public void A_line_without_weights_still_fails_over_to_one_uplink()
    {
        Assert.False(Parse(TwoUplinks("table vpn via wan1 wan2")).Failover.Single().Balances);
    }

    [Fact]
    public void The_table_balances_over_both_uplinks_through_one_group_added_after_its_members_and_before_its_route()
    {
        var plan = Reconciler.Plan(Parse(TwoUplinks()), Kernel(), ReconcileMode.Converge);

        Assert.Equal([
            $"nexthop add id {Wan1} via 198.51.100.1 dev eth0 proto {Proto}",
            $"nexthop add id {Wan2} via 203.0.113.1 dev eth1 proto {Proto}",
            $"nexthop add id {Group} group {Wan1},3/{Wan2} proto {Proto}",
            $"route add default nhid {Group} table 200 proto {Proto}",
        ], Lines(plan, Balancing));
        Assert.Contains(plan.Notes, n => n.Text == $"Failover[0]: table vpn IPv4 balanced over wan1 weight 3, wan2 weight 1 (nexthop group {Group})");
    }

    [Fact]
    public void A_second_plan_of_the_applied_state_changes_nothing()
    {
        var policy = Parse(TwoUplinks());
        var applied = Applied(Connected, Reconciler.Plan(policy, Kernel(), ReconcileMode.Converge));

        Assert.Empty(Reconciler.Plan(policy, Kernel(applied), ReconcileMode.Converge).Changes);
    }

    [Fact]
    public void A_dead_uplink_is_taken_out_of_the_group_in_one_change_and_no_route_moves()
    {
        var policy = Parse(TwoUplinks());
        var applied = Applied(Connected, Reconciler.Plan(policy, Kernel(), ReconcileMode.Converge));

        var failover = Reconciler.Plan(policy, Kernel(applied, ("wan1", PathState.Down)), ReconcileMode.Converge);

        Assert.Equal([$"nexthop replace id {Group} group {Wan2} proto {Proto}"], failover.Changes.Select(c => c.Batch()));
        Assert.Contains(failover.Notes, n => n.Text == $"Failover[0]: table vpn IPv4 balanced over wan2 weight 1 (nexthop group {Group}): wan1 is down");
    }

    [Fact]
    public void An_uplink_back_within_its_hold_time_stays_out_of_the_group_while_another_is_up()
    {
        var policy = Parse(TwoUplinks());
        var applied = Applied(Connected, Reconciler.Plan(policy, Kernel(), ReconcileMode.Converge));

        var holding = Reconciler.Plan(policy, Kernel(applied, ("wan1", PathState.Holding)), ReconcileMode.Converge);

        Assert.Equal([$"nexthop replace id {Group} group {Wan2} proto {Proto}"], holding.Changes.Select(c => c.Batch()));
    }

    [Fact]
    public void With_every_uplink_down_the_route_and_its_group_go_and_the_kill_switch_stays()
    {
        var policy = Parse(TwoUplinks());
        var applied = Applied(Connected, Reconciler.Plan(policy, Kernel(), ReconcileMode.Converge));

        var down = Reconciler.Plan(policy, Kernel(applied, ("wan1", PathState.Down), ("wan2", PathState.Down)), ReconcileMode.Converge);

        Assert.Equal([$"route del default nhid {Group} table 200 proto {Proto}", $"nexthop del id {Group}"], down.Changes.Select(c => c.Batch()));
        Assert.Contains(Applied(applied, down).Routes, r => r.Table == 200 && r.Type == RouteType.Unreachable && r.Metric == uint.MaxValue);
        Assert.Contains(down.Notes, n => n.Text.StartsWith("Failover[0]: table vpn IPv4: no uplink is up (wan1 is down, wan2 is down): its kill switch refuses the traffic", StringComparison.Ordinal));
    }

    [Fact]
    public void Flush_removes_the_route_before_its_group_and_the_group_before_its_members_and_leaves_a_foreign_nexthop()
    {
        var policy = Parse(TwoUplinks());
        var applied = Applied(Connected, Reconciler.Plan(policy, Kernel(), ReconcileMode.Converge));
        var foreign = new Nexthop(99, 11, "eth0", IPAddress.Parse("198.51.100.9"));
        applied = applied with { Nexthops = [.. applied.Nexthops, foreign] };

        var flush = Reconciler.Plan(policy, Kernel(applied), ReconcileMode.FlushAll).Changes.Select(c => c.Batch()).OfType<string>().ToList();

        var route = flush.IndexOf($"route del default nhid {Group} table 200 proto {Proto}");
        var group = flush.IndexOf($"nexthop del id {Group}");
        Assert.True(route >= 0 && group > route, string.Join("\n", flush));
        Assert.True(flush.IndexOf($"nexthop del id {Wan1}") > group && flush.IndexOf($"nexthop del id {Wan2}") > group, string.Join("\n", flush));
        Assert.DoesNotContain("nexthop del id 99", flush);
    }

    [Fact]
    public void A_foreign_nexthop_with_the_id_of_ours_is_a_conflict_naming_it()
    {
        var foreign = new Nexthop(Wan1, 11, "eth0", IPAddress.Parse("198.51.100.9"));

        var e = Assert.Throws<ConflictException>(() =>
            Reconciler.Plan(Parse(TwoUplinks()), Kernel(Connected with { Nexthops = [foreign] }), ReconcileMode.Converge));

        Assert.Equal($"nexthop 'id {Wan1} via 198.51.100.9 dev eth0 proto 11' is in the way of 'id {Wan1} via 198.51.100.1 dev eth0 proto {Proto}' and is not owned by tunnel-router; remove it or change the policy", e.Message);
    }

    [Fact]
    public void Rolling_a_group_replace_back_puts_the_old_members_back()
    {
        var old = new Nexthop(Group, Proto, Group: [new(Wan1, 3), new(Wan2, 1)]);
        var now = old with { Group = [new(Wan2, 1)] };

        Assert.Equal(new ReplaceNexthop(now, old), new ReplaceNexthop(old, now).Inverse());
        Assert.Equal(new DeleteNexthop(old), new AddNexthop(old).Inverse());
    }

    [Fact]
    public void Nexthops_are_equal_by_value_members_and_weights_included()
    {
        var a = new Nexthop(7, Proto, Group: [new(1, 3), new(2, 1)]);

        Assert.Equal(a, new Nexthop(7, Proto, Group: [new(1, 3), new(2, 1)]));
        Assert.NotEqual(a, new Nexthop(7, Proto, Group: [new(1, 2), new(2, 1)]));
        Assert.NotEqual(a, new Nexthop(7, Proto, Group: [new(2, 1), new(1, 3)]));
        Assert.NotEqual(new Nexthop(5, Proto, "eth0", IPAddress.Parse("198.51.100.1")), new Nexthop(5, Proto, "eth1", IPAddress.Parse("198.51.100.1")));
    }

    [Theory]
    [InlineData("networkd")]
    [InlineData("nmcli")]
    public void Export_lists_a_balanced_route_as_not_expressible_and_keeps_the_rest(string format)
    {
        var policy = Parse(TwoUplinks());
        var desired = Reconciler.DesiredRouting(policy, Kernel(), []);

        var result = Export.Render(format, new ExportInput(desired.Routes, desired.Rules, [], 0, [], policy.TableNames));

        Assert.Contains(result.NotExpressible, n => n == $"route 'default nhid {Group} table vpn proto 147' of a weighted Failover line: {format} has no nexthop groups; balancing needs tunnel-router watch");
        Assert.Contains(result.Files, f => f.Text.Contains("198.51.100.1"));
    }

    [Fact]
    public void Each_family_balances_through_a_group_of_its_own_over_the_uplinks_that_have_it()
    {
        var o = TwoUplinks();
        o.Uplinks[0].Address = null;
        o.Uplinks[0].Gateway6 = "fd00:1::1";
        o.Uplinks[1].Address = null;
        var snapshot = Kernel(Connected with { Routes = [.. Connected.Routes, new Route(IPNetwork.Parse("fd00:1::/64"), TableNames.Main, 2, "eth0")] }) with
        {
            GlobalAddresses = new Dictionary<string, IReadOnlyList<InterfaceAddress>>
            {
                ["eth0"] = [new(IPAddress.Parse("198.51.100.2"), 24), new(IPAddress.Parse("fd00:1::2"), 64)],
                ["eth1"] = [new(IPAddress.Parse("203.0.113.2"), 24)],
            },
        };

        var plan = Reconciler.Plan(Parse(o), snapshot, ReconcileMode.Converge);

        Assert.Equal([
            $"nexthop add id {Wan1} via 198.51.100.1 dev eth0 proto {Proto}",
            $"nexthop add id {Wan2} via 203.0.113.1 dev eth1 proto {Proto}",
            $"nexthop add id {Wan1 + 1} via fd00:1::1 dev eth0 proto {Proto}",
            $"nexthop add id {Group} group {Wan1},3/{Wan2} proto {Proto}",
            $"nexthop add id {Group + 1} group {Wan1 + 1},3 proto {Proto}",
            $"route add default nhid {Group} table 200 proto {Proto}",
            $"route add default nhid {Group + 1} table 200 proto {Proto}",
        ], Lines(plan, Balancing));
    }
}
