using System.Net;
using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;
using TunnelRouter.Tests.Support;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>The pure reconciler fed plain data: the live tunnels' records, snapshots, and a policy with fail-closed
/// tables and objects that wait for their device.</summary>
public class LiveConvergenceSpecs
{
    static readonly HookSettings Settings = new(200, 148, PoolRules: true, PoolRulePriority: 1000);

    static OpenVpnTunnel Tun0 => OpenVpnTunnel.Parse(new Dictionary<string, string>
    {
        ["script_type"] = "up", ["dev"] = "tun0", ["ifconfig_local"] = "10.10.10.1", ["ifconfig_netmask"] = "255.255.255.0",
    }, [], null);

    static TunnelRecord Record(OpenVpnTunnel t) => TunnelRecord.Of(t, HookPolicy.Desired(t, Settings), Settings,
        new Dictionary<string, string> { ["dev"] = t.Device, ["ifconfig_local"] = "10.10.10.1", ["password"] = "secret" });

    static Link Tun0Link => Snapshots.Link("tun0", new InterfaceAddress(IPAddress.Parse("10.10.10.1"), 24));

    ParsedPolicy Parse(TunnelRouterOptions o) => PolicyParser.Parse(o, Iproute2Files.Of(), "policy.json");

    /// <summary>A policy with nothing of its own but the pool-rule options the tunnels came up with (they follow the policy's).</summary>
    static ParsedPolicy Empty => ParsedPolicy.Empty("policy.json", 147, 148) with { PoolRules = true };

    static string[] Lines(IEnumerable<Change> plan) => plan.Select(c => c.Batch()!).ToArray();

    [Fact]
    public void A_live_tunnels_deleted_pool_rule_and_route_are_drift_and_planned_back()
    {
        var record = Record(Tun0);
        var snapshot = new KernelSnapshot { Links = [Tun0Link] };

        var plan = Reconciler.Plan(Empty, [record], snapshot, ReconcileMode.Converge);

        Assert.Equal(["route add 10.10.10.0/24 dev tun0 table 200 proto 148", "rule add from 10.10.10.0/24 pref 1000 lookup 200 protocol 148"], Lines(plan.Changes));
        Assert.Empty(plan.Forgotten);
    }

    [Fact]
    public void A_live_tunnel_whose_objects_are_in_place_plans_nothing()
    {
        var record = Record(Tun0);
        var snapshot = new KernelSnapshot { Links = [Tun0Link], State = new KernelState(record.Routes, record.Rules) };

        Assert.Empty(Reconciler.Plan(Empty, [record], snapshot, ReconcileMode.Converge).Changes);
    }

    [Fact]
    public void A_record_whose_device_is_gone_without_a_down_is_forgotten_and_its_leftover_rule_removed()
    {
        var record = Record(Tun0);
        var snapshot = new KernelSnapshot { State = new KernelState([], record.Rules) };

        var plan = Reconciler.Plan(Empty, [record], snapshot, ReconcileMode.Converge);

        Assert.Equal(["rule del from 10.10.10.0/24 pref 1000 lookup 200 protocol 148"], Lines(plan.Changes));
        Assert.Equal(["tun0"], plan.Forgotten);
    }

    [Fact]
    public void A_device_that_came_back_with_other_addresses_is_another_tunnels_and_the_record_is_forgotten()
    {
        var snapshot = new KernelSnapshot { Links = [Snapshots.Link("tun0", new InterfaceAddress(IPAddress.Parse("10.99.0.1"), 24))] };

        var plan = Reconciler.Plan(Empty, [Record(Tun0)], snapshot, ReconcileMode.Converge);

        Assert.Equal(["tun0"], plan.Forgotten);
        Assert.Empty(plan.Changes);
    }

    [Fact]
    public void A_hook_object_no_record_names_is_left_alone()
    {
        var stray = new Rule(System.Net.Sockets.AddressFamily.InterNetwork, 1001, RuleAction.Lookup, 200, 148, from: Net.ParsePrefix("f", "10.9.0.0/24"));
        var snapshot = new KernelSnapshot { Links = [Tun0Link], State = new KernelState([], [stray]) };

        Assert.DoesNotContain(Reconciler.Plan(Empty, [Record(Tun0)], snapshot, ReconcileMode.Converge).Changes, c => c is DeleteRule);
    }

