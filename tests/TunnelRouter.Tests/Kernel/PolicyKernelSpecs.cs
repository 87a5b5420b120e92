using System.Text.Json;
using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary>apply, plan, status and flush of a policy by the published binary, in a namespace of the test's own.</summary>
public class PolicyKernelSpecs
{
    const string Policy = """
        {
          "Tables": { "vpn": 200, "wan": 201 },
          "Rules": [
            "from 10.10.10.0/24 lookup vpn",
            "from fd00:4242:4242:4242::/64 lookup vpn",
            "fwmark 0xf2 lookup vpn pref 1100",
            "not to 10.0.0.0/8 iif eth1 ipproto tcp dport 22 lookup wan"
          ],
          "Routes": [
            "default via 192.168.1.1 table vpn",
            "-6 default via fd00:1010:1010:1010::1 dev eth1 table vpn",
            "unreachable default table vpn metric 4278198272",
            "default via 192.168.1.254 dev eth1 table wan"
          ]
        }
        """;

    static NetNs Host()
    {
        var ns = new NetNs();
        ns.Ip("link", "add", "eth1", "type", "veth", "peer", "name", "eth1-peer");
        ns.AddAddress("eth1", "192.168.1.100/24");
        ns.AddAddress("eth1", "fd00:1010:1010:1010::100/64");
        ns.Ip("link", "set", "eth1", "up");
        ns.Ip("link", "set", "eth1-peer", "up");
        // The carrier and the IPv6 link-local addresses come a moment after "up": wait until the kernel has
        // settled, or a dump before and one after a run would differ by what the kernel added meanwhile.
        var last = "";
        Eventually.True(() =>
        {
            var dump = last = ns.Dump();
            return !dump.Contains("linkdown") && dump.Contains("fe80::/64 dev eth1 ") && dump.Contains("fe80::/64 dev eth1-peer ")
                   && ns.Dump() == dump;
        }, () => $"eth1 did not settle in 60 s:\n{last}", 60_000);
        return ns;
    }

    static RunResult Apply(NetNs ns, string policyPath, params string[] extra) => Run(ns, ["apply", "-c", policyPath, .. extra]);

    static string[] Changes(RunResult run) =>
        run.Stderr.Split('\n').Where(l => l.StartsWith("[#] ", StringComparison.Ordinal)).Select(l => l[4..]).ToArray();

    static string Rules(NetNs ns) => ns.Ip("-4", "rule", "show") + ns.Ip("-6", "rule", "show");

