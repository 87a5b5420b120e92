using System.Net;
using System.Net.Sockets;
using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>Issue 21, invariant 11: the fail-closed guard (<see cref="NftGuard"/>) rendered from the policy, the live
/// tunnels' records and a hand-made snapshot.</summary>
public class FailClosedGuardSpecs
{
    ParsedPolicy Parse(TunnelRouterOptions o) => PolicyParser.Parse(o, Iproute2Files.Of(), "policy.json");

    static TunnelRouterOptions Seed000(params string[] rules) => new()
    {
        Tables = new() { ["nyet"] = 100 },
        FailClosed = ["nyet"],
        Rules = rules.Length > 0 ? [.. rules] : ["from 192.168.10.0/24 to 198.51.100.7 lookup nyet"],
        Instances = [new InstanceOptions { Dev = "tun2", Routes = ["default dev ${dev} table nyet"] }],
    };

    static TunnelRouterOptions Seed003() => new()
    {
        Table = "vpn",
        Tables = new() { ["vpn"] = 200 },
        FailClosed = ["vpn"],
        PoolRules = true,
        Routes = ["default via 192.168.1.1 table vpn", "default via fd00:1010::1 table vpn"],
    };

    static KernelSnapshot Server => new()
    {
        State = new KernelState(
        [
            new Route(IPNetwork.Parse("192.168.1.0/24"), TableNames.Main, 2, "eth1"),
            new Route(IPNetwork.Parse("fd00:1010::/64"), TableNames.Main, 2, "eth1"),
            new Route(IPNetwork.Parse("192.168.179.0/24"), TableNames.Main, 2, "isp0"),
        ], []),
    };

    static string Chain(NftTable t, string name)
    {
        var text = t.Definition;
        var at = text.IndexOf($"chain {name} {{", StringComparison.Ordinal);
        return text[at..text.IndexOf('}', at)];
    }

    [Fact]
    public void The_policys_selector_jumps_to_its_tables_chain_which_lets_out_only_the_tables_devices_and_counts_what_it_drops()
    {
        var policy = Parse(Seed000());
        var spec = Lifecycle.Guard(policy, [], KernelSnapshot.Empty)!;
        var table = NftGuard.Render(spec, out var unguarded)!;

        Assert.Empty(unguarded);
        Assert.Contains("ip saddr 192.168.10.0/24 ip daddr 198.51.100.7 jump closed_100", Chain(table, "postrouting"));
        Assert.Contains("oifname @oif_100 return\n\t\tcounter drop", Chain(table, "closed_100"));
        Assert.StartsWith("table inet tunnel_router_guard {", table.Definition);
    }

    [Fact]
    public void The_hosts_own_neighbour_discovery_returns_before_any_selector_so_a_lan_selector_does_not_cut_the_lan_off()
    {
        // The gateway answers its LAN hosts' neighbour solicitations from fd50::1, inside the selector, onto lan0, which
        // table nyet does not name: judged by the selector, the answers were dropped and the LAN had no IPv6 gateway.
        var policy = Parse(Seed000("from fd50::/64 lookup nyet"));
        var chain = Chain(NftGuard.Render(Lifecycle.Guard(policy, [], KernelSnapshot.Empty)!, out _)!, "postrouting");

        var lines = chain.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        // Hop limit 255 (RFC 4861): the host's own; a forwarded packet's limit is already decremented at postrouting.
        Assert.Equal("ip6 hoplimit 255 icmpv6 type 133-137 return", lines[2]);
        Assert.True(chain.IndexOf("icmpv6", StringComparison.Ordinal) < chain.IndexOf("ip6 saddr fd50::/64 jump closed_100", StringComparison.Ordinal), chain);
    }

