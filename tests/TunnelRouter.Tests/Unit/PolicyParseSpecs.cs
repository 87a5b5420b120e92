using TunnelRouter.Host;
using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>The one policy value: a tolerant parse (what parsed, plus every mistake) from plain data, and a parse that
/// changes nothing it is given (new table names are data for the applier).</summary>
public class PolicyParseSpecs
{
    static TunnelRouterOptions Broken() => new()
    {
        Tables = new() { ["vpn"] = 200 },
        Rules = ["from 10.10.10.0/24 lookup vpn", "from 10.20.0.0/16 lokup vpn"],
        Marks = [new MarkOptions { Chain = "output", Mark = "1" }, new MarkOptions { Chain = "sideways", Mark = "2" }],
        Sysctls = new() { ["net.ipv4.ip_forward"] = "1", ["kernel.panic"] = "1" },
    };

    [Fact]
    public void A_broken_policy_keeps_what_parsed_and_names_every_mistake()
    {
        var parsed = PolicyParser.ParseTolerant(Broken(), Iproute2Files.Of(), "policy.json");

        Assert.False(parsed.IsValid);
        Assert.Equal(3, parsed.Errors.Count);
        Assert.Single(parsed.Policy.Rules);
        Assert.Single(parsed.Policy.MarkRules);
        Assert.StartsWith("policy.json: Marks[1].Chain: ", Assert.Single(parsed.MarksErrors).Message);
        Assert.True(parsed.UsesMarks);
        Assert.Equal([KeyValuePair.Create("net.ipv4.ip_forward", "1")], parsed.Policy.Sysctls);
    }

    [Fact]
    public void The_valid_policy_of_a_broken_parse_throws_what_the_strict_parse_throws()
    {
        var strict = Assert.Throws<InputErrors>(() => PolicyParser.Parse(Broken(), Iproute2Files.Of(), "policy.json"));

        var tolerant = Assert.Throws<InputErrors>(() => PolicyParser.ParseTolerant(Broken(), Iproute2Files.Of(), "policy.json").Valid());

        Assert.Equal(strict.Message, tolerant.Message);
    }

    [Fact]
    public void Parsing_leaves_the_names_it_is_given_alone_and_returns_the_new_ones_as_data()
    {
        var host = Iproute2Files.Of();
        var o = new TunnelRouterOptions { Tables = new() { ["vpn2"] = 201 }, Rules = ["from 10.10.10.0/24 lookup vpn"] };

        var policy = PolicyParser.Parse(o, host, "policy.json");

        Assert.False(host.Tables.TryGetId("vpn2", out _));
        Assert.False(host.Tables.TryGetId("vpn", out _));
        Assert.False(host.HasPendingNames);
        Assert.Equal([("tunnel-router", 147u), ("tunnel-router-hook", 148u), ("vpn2", 201u), ("vpn", Iproute2Files.AutoTableFirst)],
            policy.NewNames.Select(n => (n.Name, n.Id)));
        Assert.Equal("vpn2", policy.TableNames.Format(201));
    }

    [Fact]
    public void Registering_the_new_names_makes_them_pending_for_the_drop_in()
    {
        var policy = PolicyParser.Parse(new TunnelRouterOptions { Tables = new() { ["vpn2"] = 201 } }, Iproute2Files.Of(), "policy.json");
        var host = Iproute2Files.Of();

        host.Register(policy.NewNames);

        Assert.True(host.HasPendingNames);
        Assert.True(host.Tables.TryGetId("vpn2", out var id));
        Assert.Equal(201u, id);
    }

    [Fact]
    public void A_new_name_the_host_gave_another_number_meanwhile_is_an_error_naming_its_field()
    {
        var policy = PolicyParser.Parse(new TunnelRouterOptions { Tables = new() { ["vpn2"] = 201 } }, Iproute2Files.Of(), "policy.json");
        var meanwhile = new TableNames();
        meanwhile.Load("202 vpn2\n");

        var e = Assert.Throws<InputException>(() => Iproute2Files.Of(meanwhile).Register(policy.NewNames));

        Assert.Equal("policy.json: Tables.vpn2: 201: the host's rt_tables files already define 'vpn2' as 202; use 202", e.Message);
    }
}
