using System.Net;
using System.Net.Sockets;
using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;
using TunnelRouter.Tests.Support;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>Failover lines parsed, and planned from hand-made snapshots and health: the table's default follows the first
/// healthy uplink; none healthy leaves the kill switch alone in a FailClosed table.</summary>
public class UplinkFailoverSpecs
{
    ParsedPolicy Parse(TunnelRouterOptions o) => PolicyParser.Parse(o, Iproute2Files.Of(), "policy.json");

    static TunnelRouterOptions TwoUplinks(params string[] failover) => new()
    {
        Tables = new() { ["wan1"] = 11, ["wan2"] = 12, ["vpn"] = 200 },
        FailClosed = ["vpn"],
        Rules = ["from 192.168.50.0/24 lookup vpn"],
        Uplinks =
        [
            new UplinkOptions { Name = "wan1", Interface = "eth0", Table = "wan1", Address = "198.51.100.2/24", Gateway = "198.51.100.1", Track = "9.9.9.9" },
            new UplinkOptions { Name = "wan2", Interface = "eth1", Table = "wan2", Address = "203.0.113.2/24", Gateway = "203.0.113.1" },
        ],
        Failover = failover.Length > 0 ? [.. failover] : ["table vpn via wan1 wan2"],
    };

    /// <summary>The uplinks' connected networks in main, as the kernel has them.</summary>
    static readonly KernelState Connected = new(
    [
        new Route(IPNetwork.Parse("198.51.100.0/24"), TableNames.Main, 2, "eth0"), new Route(IPNetwork.Parse("203.0.113.0/24"), TableNames.Main, 2, "eth1"),
        new Route(IPNetwork.Parse("fd00:1::/64"), TableNames.Main, 2, "eth0"), new Route(IPNetwork.Parse("fd00:2::/64"), TableNames.Main, 2, "eth1"),
    ], []);

    static KernelSnapshot Kernel(params (string Uplink, PathState State)[] health) => new()
    {
        State = Connected,
        NftInstalled = false, // the guard is FailClosedGuardSpecs' (and the last spec here)
        Links = Snapshots.Links("eth0", "eth1"),
        UplinkStates = health.ToDictionary(h => new UplinkPath(h.Uplink, AddressFamily.InterNetwork), h => h.State),
    };

    static List<string> VpnDefaults(PolicyPlan plan) =>
        [.. plan.Changes.Select(c => c.Batch()).OfType<string>().Where(l => l.Contains("table 200") && l.StartsWith("route add default", StringComparison.Ordinal))];

    [Fact]
    public void The_table_follows_its_first_uplink_while_it_is_up()
    {
        var plan = Reconciler.Plan(Parse(TwoUplinks()), Kernel(), ReconcileMode.Converge);

        Assert.Equal(["route add default via 198.51.100.1 dev eth0 table 200 proto 147"], VpnDefaults(plan));
        Assert.Contains(plan.Notes, n => n.Text == "Failover[0]: table vpn IPv4 via wan1 (198.51.100.1 dev eth0), the first of its uplinks; if wan1 fails: via wan2");
    }

    [Fact]
    public void A_down_first_uplink_moves_the_default_to_the_second_and_the_plan_says_why()
    {
        var plan = Reconciler.Plan(Parse(TwoUplinks()), Kernel(("wan1", PathState.Down)), ReconcileMode.Converge);

        Assert.Equal(["route add default via 203.0.113.1 dev eth1 table 200 proto 147"], VpnDefaults(plan));
        Assert.Contains(plan.Notes, n => n.Stated && n.Text == "Failover[0]: table vpn IPv4 via wan2 (203.0.113.1 dev eth1): wan1 is down; if wan2 fails: its kill switch refuses the traffic");
    }

    [Fact]
    public void A_first_uplink_within_its_hold_time_does_not_take_the_traffic_back_yet()
    {
        var plan = Reconciler.Plan(Parse(TwoUplinks()), Kernel(("wan1", PathState.Holding)), ReconcileMode.Converge);

        Assert.Equal(["route add default via 203.0.113.1 dev eth1 table 200 proto 147"], VpnDefaults(plan));
    }

    [Fact]
    public void A_device_that_is_down_counts_as_a_down_uplink_without_watch()
    {
        var links = Snapshots.Links("eth0", "eth1").Select(l => l.Name == "eth0" ? l with { Up = false } : l).ToList();

        // Partial, as apply and watch plan: the uplink's own default is refused while its device is down, the rest goes in.
        var plan = Reconciler.Plan(Parse(TwoUplinks()), [], new KernelSnapshot { State = Connected, Links = links }, ReconcileMode.Converge, partial: true);

        Assert.Equal(["route add default via 203.0.113.1 dev eth1 table 200 proto 147"], VpnDefaults(plan));
    }

    [Fact]
    public void With_every_uplink_down_the_failover_route_goes_and_the_kill_switch_stays()
    {
        var policy = Parse(TwoUplinks());
        var up = Reconciler.Plan(policy, Kernel(), ReconcileMode.Converge);
        var applied = new KernelState([.. Connected.Routes, .. up.Changes.OfType<AddRoute>().Select(a => a.Route)], [.. up.Changes.OfType<AddRule>().Select(a => a.Rule)]);

        var down = Reconciler.Plan(policy, Kernel(("wan1", PathState.Down), ("wan2", PathState.Down)) with { State = applied }, ReconcileMode.Converge);

        Assert.Equal(["route del default via 198.51.100.1 dev eth0 table 200 proto 147"],
            down.Changes.Select(c => c.Batch()).OfType<string>().Where(l => l.Contains("table 200")));
        Assert.Contains(applied.Routes, r => r.Table == 200 && r.Type == RouteType.Unreachable && r.Metric == uint.MaxValue);
        Assert.Contains(down.Notes, n => n.Text.StartsWith("Failover[0]: table vpn IPv4: no uplink is up (wan1 is down, wan2 is down): its kill switch refuses the traffic", StringComparison.Ordinal));
    }