    [Fact]
    public void A_rule_before_the_selector_that_chooses_another_table_returns_first_and_one_after_it_comes_after()
    {
        var policy = Parse(Seed000("from 192.168.10.0/24 to 10.0.0.0/8 pref 1500 lookup main",
            "from 192.168.10.0/24 to 198.51.100.7 pref 1600 lookup nyet", "from 192.168.10.0/24 pref 1700 lookup main"));
        var chain = Chain(NftGuard.Render(Lifecycle.Guard(policy, [], KernelSnapshot.Empty)!, out _)!, "postrouting");

        var exempt = chain.IndexOf("ip saddr 192.168.10.0/24 ip daddr 10.0.0.0/8 return", StringComparison.Ordinal);
        var guarded = chain.IndexOf("ip daddr 198.51.100.7 jump closed_100", StringComparison.Ordinal);
        var after = chain.IndexOf("ip saddr 192.168.10.0/24 return", StringComparison.Ordinal);
        Assert.True(exempt >= 0 && guarded > exempt && after > guarded, chain);
    }

    [Theory]
    [InlineData("not from 192.168.10.0/24 lookup nyet")]
    [InlineData("oif eth0 lookup nyet")]
    [InlineData("iif lo lookup nyet")]
    public void A_selector_nft_cannot_match_is_named_and_left_to_the_kill_switch(string rule)
    {
        var policy = Parse(Seed000(rule));
        var table = NftGuard.Render(Lifecycle.Guard(policy, [], KernelSnapshot.Empty)!, out var unguarded)!;

        Assert.Single(unguarded);
        Assert.Contains("only its table's kill switch holds it", unguarded[0]);
        // Only the pools' jumps: nothing of the rule.
        Assert.Equal(2, Chain(table, "postrouting").Split("jump closed_100").Length - 1);
    }

    [Theory]
    [InlineData("fwmark 0x1 lookup nyet", "meta nfproto ipv4 meta mark 0x00000001 jump closed_100")]
    [InlineData("fwmark 0x100/0xff00 lookup nyet", "meta nfproto ipv4 meta mark & 0x0000ff00 == 0x00000100 jump closed_100")]
    [InlineData("iif lan0 ipproto tcp dport 443 lookup nyet", "iifname \"lan0\" meta nfproto ipv4 tcp dport 443 jump closed_100")]
    [InlineData("from fd10::/64 uidrange 1000-2000 lookup nyet", "ip6 saddr fd10::/64 meta skuid 1000-2000 jump closed_100")]
    public void Selectors_of_every_kind_nft_can_say_become_its_matches(string rule, string line)
    {
        var policy = Parse(Seed000(rule));
        Assert.Contains(line, Chain(NftGuard.Render(Lifecycle.Guard(policy, [], KernelSnapshot.Empty)!, out _)!, "postrouting"));
    }

    [Fact]
    public void A_gateway_route_lets_out_the_device_of_mains_network_holding_the_gateway_and_a_live_tunnels_pools_are_guarded()
    {
        var policy = Parse(Seed003());
        var record = new TunnelRecord("tun0", "tun0 10.10.10.1 -",
            [new Route(IPNetwork.Parse("10.10.10.0/24"), 200, 148, "tun0")],
            [new Rule(AddressFamily.InterNetwork, 1000, RuleAction.Lookup, 200, 148, from: IPNetwork.Parse("10.10.10.0/24")),
             new Rule(AddressFamily.InterNetworkV6, 1000, RuleAction.Lookup, 200, 148, from: IPNetwork.Parse("fd42::/64"))]);
        var table = NftGuard.Render(Lifecycle.Guard(policy, [record], Server)!, out _)!;
        var sets = NftGuard.Elements(table.Definition);

        Assert.Equal(["eth1", "tun0"], sets["oif_200"]);
        Assert.Equal(["10.10.10.0/24"], sets["pool4_200"]);
        Assert.Equal(["fd42::/64"], sets["pool6_200"]);
        Assert.Contains("ip saddr @pool4_200 jump closed_200", Chain(table, "postrouting"));
    }

