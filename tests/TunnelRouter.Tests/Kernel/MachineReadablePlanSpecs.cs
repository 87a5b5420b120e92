using System.Text.Json;
using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.Hardening;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary>conf.d fragments applied for real, and plan --json / apply --json as their schemas in docs/ say, each change
/// naming the file and line that want it.</summary>
public class MachineReadablePlanSpecs
{
    static readonly string PlanSchema = Repo.File("docs", "plan.schema.json");
    static readonly string ApplySchema = Repo.File("docs", "apply.schema.json");

    static NetNs Host()
    {
        var ns = new NetNs();
        AddVeth(ns, "wan", "192.168.1.2/24");
        return ns;
    }

    static string Fragment(NetNs ns, string name, string json)
    {
        Directory.CreateDirectory(Path.Combine(ns.StateDir, "conf.d"));
        return WritePolicy(ns, json, Path.Combine("conf.d", name));
    }

    static List<JsonElement> Changes(string json) =>
        JsonDocument.Parse(json).RootElement.GetProperty("changes").EnumerateArray().ToList();

    [Fact]
    public void A_fragments_routes_and_rules_are_applied_with_the_policys_and_plan_then_has_nothing_to_change()
    {
        using var ns = Host();
        var policy = WritePolicy(ns, Hardening.Policy(["default via 192.168.1.1 table wan"], ["from 10.1.0.0/16 lookup wan"]));
        var fragment = Fragment(ns, "10-site.json", """{ "Tables": { "site": 201 }, "Routes": [ "default via 192.168.1.1 table site" ], "Rules": [ "from 10.2.0.0/16 lookup site" ] }""");

        var planned = Run(ns, ["plan", "-v", "--config", policy]);
        Run(ns, ["apply", "--config", policy]).ShouldSucceed();

        Assert.Equal(2, planned.ExitCode);
        Assert.Contains($"table site proto tunnel-router    # {fragment}: Routes[0]", planned.Stdout);
        Assert.Contains(planned.Stdout.Split('\n'), l => l.Contains("from 10.2.0.0/16 ") && l.Contains(" lookup site ") && l.EndsWith($"    # {fragment}: Rules[0]"));
        Assert.Contains($"table wan proto tunnel-router    # {policy}: Routes[0]", planned.Stdout);
        Assert.Contains("default via 192.168.1.1 dev wan proto 147", ns.Ip("route", "show", "table", "201"));
        Assert.Contains("from 10.2.0.0/16 lookup 201 proto 147", ns.Ip("rule", "show"));
        Assert.Equal(0, Run(ns, ["plan", "--config", policy]).ExitCode);
    }

    [Fact]
    public void A_broken_fragment_is_named_and_changes_nothing()
    {
        using var ns = Host();
        var policy = WritePolicy(ns, Hardening.Policy(["default via 192.168.1.1 table wan"], []));
        var fragment = Fragment(ns, "10-site.json", """{ "Tables": { "wan": 201 } }""");
        var before = ns.Dump();

        var plan = Run(ns, ["plan", "--config", policy]);

        Assert.Equal(1, plan.ExitCode);
        Assert.Contains($"{fragment}: Tables.wan: is set in {policy} too", plan.Stderr);
        Assert.Equal(before, ns.Dump());
    }

    [Fact]
    public void Plan_json_follows_its_schema_and_names_what_wants_each_change()
    {
        using var ns = Host();
        var policy = WritePolicy(ns, Hardening.Policy(["default via 192.168.1.1 table wan"], ["from 10.1.0.0/16 lookup wan"]));
        var fragment = Fragment(ns, "10-site.json", """{ "Tables": { "site": 201 }, "Routes": [ "default via 192.168.1.1 table site" ] }""");

        var plan = Run(ns, ["plan", "--json", "--config", policy]);

        Assert.Equal(2, plan.ExitCode);
        Assert.Empty(JsonSchema.Check(PlanSchema, plan.Stdout));
        var changes = Changes(plan.Stdout);
        var site = Assert.Single(changes, c => c.GetProperty("command").GetString()!.Contains("table site"));
        Assert.Equal(("add", "route", "tunnel-router", fragment, "Routes", 0),
            (site.GetProperty("operation").GetString(), site.GetProperty("object").GetString(), site.GetProperty("owner").GetString(),
             site.GetProperty("file").GetString(), site.GetProperty("section").GetString(), site.GetProperty("line").GetInt32()));
        var rule = Assert.Single(changes, c => c.GetProperty("object").GetString() == "rule");
        Assert.Equal((policy, "Rules", 0), (rule.GetProperty("file").GetString(), rule.GetProperty("section").GetString(), rule.GetProperty("line").GetInt32()));
    }

    [Fact]
    public void Apply_json_follows_its_schema_with_every_change_applied_and_a_removal_wanted_by_nobody()
    {
        using var ns = Host();
        var policy = WritePolicy(ns, Hardening.Policy(["default via 192.168.1.1 table wan", "10.9.0.0/16 via 192.168.1.1 table wan"], []));
        Run(ns, ["apply", "--config", policy]).ShouldSucceed();
        WritePolicy(ns, Hardening.Policy(["default via 192.168.1.1 table wan"], ["from 10.1.0.0/16 lookup wan"]));

        var apply = Run(ns, ["apply", "--json", "--config", policy]);

        Assert.Equal(0, apply.ExitCode);
        Assert.Empty(JsonSchema.Check(ApplySchema, apply.Stdout));
        var root = JsonDocument.Parse(apply.Stdout).RootElement;
        Assert.True(root.GetProperty("ok").GetBoolean());
        var changes = Changes(apply.Stdout);
        Assert.Equal(2, changes.Count);
        Assert.All(changes, c => Assert.Equal("applied", c.GetProperty("result").GetString()));
        var removed = Assert.Single(changes, c => c.GetProperty("operation").GetString() == "delete");
        Assert.Equal(JsonValueKind.Null, removed.GetProperty("section").ValueKind);
        Assert.Equal("owned, and the policy no longer has it", removed.GetProperty("reason").GetString());
        Assert.Equal(0, Run(ns, ["plan", "--config", policy]).ExitCode);
    }

    [Fact]
    public void Apply_json_that_fails_says_which_changes_were_rolled_back_and_still_follows_its_schema()
    {
        using var ns = Host();
        var policy = WritePolicy(ns, Hardening.Policy(["default via 192.168.1.1 table wan", "10.9.0.0/16 via 192.168.1.1 table wan"], []));
        var before = ns.Dump();

        var apply = Run(ns, ["apply", "--json", "--config", policy], new Dictionary<string, string> { ["TUNNEL_ROUTER_FAULT_AFTER"] = "1" });

        Assert.Equal(1, apply.ExitCode);
        Assert.Empty(JsonSchema.Check(ApplySchema, apply.Stdout));
        var root = JsonDocument.Parse(apply.Stdout).RootElement;
        Assert.False(root.GetProperty("ok").GetBoolean());
        Assert.False(string.IsNullOrEmpty(root.GetProperty("error").GetString()));
        Assert.All(Changes(apply.Stdout), c => Assert.Equal("rolled back", c.GetProperty("result").GetString()));
        Assert.Equal(before, ns.Dump());
    }
}
