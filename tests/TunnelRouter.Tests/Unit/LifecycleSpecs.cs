using System.Net;
using System.Net.Sockets;
using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using TunnelRouter.Kernel.Netlink;
using TunnelRouter.Policy;
using TunnelRouter.Tests.Support;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>Issue 21, the lifecycle model (docs/lifecycle.md) on hand-made snapshots: what is steady, what is one
/// tunnel's, and what flush, down and a dead tunnel do to each.</summary>
public class LifecycleSpecs
{
    const string Selector = "from 192.168.10.0/24 to 198.51.100.7/32 pref 1100 lookup 100 protocol 147";

    static TunnelRouterOptions Seed000(bool failClosed = true, string rule = "from 192.168.10.0/24 to 198.51.100.7 lookup nyet") => new()
    {
        Tables = new() { ["nyet"] = 100 },
        FailClosed = failClosed ? ["nyet"] : [],
        Instances =
        [
            new InstanceOptions
            {
                Dev = "tun2",
                Rules = [rule],
                Routes = ["default dev ${dev} table nyet"],
            },
        ],
    };

    ParsedPolicy Parse(TunnelRouterOptions o) => PolicyParser.Parse(o, Iproute2Files.Of(), "policy.json");

    static string[] Lines(IEnumerable<Change> plan) => plan.Select(c => c.Batch()!).ToArray();

    static Route Kill(uint table, AddressFamily family) =>
        new(Net.ParsePrefix("d", "default", family), table, 147, metric: PolicyParser.FailClosedMetric, type: RouteType.Unreachable);

    static readonly Dictionary<string, string> Tun2Env = new() { ["script_type"] = "up", ["dev"] = "tun2", ["ifconfig_local"] = "10.8.0.2", ["ifconfig_netmask"] = "255.255.255.0" };

    [Fact]
    public void An_instances_rule_without_placeholders_into_a_fail_closed_table_is_installed_by_apply_at_boot_after_the_kill_switches()
    {
        var policy = Parse(Seed000());

        // Boot: OpenVPN has not connected, tun2 does not exist, no tunnel is live.
        var plan = Reconciler.Plan(policy, [], KernelSnapshot.Empty, ReconcileMode.Converge);

        Assert.Equal(
        [
            "route add unreachable default table 100 proto 147 metric 4294967295",
            "route add unreachable default table 100 proto 147 metric 4294967295",
            "rule add " + Selector,
        ], Lines(plan.FailClosed));
        // Then the fail-closed guard, on its own, and nothing else.
        Assert.Equal([.. plan.FailClosed, plan.Guard!], plan.Changes);
        Assert.Equal(Lifetime.Steady, Lifecycle.Of(policy.Instances[0].Rules[0], policy.Instances[0].Samples[0], policy.FailClosedTables));
    }

    [Fact]
    public void A_kill_switch_written_as_a_routes_line_closes_the_table_as_fail_closed_does()
    {
        var o = Seed000(failClosed: false);
        o.Routes = ["unreachable default table nyet metric 4294967295", "-6 unreachable default table nyet metric 4294967295"];

        var policy = Parse(o);

        Assert.Equal([100u], policy.FailClosedTables);
        Assert.Contains(policy.Rules, r => r.ToString() == Selector);
    }

    [Fact]
    public void An_instances_rule_into_a_table_that_is_not_fail_closed_stays_the_tunnels()
    {
        var policy = Parse(Seed000(failClosed: false));

        Assert.Empty(Reconciler.Plan(policy, [], KernelSnapshot.Empty, ReconcileMode.Converge).Changes);
        Assert.Empty(policy.Instances[0].Steady);
    }

    [Fact]
    public void The_hook_leaves_a_steady_rule_out_of_the_tunnels_objects_and_adds_it_with_the_kill_switches_as_applys()
    {
        var names = Iproute2Files.Of();
        var o = Seed000();
        var tables = PolicyTables.Create(names, o.Tables, o.Table, o.TableId, "policy.json");
        var closed = PolicyParser.FailClosedTables(o.FailClosed, tables);
        var spec = InstanceConfig.Parse(o.Instances, tables.For, 148, "policy.json", closed)[0];
        var resolved = InstanceConfig.Resolve(spec, Tun2Env, tables.For, 148);

        var steady = Lifecycle.SteadyAtUp(resolved.State, spec, closed, 147);

        Assert.Empty(resolved.State.Rules);
        Assert.Empty(resolved.RuleLines);
        Assert.Equal([Selector], steady.Rules.Select(r => r.ToString()));
        Assert.Equal([Kill(100, AddressFamily.InterNetwork), Kill(100, AddressFamily.InterNetworkV6)], steady.Routes);
    }