    [Fact]
    public void The_hooks_elements_leave_the_fingerprint_alone_but_not_the_comparison()
    {
        var policy = Parse(Seed003());
        var bare = NftGuard.Render(Lifecycle.Guard(policy, [], Server)!, out _)!;
        var record = new TunnelRecord("tun0", "tun0 10.10.10.1 -", [new Route(IPNetwork.Parse("10.10.10.0/24"), 200, 148, "tun0")], []);
        var live = NftGuard.Render(Lifecycle.Guard(policy, [record], Server)!, out _)!;

        Assert.Equal(bare.Fingerprint, live.Fingerprint);
        Assert.False(NftGuard.Same(new NftTableState(bare.Definition, bare.Fingerprint), live));
        Assert.True(NftGuard.Same(new NftTableState(live.Definition, live.Fingerprint), live));
    }

    [Fact]
    public void Nfts_listing_with_counters_and_a_wrapped_element_list_is_the_same_guard()
    {
        var policy = Parse(Seed003());
        var record = new TunnelRecord("tun0", "tun0 10.10.10.1 -", [new Route(IPNetwork.Parse("10.10.10.0/24"), 200, 148, "tun0")], []);
        var desired = NftGuard.Render(Lifecycle.Guard(policy, [record], Server)!, out _)!;
        var listing = desired.Definition
            .Replace("elements = { \"eth1\", \"tun0\" }", "elements = { \"eth1\",\n\t\t\t     \"tun0\" }", StringComparison.Ordinal)
            .Replace("counter drop", "counter packets 12 bytes 1008 drop", StringComparison.Ordinal)
            .Replace("\t}\n\tset", "\t}\n\n\tset", StringComparison.Ordinal);

        Assert.True(NftGuard.Same(new NftTableState(listing, NftMarks.FingerprintOf(listing)), desired));
    }

    [Fact]
    public void Apply_loads_the_guard_right_after_the_kill_switches_on_its_own_flush_keeps_it_and_flush_all_removes_it()
    {
        var policy = Parse(Seed000());
        var plan = Reconciler.Plan(policy, KernelSnapshot.Empty, ReconcileMode.Converge);
        var guard = Assert.IsType<ReplaceNftTable>(plan.Guard);

        Assert.Equal(NftGuard.QualifiedName, guard.Table);
        Assert.Same(guard, plan.Changes[plan.FailClosed.Count]);
        Assert.DoesNotContain(guard, plan.Rest);
        Assert.True(Lifecycle.Closes(guard, policy.FailClosedTables, policy.Protocol));

        var held = KernelSnapshot.Empty with { Guard = new NftTableState(guard.New!, NftMarks.FingerprintOf(guard.New!)) };
        Assert.Null(Reconciler.Plan(policy, held, ReconcileMode.Converge).Guard);
        var empty = ParsedPolicy.Empty("policy.json", policy.Protocol, policy.HookProtocol);
        Assert.DoesNotContain(Reconciler.Plan(empty, held, ReconcileMode.Flush).Changes, c => c is ReplaceNftTable);
        Assert.Contains(Reconciler.Plan(empty, held, ReconcileMode.FlushAll).Changes, c => c is ReplaceNftTable { New: null, Table: NftGuard.QualifiedName });
    }

    [Fact]
    public void Without_nft_there_is_no_guard_and_the_plan_says_so()
    {
        var plan = Reconciler.Plan(Parse(Seed000()), KernelSnapshot.Empty with { NftInstalled = false }, ReconcileMode.Converge);

        Assert.Null(plan.Guard);
        Assert.Contains(plan.Notes, n => n.Text.Contains("nft is not installed", StringComparison.Ordinal) && n.Always);
    }