    [Fact]
    public void A_prefix_file_of_100000_lines_is_applied_read_back_and_then_has_nothing_to_change()
    {
        using var ns = Host();
        // 90,000 IPv4 /24s and 10,000 IPv6 /48s, with comments and a duplicate, as list files come.
        var lines = new List<string> { "# a provider's list" };
        for (var i = 0; i < 90_000; i++) lines.Add($"{16 + i / 65536}.{i / 256 % 256}.{i % 256}.0/24");
        for (var i = 0; i < 10_000; i++) lines.Add($"2001:db8:{i:x}::/48");
        lines.Add("16.0.0.0/24");
        var list = Path.Combine(ns.StateDir, "list.txt");
        File.WriteAllLines(list, lines);
        var policy = Hardening.WritePolicy(ns,
            $$"""{ "Tables": { "bulk": 300 }, "PrefixLists": [ { "File": "{{list}}", "Route": "dev eth1 table bulk" } ] }""");

        var plan = Run(ns, ["plan", "-c", policy]);
        Apply(ns, policy, "-q").ShouldSucceed();

        Assert.Contains("+ 100,000 routes in table bulk from list.txt", plan.Stdout);
        Assert.Equal(90_000, ns.Ip("-4", "route", "show", "table", "300", "proto", "147").Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Equal(10_000, ns.Ip("-6", "route", "show", "table", "300", "proto", "147").Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Contains("16.0.0.0/24 dev eth1 proto 147", ns.Ip("-4", "route", "show", "table", "300"));
        Assert.Equal(0, Run(ns, ["plan", "-q", "-c", policy]).ExitCode);
    }

    [Fact]
    public void A_policy_of_5000_lines_is_applied_whole_or_with_one_bad_line_not_at_all()
    {
        // A thousand lines and more: the kernel is dumped on a second thread while the lines are parsed.
        using var ns = Host();
        var routes = new List<string>();
        for (var i = 0; i < 3_000; i++) routes.Add($"10.{1 + i / 250}.{i % 250}.0/24 dev eth1 table 300");
        for (var i = 0; i < 1_000; i++) routes.Add($"fd00:{1 + i / 250:x}:{i % 250:x}::/64 dev eth1 table 300");
        routes.Add("-6 unreachable default table 300 metric 4294967295");
        var rules = new List<string>();
        for (var i = 0; i < 800; i++) rules.Add($"from 100.64.{i / 250}.{i % 250} lookup 300 pref {5000 + i}");
        for (var i = 0; i < 200; i++) rules.Add($"from fd00:ff:{i:x}::/64 lookup 300 pref {6000 + i}");
        var broken = routes.ToList();
        broken[2_500] = "10.11.0.1/16 dev eth1 table 300";
        var bad = Hardening.WritePolicy(ns, new { Routes = broken, Rules = rules }, "broken.json");
        var before = ns.Dump();

        var refused = Apply(ns, bad, "-q");

        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("broken.json: Routes[2500]: word 1 '10.11.0.1/16': has host bits set; did you mean 10.11.0.0/16?", refused.Stderr);
        Assert.Equal(before, ns.Dump());

        var policy = Hardening.WritePolicy(ns, new { Routes = routes, Rules = rules });
        Apply(ns, policy, "-q").ShouldSucceed();

        Assert.Equal(3_000, ns.Ip("-4", "route", "show", "table", "300", "proto", "147").Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Equal(1_001, ns.Ip("-6", "route", "show", "table", "300", "proto", "147").Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Equal(800, ns.Ip("-4", "rule", "show").Split('\n').Count(l => l.EndsWith(" proto 147", StringComparison.Ordinal)));
        Assert.Equal(200, ns.Ip("-6", "rule", "show").Split('\n').Count(l => l.EndsWith(" proto 147", StringComparison.Ordinal)));
        Assert.Equal(0, Run(ns, ["plan", "-q", "-c", policy]).ExitCode);
        Apply(ns, policy, "-q").ShouldSucceed();
        Assert.Equal(0, Run(ns, ["plan", "-q", "-c", policy]).ExitCode);
    }

    [Fact]
    public void Apply_installs_the_rules_and_routes_with_protocol_147_and_the_priority_band()
    {
        using var ns = Host();

        Apply(ns, Topology.Policy(ns, Policy)).ShouldSucceed();

        var rules = Rules(ns);
        Assert.Contains("2000:\tfrom 10.10.10.0/24 lookup 200 proto 147", rules);
        Assert.Contains("2010:\tfrom fd00:4242:4242:4242::/64 lookup 200 proto 147", rules);
        Assert.Contains("1100:\tfrom all fwmark 0xf2 lookup 200 proto 147", rules);
        Assert.Contains("2030:\tnot from all to 10.0.0.0/8 iif eth1 ipproto tcp dport 22 lookup 201 proto 147", rules);
        var table = ns.Ip("-4", "route", "show", "table", "200");
        Assert.Contains("default via 192.168.1.1 dev eth1 proto 147", table);
        Assert.Contains("unreachable default proto 147 metric 4278198272", table);
        Assert.Contains("default via fd00:1010:1010:1010::1 dev eth1 proto 147 metric 1024", ns.Ip("-6", "route", "show", "table", "200"));
        var names = File.ReadAllText(Path.Combine(ns.StateDir, "iproute2", "rt_tables.d", "tunnel-router.conf"));
        Assert.Contains("200\tvpn", names);
        Assert.Contains("201\twan", names);
    }

    [Fact]
    public void A_second_apply_changes_nothing()
    {
        using var ns = Host();
        var policy = Topology.Policy(ns, Policy);
        Apply(ns, policy).ShouldSucceed();
        var before = ns.Dump();

        var again = Apply(ns, policy).ShouldSucceed();

        Assert.Empty(Changes(again));
        Assert.Equal(before, ns.Dump());
    }

    [Fact]
    public void An_edited_policy_changes_only_the_difference()
    {
        using var ns = Host();
        var policy = Topology.Policy(ns, Policy);
        Apply(ns, policy).ShouldSucceed();
        File.WriteAllText(policy, Policy
            .Replace("\"fwmark 0xf2 lookup vpn pref 1100\"", "\"fwmark 0xf1 lookup wan pref 1100\"")
            .Replace("default via 192.168.1.1 table vpn", "default via 192.168.1.2 table vpn"));

        var edit = Apply(ns, policy).ShouldSucceed();

        Assert.Equal(
        [
            "ip -4 route replace default via 192.168.1.2 table vpn proto tunnel-router",
            "ip -4 rule add from all fwmark 0xf1 pref 1100 lookup wan protocol tunnel-router",
            "ip -4 rule del from all fwmark 0xf2 pref 1100 lookup vpn protocol tunnel-router",
        ], Changes(edit));
        Assert.Contains("default via 192.168.1.2 dev eth1 proto 147", ns.Ip("route", "show", "table", "200"));
        Assert.Empty(Changes(Apply(ns, policy).ShouldSucceed()));
    }

    [Fact]
    public void Foreign_rules_and_routes_in_the_same_tables_and_priority_band_survive_apply_and_flush()
    {
        using var ns = Host();
        // Same priorities as ours (2000, 1100), same table, one identical but for its protocol.
        ns.Ip("rule", "add", "from", "10.10.10.0/24", "lookup", "200", "pref", "2000");
        ns.Ip("rule", "add", "from", "192.0.2.0/24", "lookup", "200", "pref", "2000", "protocol", "static");
        ns.Ip("rule", "add", "fwmark", "0xf3", "lookup", "200", "pref", "1100");
        ns.Ip("route", "add", "192.0.2.0/24", "dev", "eth1", "table", "200");
        ns.Ip("route", "add", "198.51.100.0/24", "via", "192.168.1.1", "table", "200", "proto", "static");
        ns.Ip("-6", "route", "add", "2001:db8::/64", "dev", "eth1", "table", "200");
        var foreignRules = Rules(ns);
        var foreignRoutes = ns.Ip("-4", "route", "show", "table", "200") + ns.Ip("-6", "route", "show", "table", "200");
        var policy = Topology.Policy(ns, Policy);

        Apply(ns, policy).ShouldSucceed();
        foreach (var line in foreignRules.Split('\n', StringSplitOptions.RemoveEmptyEntries)) Assert.Contains(line, Rules(ns));
        foreach (var line in foreignRoutes.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            Assert.Contains(line.Trim(), ns.Ip("-4", "route", "show", "table", "200") + ns.Ip("-6", "route", "show", "table", "200"));

        Run(ns, ["flush", "-c", policy]).ShouldSucceed();

        Assert.Equal(foreignRules, Rules(ns));
        Assert.Equal(foreignRoutes, ns.Ip("-4", "route", "show", "table", "200") + ns.Ip("-6", "route", "show", "table", "200"));
    }

    [Fact]
    public void Apply_leaves_the_hooks_objects_alone_and_flush_removes_only_what_tunnel_router_owns()
    {
        using var ns = Host();
        ns.AddTun("tun0", "10.10.10.1/24", "fd00:4242:4242:4242::1/64");
        ns.Ip("route", "add", "203.0.113.0/24", "via", "192.168.1.1");
        var policy = Topology.Policy(ns, Policy);
        var env = SubnetEnv("tun0", "10.10.10.1", "255.255.255.0", "fd00:4242:4242:4242::1", 64);
        env["TUNNEL_ROUTER_POOLRULES"] = "true";
        Run(ns, ["up", "-c", policy], env).ShouldSucceed();
        var hookRules = ns.Ip("-4", "rule", "show", "pref", "1000");

        Apply(ns, policy).ShouldSucceed();
        Apply(ns, policy).ShouldSucceed();

        Assert.Equal(hookRules, ns.Ip("-4", "rule", "show", "pref", "1000"));
        Assert.Contains("10.10.10.0/24 dev tun0 proto 148", ns.Ip("route", "show", "table", "200"));

        Run(ns, ["flush", "--all", "-c", policy]).ShouldSucceed();

        Assert.DoesNotContain("proto 147", Rules(ns) + ns.Ip("route", "show", "table", "all") + ns.Ip("-6", "route", "show", "table", "all"));
        Assert.DoesNotContain("proto 148", Rules(ns) + ns.Ip("route", "show", "table", "all") + ns.Ip("-6", "route", "show", "table", "all"));
        Assert.Contains("203.0.113.0/24 via 192.168.1.1 dev eth1", ns.Ip("route", "show"));
    }

    [Fact]
    public void Plan_exits_2_with_changes_0_without_and_1_on_a_broken_policy()
    {
        using var ns = Host();
        var policy = Topology.Policy(ns, Policy);
        var before = ns.Dump();

        var pending = Run(ns, ["plan", "-c", policy]);
        Assert.Equal(2, pending.ExitCode);
        Assert.Contains("ip -4 rule add from 10.10.10.0/24 pref 2000 lookup vpn protocol tunnel-router", pending.Stdout);
        Assert.Contains("ip -6 route add default via fd00:1010:1010:1010::1 dev eth1 table vpn proto tunnel-router", pending.Stdout);
        Assert.Equal(before, ns.Dump());
        Assert.False(File.Exists(Path.Combine(ns.StateDir, "iproute2", "rt_tables.d", "tunnel-router.conf")));

        Apply(ns, policy).ShouldSucceed();
        var clean = Run(ns, ["plan", "-c", policy]);
        Assert.Equal(0, clean.ExitCode);
        Assert.Equal("", clean.Stdout);

        var broken = Run(ns, ["plan", "-c", Topology.Policy(ns, """{ "Rules": ["from 10.0.0.0/8 lokup vpn"] }""", "broken.json")]);
        Assert.Equal(1, broken.ExitCode);
    }

    [Fact]
    public void A_relative_policy_path_is_read_from_the_working_directory_not_from_beside_the_binary()
    {
        using var ns = Host();
        var relative = Path.GetRelativePath(Directory.GetCurrentDirectory(), Topology.Policy(ns, Policy));

        var plan = Run(ns, ["plan", "-c", relative]);

        Assert.Equal(2, plan.ExitCode);
        Assert.Contains("lookup vpn", plan.Stdout);
    }

    [Fact]
    public void Status_shows_what_tunnel_router_owns_table_by_table_in_text_and_json()
    {
        using var ns = Host();
        var policy = Topology.Policy(ns, Policy);
        Apply(ns, policy).ShouldSucceed();

        var text = Run(ns, ["status", "-c", policy]).ShouldSucceed().Stdout;
        var json = Run(ns, ["status", "-c", policy, "--json"]).ShouldSucceed().Stdout;

        Assert.Contains("table vpn (200):", text);
        Assert.Contains("table wan (201):", text);
        Assert.Contains("-4 default via 192.168.1.1 dev eth1 table vpn proto tunnel-router", text);
        Assert.Contains("-4 from 10.10.10.0/24 pref 2000 lookup vpn protocol tunnel-router", text);
        using var doc = JsonDocument.Parse(json);
        var routes = doc.RootElement.GetProperty("routes").EnumerateArray().ToList();
        var rules = doc.RootElement.GetProperty("rules").EnumerateArray().ToList();
        Assert.Equal(4, routes.Count);
        Assert.Equal(4, rules.Count);
        Assert.All(routes, r => Assert.Equal("tunnel-router", r.GetProperty("owner").GetString()));
        Assert.Contains(rules, r => r.GetProperty("priority").GetUInt32() == 1100 && r.GetProperty("family").GetString() == "inet");
        Assert.Contains(routes, r => r.GetProperty("tableName").GetString() == "wan");
    }

    [Fact]
    public void A_failing_change_rolls_back_everything_and_leaves_the_kernel_as_it_was()
    {
        using var ns = Host();
        var policy = Topology.Policy(ns, """
            { "Tables": { "vpn": 200 },
              "Rules": [ "from 10.10.10.0/24 lookup vpn" ],
              "Routes": [ "10.1.0.0/16 dev eth1 table vpn", "10.2.0.0/16 dev eth1 src 203.0.113.99 table vpn" ] }
            """);
        var before = ns.Dump();
        // 203.0.113.99 is no address of this host: only the kernel knows to refuse it ("Invalid prefsrc address"),
        // after the first route went in.

        var run = Apply(ns, policy);

        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("rolled back 1 change", run.Stderr);
        Assert.Equal(before, ns.Dump());
    }

    [Theory]
    [InlineData("-4", "192.168.1.9")]
    [InlineData("-6", "fd00:1010:1010:1010::9")]
    public void A_foreign_route_with_the_same_key_is_a_conflict_and_nothing_changes(string family, string via)
    {
        using var ns = Host();
        ns.Ip(family, "route", "add", "default", "via", via, "table", "200");
        var before = ns.Dump();

        var run = Apply(ns, Topology.Policy(ns, Policy));

        Assert.Equal(1, run.ExitCode);
        Assert.Contains($"route 'default via {via} dev eth1 table vpn proto boot", run.Stderr);
        Assert.Contains("(same table, destination and metric) and is not tunnel-router's: remove it (ip " + family + " route del default via " + via, run.Stderr);
        Assert.Equal(before, ns.Dump());
    }

    [Fact]
    public void Dry_run_prints_the_changes_and_makes_none()
    {
        using var ns = Host();
        var before = ns.Dump();

        var run = Apply(ns, Topology.Policy(ns, Policy), "--dry-run").ShouldSucceed();

        Assert.Equal(8, Changes(run).Length);
        Assert.Equal(before, ns.Dump());
    }

    [Theory]
    [InlineData("""{ "Rules": ["from 10.0.0.0/8 lookup vpn" """, "policy.json:")]
    [InlineData("""{ "Rulez": [] }""", "policy.json: Rulez: unknown key")]
    [InlineData("""{ "Tables": { "vpn": 200 }, "Rules": ["from 10.0.0.256/8 lookup vpn"] }""", "policy.json: Rules[0]: word 2 '10.0.0.256/8'")]
    [InlineData("""{ "Tables": { "vpn": 200 }, "Routes": ["default via 192.168.1.1 table vpn", "default via 192.168.1.x table vpn"] }""", "policy.json: Routes[1]: word 3 '192.168.1.x'")]
    [InlineData("""{ "Tables": { "vpn": "x" } }""", "policy.json: Tables.vpn: 'x' is not a valid value")]
    [InlineData("""{ "Tables": { "vpn": 254 } }""", "policy.json: Tables.vpn: 254 is not a free table number")]
    [InlineData("""{ "Tables": { "lan1": 10 }, "Uplinks": [ { "Interface": "eth1", "Table": "lan1", "Gatway": "192.168.1.1" } ] }""", "policy.json: Uplinks[0].Gatway: unknown key")]
    [InlineData("""{ "Tables": { "lan1": 10 }, "Uplinks": [ { "Interface": "eth1", "Table": "lan1", "Gateway": "192.168.1.300" } ] }""", "policy.json: Uplinks[0].Gateway: '192.168.1.300' is not a valid")]
    [InlineData("""{ "Uplinks": [ { "Interface": "eth1", "Table": "lan9" } ] }""", "policy.json: Uplinks[0].Table: 'lan9' is not a table")]
    [InlineData("""{ "Tables": { "vpn": 200 }, "Rules": ["from 10.0.0.0/8 lookup vpn pref 500", "from 10.0.0.0/8 lookup vpn pref 500"] }""", "policy.json: Rules[1]: 'from 10.0.0.0/8 lookup vpn pref 500' is the same rule as Rules[0]")]
    public void A_broken_policy_is_one_line_naming_file_and_key_and_changes_nothing(string json, string expected)
    {
        using var ns = Host();
        var before = ns.Dump();
        var path = Topology.Policy(ns, json);

        var run = Apply(ns, path);

        Assert.Equal(1, run.ExitCode);
        var line = Assert.Single(run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("tunnel-router: error: " + expected.Replace("policy.json", path), line);
        Assert.Equal(before, ns.Dump());
        Assert.False(File.Exists(Path.Combine(ns.StateDir, "iproute2", "rt_tables.d", "tunnel-router.conf")));
    }
}