    [Fact]
    public void The_hook_adds_the_kill_switch_of_a_fail_closed_table_its_pool_rules_route_into()
    {
        var tunnel = OpenVpnTunnel.Parse(new Dictionary<string, string>
        {
            ["script_type"] = "up", ["dev"] = "tun0", ["ifconfig_local"] = "10.10.10.1", ["ifconfig_netmask"] = "255.255.255.0",
        }, [], null);
        var desired = HookPolicy.Desired(tunnel, new HookSettings(200, 148, PoolRules: true, PoolRulePriority: 1000));

        var steady = Lifecycle.SteadyAtUp(desired, null, new HashSet<uint> { 200, 300 }, 147);

        Assert.Equal([Kill(200, AddressFamily.InterNetwork), Kill(200, AddressFamily.InterNetworkV6)], steady.Routes);
        Assert.Empty(steady.Rules);
        Assert.Empty(Lifecycle.SteadyAtUp(desired, null, new HashSet<uint>(), 147).Routes);
    }

    [Fact]
    public void Forgetting_a_dead_tunnel_removes_its_rules_but_never_the_steady_selector_or_the_kill_switch()
    {
        var policy = Parse(Seed000());
        var steadyRule = Assert.Single(policy.Rules);
        var tunnel = OpenVpnTunnel.Parse(Tun2Env, [], null);
        var deadRule = new Rule(AddressFamily.InterNetwork, 1000, RuleAction.Lookup, 200, 148, from: Net.ParsePrefix("f", "10.8.0.0/24"));
        var record = TunnelRecord.Of(tunnel, new KernelState([], [deadRule]));
        // OpenVPN was SIGKILLed: tun2 and its routes are gone, the rules stay.
        var snapshot = new KernelSnapshot { State = new KernelState([Kill(100, AddressFamily.InterNetwork), Kill(100, AddressFamily.InterNetworkV6)], [steadyRule, deadRule]) };

        var plan = Reconciler.Plan(policy, [record], snapshot, ReconcileMode.Converge);

        Assert.Equal(["rule del from 10.8.0.0/24 pref 1000 lookup 200 protocol 148"], Lines(plan.Rest));
        Assert.Empty(plan.FailClosed);
        Assert.Equal(["tun2"], plan.Forgotten);
    }

    [Fact]
    public void A_rule_with_a_placeholder_into_a_fail_closed_table_is_named_with_the_fix()
    {
        var policy = Parse(Seed000(rule: "from ${ifconfig_local} lookup nyet"));

        var leak = Assert.Single(Lifecycle.Findings(policy));

        Assert.Equal("policy.json: Instances[0].Rules[0]: 'from ${ifconfig_local} lookup nyet' selects traffic into the fail-closed table nyet, " +
                     "but ${ifconfig_local} makes it exist only while the tunnel is up: before up and after down its traffic is not selected and leaves by main",
            leak.Message);
        Assert.StartsWith("write it without placeholders", leak.Fix);
        Assert.Empty(Lifecycle.Findings(Parse(Seed000())));
        Assert.Empty(Lifecycle.Findings(Parse(Seed000(failClosed: false, rule: "from ${ifconfig_local} lookup nyet"))));
    }