    [Fact]
    public void Flush_removes_the_policys_objects_and_leaves_the_live_tunnels_and_flush_all_takes_both()
    {
        var record = Record(Tun0);
        var policyRule = new Rule(System.Net.Sockets.AddressFamily.InterNetwork, 2000, RuleAction.Lookup, 200, 147, from: Net.ParsePrefix("f", "192.168.5.0/24"));
        var snapshot = new KernelSnapshot { Links = [Tun0Link], State = new KernelState(record.Routes, [.. record.Rules, policyRule]) };

        var flush = Reconciler.Plan(Empty, [record], snapshot, ReconcileMode.Flush);
        var all = Reconciler.Plan(Empty, [record], snapshot, ReconcileMode.FlushAll);

        Assert.Equal(["rule del from 192.168.5.0/24 pref 2000 lookup 200 protocol 147"], Lines(flush.Changes));
        Assert.Empty(flush.Forgotten);
        Assert.Equal(3, all.Changes.Count);
        Assert.Equal(["tun0"], all.Forgotten);
    }

    [Fact]
    public void Routes_on_a_device_that_does_not_exist_yet_wait_and_everything_else_is_planned()
    {
        var policy = Parse(new TunnelRouterOptions
        {
            Tables = new() { ["nyet"] = 201 },
            Rules = ["from 192.168.5.0/24 lookup nyet"],
            Routes = ["10.20.0.0/16 dev tun2 table nyet", "10.30.0.0/16 dev tun2 table nyet", "default dev tun2 table nyet"],
        });

        var plan = Reconciler.Plan(policy, [], KernelSnapshot.Empty, ReconcileMode.Converge);

        Assert.Equal(["rule add from 192.168.5.0/24 pref 2000 lookup 201 protocol 147"], Lines(plan.Changes));
        Assert.Equal("waiting for tun2: 3 routes", Assert.Single(plan.Waiting).ToString());
    }

    [Fact]
    public void An_uplink_whose_device_has_no_address_yet_waits()
    {
        var policy = Parse(new TunnelRouterOptions { Tables = new() { ["lan1"] = 10 }, Uplinks = [new UplinkOptions { Interface = "eth1", Table = "lan1" }] });

        var plan = Reconciler.Plan(policy, [], new KernelSnapshot { Links = Snapshots.Links("eth1") }, ReconcileMode.Converge);

        Assert.Empty(plan.Changes);
        Assert.Equal("waiting for eth1: 1 uplink", Assert.Single(plan.Waiting).ToString());
    }

    [Fact]
    public void A_fail_closed_table_gets_an_unreachable_default_in_both_families_at_the_highest_metric_first()
    {
        var policy = Parse(new TunnelRouterOptions
        {
            Tables = new() { ["nyet"] = 201 },
            FailClosed = ["nyet"],
            Rules = ["from 192.168.5.0/24 lookup nyet"],
            Routes = ["default dev tun2 table nyet"],
        });

        var plan = Reconciler.Plan(policy, [], KernelSnapshot.Empty, ReconcileMode.Converge);

        Assert.Equal(
        [
            "route add unreachable default table 201 proto 147 metric 4294967295",
            "route add unreachable default table 201 proto 147 metric 4294967295",
            "rule add from 192.168.5.0/24 pref 2000 lookup 201 protocol 147",
        ], Lines(plan.FailClosed));
        // The rule into the fail-closed table goes with its kill switches, then the guard (docs/lifecycle.md).
        Assert.Equal([.. plan.FailClosed, plan.Guard!], plan.Changes);
        Assert.Empty(plan.Rest);
    }