    [Fact]
    public void The_hook_adds_its_device_and_pools_and_removes_them_one_element_at_a_time()
    {
        var tunnel = new KernelState([new Route(IPNetwork.Parse("10.10.10.0/24"), 200, 148, "tun0")],
            [new Rule(AddressFamily.InterNetwork, 1000, RuleAction.Lookup, 200, 148, from: IPNetwork.Parse("10.10.10.0/24"))]);
        var elements = Lifecycle.GuardElements("tun0", tunnel, new HashSet<uint> { 200 });

        Assert.Equal("add element inet tunnel_router_guard oif_200 { \"tun0\" }\nadd element inet tunnel_router_guard pool4_200 { 10.10.10.0/24 }\n",
            NftGuard.AddElements(elements));
        Assert.Equal(2, NftGuard.DeleteElements(elements).Count);
        Assert.Empty(Lifecycle.GuardElements("tun0", tunnel, new HashSet<uint> { 100 }));
    }
}

/// <summary>Issue 21, invariant 8: a live tunnel follows the policy's pool-rule options as they are now.</summary>
public class LiveTunnelsFollowThePolicySpecs
{
    static readonly IPNetwork Pool = IPNetwork.Parse("10.10.10.0/24");

    static TunnelRecord Server(bool poolRules, bool pinned = false) => new("tun0", "tun0 10.10.10.1 -",
        [new Route(Pool, 200, 148, "tun0")],
        poolRules ? [new Rule(AddressFamily.InterNetwork, 1000, RuleAction.Lookup, 200, 148, from: Pool)] : [])
    {
        Table = 200, PoolRules = poolRules, PoolRulePriority = 1000, PoolRulesPinned = pinned,
        Networks = [new TunnelNetwork(Pool, null, Pool: true)],
    };

    [Fact]
    public void PoolRules_switched_on_gives_a_running_server_tunnel_its_pool_rules_and_off_takes_them_away()
    {
        var on = Server(poolRules: false).Follow(true, 1000, 148);
        Assert.Equal(["from 10.10.10.0/24 pref 1000 lookup 200 protocol 148"], on.Rules.Select(r => r.ToString()));
        Assert.True(on.PoolRules);

        Assert.Empty(Server(poolRules: true).Follow(false, 1000, 148).Rules);
        var moved = Server(poolRules: true).Follow(true, 900, 148);
        Assert.Equal([900u], moved.Rules.Select(r => r.Priority));
    }

    [Fact]
    public void A_record_that_already_follows_or_whose_own_environment_set_the_options_is_the_same_record()
    {
        var record = Server(poolRules: true);
        Assert.Same(record, record.Follow(true, 1000, 148));
        var pinned = Server(poolRules: false, pinned: true);
        Assert.Same(pinned, pinned.Follow(true, 1000, 148));
        Assert.True(TunnelRecord.Parse("tun0", pinned.Format())!.PoolRulesPinned);
    }

    [Fact]
    public void Apply_on_a_changed_PoolRules_adds_the_running_tunnels_pool_rules_and_rewrites_their_records()
    {
        var record = Server(poolRules: false);
        var policy = ParsedPolicy.Empty("policy.json", 147, 148) with { PoolRules = true };
        var snapshot = new KernelSnapshot { State = new KernelState([new Route(Pool, 200, 148, "tun0")], []), Links = Support.Snapshots.Links("tun0") };

        var plan = Reconciler.Plan(policy, [record], snapshot, ReconcileMode.Converge);

        Assert.Equal(["rule add from 10.10.10.0/24 pref 1000 lookup 200 protocol 148"], plan.Changes.Select(c => c.Batch()));
        Assert.True(Assert.Single(plan.Followed).PoolRules);
    }

    static TunnelRecord FromPolicy(bool fromPolicy = true) => Server(poolRules: true) with
    {
        TableFromPolicy = fromPolicy,
        // An Instances line that names table 200 itself: it keeps it.
        Routes = [new Route(Pool, 200, 148, "tun0"), new Route(IPNetwork.Parse("198.51.100.0/24"), 200, 148, "tun0")],
        Lines = ["route 198.51.100.0/24 dev tun0 table 200"],
    };