    [Fact]
    public void A_failover_replaces_one_route_and_touches_nothing_of_the_uplinks_own_tables()
    {
        var policy = Parse(TwoUplinks());
        var up = Reconciler.Plan(policy, Kernel(), ReconcileMode.Converge);
        var applied = new KernelState([.. Connected.Routes, .. up.Changes.OfType<AddRoute>().Select(a => a.Route)], [.. up.Changes.OfType<AddRule>().Select(a => a.Rule)]);

        var failover = Reconciler.Plan(policy, Kernel(("wan1", PathState.Down)) with { State = applied }, ReconcileMode.Converge);

        Assert.All(failover.Changes, c => Assert.Contains("table 200", c.Batch()!));
        Assert.Single(failover.Changes);
    }

    [Fact]
    public void The_guard_of_a_closed_table_lets_it_leave_by_each_of_its_uplinks_whatever_their_health()
    {
        var spec = Lifecycle.Guard(Parse(TwoUplinks()), [], Kernel(("wan1", PathState.Down)))!;

        Assert.Equal(["eth0", "eth1"], spec.Tables.Single(t => t.Table == 200).Devices.Order());
    }

    [Fact]
    public void An_uplink_of_both_families_fails_over_each_family_on_its_own()
    {
        var o = TwoUplinks();
        o.Uplinks[0].Address = null;
        o.Uplinks[0].Gateway6 = "fd00:1::1";
        o.Uplinks[1].Address = null;
        o.Uplinks[1].Gateway6 = "fd00:2::1";
        var snapshot = new KernelSnapshot
        {
            State = Connected,
            Links = Snapshots.Links("eth0", "eth1"),
            GlobalAddresses = new Dictionary<string, IReadOnlyList<InterfaceAddress>>
            {
                ["eth0"] = [new(IPAddress.Parse("198.51.100.2"), 24), new(IPAddress.Parse("fd00:1::2"), 64)],
                ["eth1"] = [new(IPAddress.Parse("203.0.113.2"), 24), new(IPAddress.Parse("fd00:2::2"), 64)],
            },
            UplinkStates = new Dictionary<UplinkPath, PathState> { [new("wan1", AddressFamily.InterNetworkV6)] = PathState.Down },
        };

        var plan = Reconciler.Plan(Parse(o), snapshot, ReconcileMode.Converge);

        Assert.Equal(["route add default via 198.51.100.1 dev eth0 table 200 proto 147", "route add default via fd00:2::1 dev eth1 table 200 proto 147"],
            VpnDefaults(plan).Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("table vpn via wan1 wan3", "policy.json: Failover[0]: 'wan3' is not the Name of an uplink in Uplinks; did you mean 'wan1'?")]
    [InlineData("table vnp via wan1", "policy.json: Failover[0]: 'vnp' is not a table defined in rt_tables or the policy's Tables; did you mean 'vpn'?")]
    [InlineData("table wan1 via wan2", "policy.json: Failover[0]: table wan1 is the uplink wan1's own (its replies' table, whose default is always its own); name another table")]
    [InlineData("table vpn", "policy.json: Failover[0]: names no uplink after via; expected table TABLE via UPLINK [weight W]... [metric N], the uplinks by their Name, e.g. \"table vpn via wan1 wan2\" or \"table vpn via wan1 weight 3 wan2 weight 1\"")]
    [InlineData("table vpn via wan1 wan1", "policy.json: Failover[0]: uplink wan1 is named twice after via")]
    [InlineData("table vpn via weight 3 wan1", "policy.json: Failover[0]: 'weight' follows the uplink it weighs; expected table TABLE via UPLINK [weight W]... [metric N], the uplinks by their Name, e.g. \"table vpn via wan1 wan2\" or \"table vpn via wan1 weight 3 wan2 weight 1\"")]
    [InlineData("table vpn via wan1 weight 0 wan2", "policy.json: Failover[0]: 'weight' of wan1 needs a number from 1 to 256 (the kernel's range)")]
    [InlineData("table vpn via wan1 weight 257 wan2", "policy.json: Failover[0]: 'weight' of wan1 needs a number from 1 to 256 (the kernel's range)")]
    [InlineData("table vpn via wan1 weight 2 weight 3 wan2", "policy.json: Failover[0]: uplink wan1 has two weights")]
    [InlineData("table vpn via wan1 metric 4294967295", "policy.json: Failover[0]: 'metric' needs a number from 0 to 4294967294 (the highest is the kill switch's)")]
    public void A_bad_failover_line_is_one_error_naming_the_line(string line, string expected)
    {
        var e = Assert.Throws<InputException>(() => Parse(TwoUplinks(line)));

        Assert.Equal(expected, e.Message);
    }

    [Fact]
    public void Two_uplinks_of_one_name_are_an_error_naming_both()
    {
        var o = TwoUplinks();
        o.Uplinks[1].Name = "wan1";

        var e = Assert.Throws<InputErrors>(() => Parse(o));

        Assert.Contains(e.Errors, x => x.Message == "policy.json: Uplinks[1].Name: 'wan1' already names Uplinks[0]; give each uplink its own Name");
    }

    [Fact]
    public void A_bad_track_is_named_by_its_uplink_and_key()
    {
        var o = TwoUplinks();
        o.Uplinks[0].Track = "9.9.9.9 down none";

        var e = Assert.Throws<InputException>(() => Parse(o));

        Assert.Equal("policy.json: Uplinks[0].Track: down 'none' is not a count from 1 to 100", e.Message);
    }
}