    [Fact]
    public void Kill_switches_go_first_before_a_prefix_files_routes_which_stay_packed_and_in_order()
    {
        var prefixes = string.Concat(Enumerable.Range(0, 1000).Select(i => $"10.{i / 256}.{i % 256}.0/24\n"));
        var policy = PolicyParser.Parse(new TunnelRouterOptions
        {
            Tables = new() { ["nyet"] = 201 },
            FailClosed = ["nyet"],
            Rules = ["from 192.168.5.0/24 lookup nyet"],
            PrefixLists = [new PrefixListOptions { File = "/lists/big.txt", Route = "dev tun2 table nyet" }],
        }, Iproute2Files.Of(), "policy.json", _ => new StringReader(prefixes));

        var plan = Reconciler.Plan(policy, [], new KernelSnapshot { Links = Snapshots.Links("tun2") }, ReconcileMode.Converge);

        Assert.Equal(1004, plan.Changes.Count);
        Assert.Equal(plan.Changes.Take(3), plan.FailClosed);
        Assert.Same(plan.Guard, plan.Changes[3]);
        Assert.All(plan.FailClosed.Take(2), c => Assert.StartsWith("route add unreachable default table 201", c.Batch()));
        Assert.Equal("rule add from 192.168.5.0/24 pref 2000 lookup 201 protocol 147", plan.FailClosed[2].Batch());
        // The rest is the plan cut around them, its prefix routes still packed (made only when read), in the planner's order.
        var rest = plan.Rest;
        Assert.IsAssignableFrom<IPackedChanges>(rest);
        Assert.Equal(1000, rest.Count);
        Assert.Equal(1000, Enumerable.Range(0, rest.Count).Count(i => ((IPackedChanges)rest).TryPacked(i, out _, out _)));
        Assert.Equal(plan.Changes.Skip(4).Select(c => c.Batch()), rest.Select(c => c.Batch()));
        Assert.DoesNotContain(rest, c => c.Batch()!.Contains("unreachable") || c.Batch()!.StartsWith("rule"));
    }

    [Fact]
    public void The_plain_route_form_of_a_kill_switch_is_the_same_route_once()
    {
        var policy = Parse(new TunnelRouterOptions
        {
            Tables = new() { ["nyet"] = 201 },
            FailClosed = ["nyet"],
            Routes = ["unreachable default table nyet metric 4294967295"],
        });

        Assert.Equal(2, Reconciler.Plan(policy, [], KernelSnapshot.Empty, ReconcileMode.Converge).Changes.Count(c => c is not ReplaceNftTable));
    }

    [Theory]
    [InlineData("main")]
    [InlineData("nosuch")]
    public void A_fail_closed_table_must_be_a_policy_table(string table)
    {
        var e = Assert.Throws<InputException>(() => Parse(new TunnelRouterOptions { FailClosed = [table] }));

        Assert.StartsWith("policy.json: FailClosed[0]:", e.Message);
    }

    [Fact]
    public void A_record_reads_back_with_its_table_options_networks_and_only_the_tunnels_variables()
    {
        var record = Record(Tun0);

        var back = TunnelRecord.Parse("tun0", record.Format())!;

        Assert.Equal(200u, back.Table);
        Assert.True(back.PoolRules);
        Assert.Equal(record.Networks, back.Networks);
        Assert.Equal(IPAddress.Parse("10.10.10.1"), back.Local4);
        Assert.Equal(["dev", "ifconfig_local"], back.Variables.Keys.Order());
        Assert.Contains("\"Version\": 1", record.Format());
    }

    [Fact]
    public void A_records_routes_and_rules_read_back_whole_so_a_restore_makes_exactly_what_up_made()
    {
        // What an Instances entry installs: a rule with "to", a gateway route (not onlink), an IPv6 unreachable
        // route at a metric. Read back with less, apply would add a broader rule or replace the route every run.
        var rule = PolicyLine.ParseRule("r", "from 192.168.10.0/24 to 198.51.100.7 lookup 100 pref 1100", new PolicyLine.Tables(t => uint.Parse(t), []), 148, null);
        var route = PolicyLine.ParseRoute("r", "default via 10.8.0.1 dev tun2 table 100 metric 10", new PolicyLine.Tables(t => uint.Parse(t), []), 148);
        var drop = PolicyLine.ParseRoute("r", "-6 unreachable default table 100 metric 4294967295", new PolicyLine.Tables(t => uint.Parse(t), []), 148);
        var record = Record(Tun0) with { Routes = [route, drop], Rules = [rule] };

        var back = TunnelRecord.Parse("tun0", record.Format())!;

        Assert.Equal([route, drop], back.Routes);
        Assert.Equal([rule], back.Rules);
    }