    [Fact]
    public void A_changed_Table_moves_the_tunnels_networks_and_pool_rules_and_leaves_its_Instances_lines()
    {
        var moved = FromPolicy().FollowTable(300);

        Assert.Equal(300u, moved.Table);
        Assert.Equal(["10.10.10.0/24 dev tun0 table 300 proto 148", "198.51.100.0/24 dev tun0 table 200 proto 148"],
            moved.Routes.Select(r => r.ToString()));
        Assert.Equal(["from 10.10.10.0/24 pref 1000 lookup 300 protocol 148"], moved.Rules.Select(r => r.ToString()));
        Assert.True(TunnelRecord.Parse("tun0", moved.Format())!.TableFromPolicy);
    }

    [Fact]
    public void A_tunnel_whose_own_environment_or_an_older_writer_set_the_table_keeps_it()
    {
        var pinned = FromPolicy(fromPolicy: false);
        Assert.Same(pinned, pinned.FollowTable(300));
        var same = FromPolicy();
        Assert.Same(same, same.FollowTable(200));
        var env = new Dictionary<string, string> { ["dev"] = "tun0", ["ifconfig_local"] = "10.10.10.1", ["ifconfig_netmask"] = "255.255.255.0", ["TUNNEL_ROUTER_TABLE"] = "vpn2" };
        var tunnel = OpenVpnTunnel.Parse(new Dictionary<string, string>(env) { ["script_type"] = "up" }, [], null);
        var settings = new HookSettings(200, 148, true, 1000);
        Assert.False(TunnelRecord.Of(tunnel, KernelState.Empty, settings, env).TableFromPolicy);
        env.Remove("TUNNEL_ROUTER_TABLE");
        Assert.True(TunnelRecord.Of(tunnel, KernelState.Empty, settings, env).TableFromPolicy);
    }

    [Fact]
    public void Apply_on_a_changed_Table_moves_the_running_tunnels_routes_and_rules_and_says_so()
    {
        var record = FromPolicy();
        var policy = ParsedPolicy.Empty("policy.json", 147, 148) with { PoolRules = true, HookTable = 300, HookTableName = "vpn2" };
        var snapshot = new KernelSnapshot { State = new KernelState(record.Routes, record.Rules), Links = Support.Snapshots.Links("tun0") };

        var plan = Reconciler.Plan(policy, [record], snapshot, ReconcileMode.Converge);

        Assert.Equal(300u, Assert.Single(plan.Followed).Table);
        var batch = plan.Changes.Select(c => c.Batch()).ToList();
        Assert.Contains("route add 10.10.10.0/24 dev tun0 table 300 proto 148", batch);
        Assert.Contains("route del 10.10.10.0/24 dev tun0 table 200 proto 148", batch);
        Assert.Contains("rule add from 10.10.10.0/24 pref 1000 lookup 300 protocol 148", batch);
        Assert.Contains("rule del from 10.10.10.0/24 pref 1000 lookup 200 protocol 148", batch);
        Assert.DoesNotContain(batch, b => b!.Contains("198.51.100.0/24"));
        Assert.Contains(plan.Notes, n => n.Text.Contains("follows the policy's Table vpn2 (200 -> 300)"));
    }

    [Fact]
    public void A_Table_name_only_the_next_up_registers_is_named_in_the_plan_not_hidden()
    {
        var record = FromPolicy();
        var policy = ParsedPolicy.Empty("policy.json", 147, 148) with { PoolRules = true, HookTable = null, HookTableName = "vpn9" };
        var snapshot = new KernelSnapshot { State = new KernelState(record.Routes, record.Rules), Links = Support.Snapshots.Links("tun0") };

        var plan = Reconciler.Plan(policy, [record], snapshot, ReconcileMode.Converge);

        Assert.Empty(plan.Changes);
        Assert.Contains(plan.Notes, n => n.Stated && n.Text.Contains("stays in table 200 until it reconnects"));
    }
}