    [Fact]
    public void Plain_flush_keeps_every_kill_switch_and_the_policys_rules_into_it_from_the_kernel_alone_and_flush_all_removes_them_saying_so()
    {
        var selector = new Rule(AddressFamily.InterNetwork, 1100, RuleAction.Lookup, 100, 147, from: Net.ParsePrefix("f", "192.168.10.0/24"));
        var other = new Rule(AddressFamily.InterNetwork, 2000, RuleAction.Lookup, 200, 147, from: Net.ParsePrefix("f", "192.168.5.0/24"));
        var route = new Route(Net.ParsePrefix("d", "default"), 100, 147, "eth0", IPAddress.Parse("192.0.2.1"));
        var snapshot = new KernelSnapshot
        {
            State = new KernelState([Kill(100, AddressFamily.InterNetwork), Kill(100, AddressFamily.InterNetworkV6), route], [selector, other]),
        };
        // flush does not parse the policy: it plans against the empty one, whatever the file says.
        var empty = ParsedPolicy.Empty("policy.json", 147, 148);

        var flush = Reconciler.Plan(empty, [], snapshot, ReconcileMode.Flush);
        var all = Reconciler.Plan(empty, [], snapshot, ReconcileMode.FlushAll);

        Assert.Equal(["route del default via 192.0.2.1 dev eth0 table 100 proto 147", "rule del from 192.168.5.0/24 pref 2000 lookup 200 protocol 147"],
            Lines(flush.Changes).Order());
        Assert.StartsWith("kept the kill switch of table 100 and the rule into it: flush never opens a kill switch", Assert.Single(flush.Notes).Text);
        Assert.Equal(5, all.Changes.Count);
        Assert.StartsWith("removed the kill switch of table 100 and the rules into it", Assert.Single(all.Notes).Text);
    }

    [Fact]
    public void Watch_takes_a_kill_switch_and_a_rule_into_a_closed_table_as_closing_it_and_nothing_else()
    {
        var closed = new HashSet<uint> { 100 };
        var selector = new Rule(AddressFamily.InterNetwork, 1000, RuleAction.Lookup, 100, 148, from: Net.ParsePrefix("f", "10.8.0.0/24"));
        var elsewhere = selector with { Table = 200 };
        var route = new Route(Net.ParsePrefix("d", "default"), 100, 147, "tun2");

        Assert.True(Lifecycle.Closes(new AddRoute(Kill(100, AddressFamily.InterNetworkV6)), closed, 147));
        Assert.True(Lifecycle.Closes(new AddRule(selector), closed, 147));
        Assert.False(Lifecycle.Closes(new AddRule(elsewhere), closed, 147));
        Assert.False(Lifecycle.Closes(new AddRoute(route), closed, 147));
        Assert.False(Lifecycle.Closes(new DeleteRule(selector), closed, 147));
    }

    /// <summary>rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.</summary>
    static byte[] DelRoute(byte dstLen, byte protocol, byte type) => [10, dstLen, 0, 0, 100, protocol, 0, type, 0, 0, 0, 0];

    /// <summary>fib_rule_hdr (family, dst_len, src_len, tos, table, res1, res2, action, flags), then FRA_TABLE.</summary>
    static byte[] DelRule(uint table) =>
        [2, 0, 0, 0, (byte)Math.Min(table, 252), 0, 0, 1, 0, 0, 0, 0, 8, 0, 15, 0, .. BitConverter.GetBytes(table)];

    [Fact]
    public void A_deleted_kill_switch_or_rule_into_a_closed_table_is_urgent_and_other_deletions_wait_for_the_debounce()
    {
        var ours = new HashSet<byte> { 147, 148 };
        var closed = new HashSet<uint> { 300 };

        Assert.True(NetlinkEvents.Urgent(Nl.RTM_DELROUTE, DelRoute(0, 147, 7), ours, closed));
        Assert.False(NetlinkEvents.Urgent(Nl.RTM_DELROUTE, DelRoute(0, 4, 7), ours, closed));
        Assert.False(NetlinkEvents.Urgent(Nl.RTM_DELROUTE, DelRoute(24, 147, 1), ours, closed));
        Assert.True(NetlinkEvents.Urgent(Nl.RTM_DELRULE, DelRule(300), ours, closed));
        Assert.False(NetlinkEvents.Urgent(Nl.RTM_DELRULE, DelRule(200), ours, closed));
        Assert.False(NetlinkEvents.Urgent(Nl.RTM_NEWRULE, DelRule(300), ours, closed));
    }

    [Fact]
    public void When_the_rest_cannot_be_planned_the_closing_changes_alone_are_the_missing_kill_switches_and_selectors()
    {
        var policy = Parse(Seed000());
        var present = Kill(100, AddressFamily.InterNetwork);

        var closing = Reconciler.Closing(policy, new KernelSnapshot { State = new KernelState([present], []) });

        Assert.Equal(["route add unreachable default table 100 proto 147 metric 4294967295", "rule add " + Selector], Lines(closing));
        Assert.All(closing, c => Assert.True(c is AddRoute or AddRule));
    }