    [Fact]
    public void A_record_keeps_its_instance_lines_and_its_own_servers()
    {
        // What plan and doctor show for a client that is up, and what the recursive-routing warning is about.
        var record = Record(Tun0) with
        {
            Lines = ["route default via 10.8.0.1 dev tun0 table nyet", "rule from 192.168.10.0/24 to 198.51.100.7 lookup nyet pref 1100"],
            Servers = [IPAddress.Parse("198.51.100.7"), IPAddress.Parse("2001:db8:7::7")],
        };

        var back = TunnelRecord.Parse("tun0", record.Format())!;

        Assert.Equal(record.Lines, back.Lines);
        Assert.Equal(record.Servers, back.Servers);
    }

    [Fact]
    public void A_record_of_another_version_is_not_read()
    {
        var text = Record(Tun0).Format().Replace("\"Version\": 1", "\"Version\": 2");

        Assert.Null(TunnelRecord.Parse("tun0", text));
    }
}

/// <summary>The marks table compared by its rules, not only by the fingerprint in its comment.</summary>
public class NftContentSpecs
{
    static readonly NftTable Table = NftMarks.Render(
    [
        new MarkRule(MarkChain.Prerouting, 0xf2, InputInterface: "eth1"),
        new MarkRule(MarkChain.Output, 0x2, 0xff, Family: System.Net.Sockets.AddressFamily.InterNetwork, Protocol: 1),
    ])!;

    static KernelSnapshot With(string listing) => new() { Nft = new NftTableState(listing, NftMarks.FingerprintOf(listing)) };

    static ParsedPolicy Policy => ParsedPolicy.Empty("p", 147, 148) with { Marks = Table };

    [Fact]
    public void The_table_as_loaded_plans_nothing()
    {
        Assert.Empty(Reconciler.Plan(Policy, With(Table.Definition), ReconcileMode.Converge).Changes);
    }

    [Fact]
    public void A_flushed_chain_with_the_same_comment_is_drift_and_the_table_is_replaced()
    {
        var flushed = string.Join('\n', Table.Definition.Split('\n').Where(l => !l.Contains("iifname")));

        var plan = Reconciler.Plan(Policy, With(flushed), ReconcileMode.Converge);

        Assert.IsType<ReplaceNftTable>(Assert.Single(plan.Changes));
    }

    [Fact]
    public void Nfts_own_words_for_a_masked_mark_and_its_handles_are_the_same_rules()
    {
        var listed = Table.Definition.Replace("meta mark & 0xffffff00 | 0x00000002", "meta mark & 0xffffff02 | 0x00000002")
            .Replace("meta nfproto ipv4 ", "")
            .Replace("meta mark set 0x000000f2", "meta mark set 0x000000f2 # handle 4");

        Assert.True(NftMarks.SameRules(listed, Table.Definition));
    }
}

/// <summary>watch's restores: rate-limited, and backed off from when another manager keeps deleting an object.</summary>
public class RestoreLimiterSpecs
{
    static TimeSpan S(double seconds) => TimeSpan.FromSeconds(seconds);

    [Fact]
    public void A_burst_of_10_restores_then_one_every_5_seconds()
    {
        var limiter = new RestoreLimiter();

        var burst = Enumerable.Range(0, 12).Count(_ => limiter.TryTake(S(1)));

        Assert.Equal(10, burst);
        Assert.Equal(S(5), limiter.Wait(S(1)));
        Assert.False(limiter.TryTake(S(5)));
        Assert.True(limiter.TryTake(S(6)));
    }

    [Fact]
    public void An_object_restored_5_times_within_a_minute_is_backed_off_from_once_until_forgiven()
    {
        var limiter = new RestoreLimiter();
        var crossed = new List<string>();

        for (var i = 0; i < 7; i++) crossed.AddRange(limiter.Restored(["rule 1000"], S(i * 5)));

        Assert.Equal(["rule 1000"], crossed);
        Assert.True(limiter.IsBackedOff("rule 1000"));
        limiter.Forgive();
        Assert.False(limiter.IsBackedOff("rule 1000"));
    }

    [Fact]
    public void Restores_further_apart_than_the_window_are_no_fight_and_are_not_remembered()
    {
        var limiter = new RestoreLimiter();

        for (var i = 0; i < 20; i++) Assert.Empty(limiter.Restored([$"rule {i}", "rule x"], S(i * 61)));

        Assert.Equal(2, limiter.Remembered);
    }

    [Fact]
    public void The_reason_names_the_object_as_ip_rule_shows_it()
    {
        var rule = new Rule(System.Net.Sockets.AddressFamily.InterNetwork, 1000, RuleAction.Lookup, 200, 148, from: Net.ParsePrefix("f", "10.10.10.0/24"));
        var tables = new TableNames();
        tables.Add(200, "vpn");

        Assert.Equal("rule 1000 from 10.10.10.0/24 lookup vpn was deleted by someone else: restored",
            RestoreReason.Of(new AddRule(rule), tables, ProtocolNames.Numeric, new HashSet<string>()));
    }

    [Fact]
    public void A_route_on_a_device_that_appeared_says_so()
    {
        var route = new Route(Net.ParsePrefix("d", "10.20.0.0/16"), 201, 147, device: "tun2");

        Assert.Equal("tun2 appeared: route 10.20.0.0/16 dev tun2 table 201 installed",
            RestoreReason.Of(new AddRoute(route), TableNames.Numeric, ProtocolNames.Numeric, new HashSet<string> { "tun2" }));
    }

    [Fact]
    public void A_route_on_a_device_that_went_down_says_the_kernel_dropped_it_and_anything_else_is_someone_elses_doing()
    {
        var route = new Route(Net.ParsePrefix("d", "10.20.0.0/16"), 201, 147, device: "tun2");
        var other = new Route(Net.ParsePrefix("d", "10.30.0.0/16"), 201, 147, device: "tun3");
        var down = new HashSet<string> { "tun2" };

        Assert.Equal("tun2 went down (the kernel drops a device's routes with it): route 10.20.0.0/16 dev tun2 table 201 put back",
            RestoreReason.Of(new AddRoute(route), TableNames.Numeric, ProtocolNames.Numeric, new HashSet<string>(), down));
        Assert.Equal("route 10.30.0.0/16 dev tun3 table 201 was deleted by someone else: restored",
            RestoreReason.Of(new AddRoute(other), TableNames.Numeric, ProtocolNames.Numeric, new HashSet<string>(), down));
    }

    [Fact]
    public void The_IPv4_and_IPv6_default_routes_of_a_table_are_two_subjects_and_each_reason_says_its_family()
    {
        var v4 = new Route(Net.ParsePrefix("d", "0.0.0.0/0"), 201, 147, device: "tun2");
        var v6 = new Route(Net.ParsePrefix("d", "::/0"), 201, 147, device: "tun2");
        var appeared = new HashSet<string> { "tun2" };

        Assert.Equal("tun2 appeared: route default dev tun2 table 201 installed",
            RestoreReason.Of(new AddRoute(v4), TableNames.Numeric, ProtocolNames.Numeric, appeared));
        Assert.Equal("tun2 appeared: IPv6 route default dev tun2 table 201 installed",
            RestoreReason.Of(new AddRoute(v6), TableNames.Numeric, ProtocolNames.Numeric, appeared));
        Assert.NotEqual(RestoreReason.Subject(new AddRoute(v4), TableNames.Numeric, ProtocolNames.Numeric),
            RestoreReason.Subject(new AddRoute(v6), TableNames.Numeric, ProtocolNames.Numeric));
    }
}