    [Fact]
    public void A_fail_closed_table_with_only_its_kill_switch_while_its_tunnel_is_up_is_named_with_the_fix()
    {
        var o = Seed000();
        o.Instances[0].Routes = ["optional default via ${route_vpn_gateway} dev ${dev} table nyet"];
        var policy = Parse(o);
        var record = TunnelRecord.Of(OpenVpnTunnel.Parse(Tun2Env, [], null), KernelState.Empty);
        var up = new KernelSnapshot
        {
            Links = [Snapshots.Link("tun2", new InterfaceAddress(IPAddress.Parse("10.8.0.2"), 24))],
            State = new KernelState([Kill(100, AddressFamily.InterNetwork), Kill(100, AddressFamily.InterNetworkV6)], []),
        };
        var routed = up with { State = new KernelState([.. up.State.Routes, new Route(Net.ParsePrefix("d", "default"), 100, 148, "tun2")], []) };

        var leak = Assert.Single(Lifecycle.ClosedWhileUp(policy, [record], up));

        Assert.StartsWith("policy.json: Instances[0]: tun2 is up, but the fail-closed table nyet has no route but its kill switch", leak.Message);
        Assert.StartsWith("route the tunnel's device itself, 'default dev ${dev} table nyet'", leak.Fix);
        Assert.Empty(Lifecycle.ClosedWhileUp(policy, [record], routed));
        Assert.Empty(Lifecycle.ClosedWhileUp(policy, [record], up with { Links = [] }));
    }

    [Fact]
    public void A_client_gets_no_pool_rule_even_from_a_pushed_slash_8_that_holds_its_own_lan()
    {
        var env = new Dictionary<string, string>
        {
            ["script_type"] = "up", ["dev"] = "tun2", ["remote_1"] = "198.51.100.7", ["ifconfig_local"] = "10.8.0.2",
            ["ifconfig_netmask"] = "255.0.0.0", ["ifconfig_ipv6_local"] = "fd00:8::2", ["ifconfig_ipv6_netbits"] = "64",
        };
        var settings = new HookSettings(200, 148, PoolRules: true, PoolRulePriority: 1000);

        var client = HookPolicy.Desired(OpenVpnTunnel.Parse(env, [], null), settings);
        env.Remove("remote_1");
        var server = HookPolicy.Desired(OpenVpnTunnel.Parse(env, [], null), settings);

        Assert.Empty(client.Rules);
        Assert.Equal(2, client.Routes.Count);
        Assert.Equal(["from 10.0.0.0/8 pref 1000 lookup 200 protocol 148", "from fd00:8::/64 pref 1000 lookup 200 protocol 148"],
            server.Rules.Select(r => r.ToString()));
    }

    [Fact]
    public void A_pool_rule_into_a_table_nothing_routes_is_closed_by_its_tunnel_in_that_family_and_a_routed_or_closed_table_is_not()
    {
        static Rule Pool(string from, uint table) => new(from.Contains(':') ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork,
            1000, RuleAction.Lookup, table, 148, from: Net.ParsePrefix("f", from));
        var tunnel = new KernelState([], [Pool("10.10.11.0/24", 201), Pool("fd00:11::/64", 201), Pool("10.10.10.0/24", 200), Pool("10.10.12.0/24", 202)]);
        // Table 200 has a default route (apply's, via the NAT router); 202 is one of the policy's closed tables.
        var current = new KernelState([new Route(Net.ParsePrefix("d", "0.0.0.0/0"), 200, 147, gateway: IPAddress.Parse("192.168.1.1"), device: "eth0")], []);

        var closed = Lifecycle.CloseUnserved(tunnel, current, new HashSet<uint> { 202 });

        Assert.Equal([Kill(201, AddressFamily.InterNetwork) with { Protocol = 148 }, Kill(201, AddressFamily.InterNetworkV6) with { Protocol = 148 }],
            closed.Routes.OrderBy(r => r.Family));
        var routed = tunnel with { Rules = [Pool("10.10.10.0/24", 200)] };
        Assert.Same(routed, Lifecycle.CloseUnserved(routed, current, new HashSet<uint>()));
    }
}
