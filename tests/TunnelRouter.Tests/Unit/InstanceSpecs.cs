using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>Issue 13: Instances entries, their ${NAME} placeholders and the untrusted values that fill them.</summary>
public class InstanceSpecs
{
    static TunnelRouterOptions Seed000(params string[] routes) => new()
    {
        Tables = new() { ["nyet"] = 100 },
        Instances =
        [
            new InstanceOptions
            {
                Dev = "tun2",
                Rules = ["from 192.168.10.0/24 to 198.51.100.7 lookup nyet"],
                Routes = routes.Length > 0 ? [.. routes] : ["default via ${route_vpn_gateway} dev ${dev} table nyet",
                    "optional -6 default via ${ifconfig_ipv6_remote} dev ${dev} table nyet"],
            },
        ],
    };

    ParsedPolicy Parse(TunnelRouterOptions o) => PolicyParser.Parse(o, Iproute2Files.Of(), "policy.json");

    ResolvedInstance Resolve(TunnelRouterOptions o, Dictionary<string, string> env)
    {
        var names = Iproute2Files.Of();
        var tables = PolicyTables.Create(names, o.Tables, o.Table, o.TableId, "policy.json");
        var spec = InstanceConfig.Match(InstanceConfig.Parse(o.Instances, tables.For, 148, "policy.json"), env["dev"])!;
        return InstanceConfig.Resolve(spec, env, tables.For, 148);
    }

    static Dictionary<string, string> Env(string gateway = "10.8.0.1") => new()
    {
        ["dev"] = "tun2", ["route_vpn_gateway"] = gateway, ["trusted_ip"] = "198.51.100.7",
    };

    [Fact]
    public void Placeholders_resolve_to_the_tunnels_gateway_and_device_with_the_hooks_protocol()
    {
        var r = Resolve(Seed000(), Env());

        Assert.Equal(["default via 10.8.0.1 dev tun2 table 100 proto 148"], r.State.Routes.Select(x => x.ToString()));
        Assert.Equal(["from 192.168.10.0/24 to 198.51.100.7/32 pref 1100 lookup 100 protocol 148"], r.State.Rules.Select(x => x.ToString()));
        Assert.Equal(["default via 10.8.0.1 dev tun2 table nyet"], r.RouteLines);
        Assert.Equal(["from 192.168.10.0/24 to 198.51.100.7 lookup nyet pref 1100"], r.RuleLines);
    }

    [Fact]
    public void An_optional_line_whose_variable_is_unset_is_skipped_with_a_note()
    {
        var r = Resolve(Seed000(), Env());

        Assert.Single(r.State.Routes);
        Assert.Equal(["policy.json: Instances[0].Routes[1]: skipped, ifconfig_ipv6_remote is not set"], r.Notes);
    }

    [Fact]
    public void A_line_not_marked_optional_whose_variable_is_unset_is_one_error_naming_the_variable()
    {
        var env = Env();
        env.Remove("route_vpn_gateway");

        var e = Assert.Throws<InputException>(() => Resolve(Seed000(), env));

        Assert.Equal("route_vpn_gateway", e.Field);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData("10.8.0.1 table main", "more than one word")]
    [InlineData("10.8.0.1\nreboot", "more than one word")]
    [InlineData("fd00::1", "IPv6 address in an IPv4 line")]
    [InlineData("10.8.0.1;reboot", "not an IPv4 or IPv6 address")]
    [InlineData("tun0", "not an IPv4 or IPv6 address")]
    public void A_hostile_gateway_is_refused_with_one_line_naming_the_variable(string value, string why)
    {
        var e = Assert.Throws<InputException>(() => Resolve(Seed000("-4 default via ${route_vpn_gateway} dev ${dev} table nyet"), Env(value)));

        Assert.Equal("route_vpn_gateway", e.Field);
        Assert.Contains(why, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void A_100_kB_value_is_refused_unread_and_the_error_stays_short()
    {
        var e = Assert.Throws<InputException>(() => Resolve(Seed000(), Env(new string('1', 100_000))));

        Assert.Equal("route_vpn_gateway", e.Field);
        Assert.True(e.Message.Length < 300, e.Message);
    }

    [Fact]
    public void A_device_value_must_be_an_interface_name_and_a_prefix_value_a_prefix()
    {
        var dev = Env();
        dev["dev"] = "tun2";
        dev["x"] = "eth0 table main";
        var o = Seed000("10.0.0.0/8 dev ${x} table nyet");

        Assert.Equal("x", Assert.Throws<InputException>(() => Resolve(o, dev)).Field);

        var rule = Seed000();
        rule.Instances[0].Rules = ["from ${ifconfig_local} lookup nyet"];
        var env = Env();
        env["ifconfig_local"] = "10.8.0.6";
        Assert.Equal("from 10.8.0.6/32 pref 1100 lookup 100 protocol 148", Assert.Single(Resolve(rule, env).State.Rules).ToString());
        env["ifconfig_local"] = "all";
        Assert.Equal("ifconfig_local", Assert.Throws<InputException>(() => Resolve(rule, env)).Field);
    }

    [Fact]
    public void A_placeholder_must_be_a_whole_word_where_iproute2_takes_an_address_device_or_prefix()
    {
        Assert.Contains("whole word", Assert.Throws<InputException>(() => Parse(Seed000("default via ${route_vpn_gateway}x table nyet"))).Message);
        Assert.Contains("may stand only", Assert.Throws<InputException>(() => Parse(Seed000("default via 10.8.0.1 table ${table}"))).Message);
    }

    [Fact]
    public void A_template_is_checked_when_the_policy_is_parsed()
    {
        var e = Assert.Throws<InputException>(() => Parse(Seed000("default via ${route_vpn_gateway} dev ${dev} table nowhere")));

        Assert.Equal("policy.json: Instances[0].Routes[0]", e.Field);
    }

    [Fact]
    public void A_placeholder_in_the_top_level_routes_says_to_move_the_line_into_instances()
    {
        var e = Assert.Throws<InputException>(() => Parse(new TunnelRouterOptions { Routes = ["default via ${route_vpn_gateway} table 100"] }));

        Assert.Equal("policy.json: Routes[0]", e.Field);
        Assert.Contains("move the line into Instances[].Routes", e.Message);
    }

    [Theory]
    [InlineData("tun*", "tun2", true)]
    [InlineData("tun*", "tap0", false)]
    [InlineData("tun?", "tun12", false)]
    [InlineData("tun2", "tun2", true)]
    public void Dev_is_a_name_or_a_pattern(string pattern, string device, bool matches) =>
        Assert.Equal(matches, new InstanceSpec("f", pattern, [], []).Matches(device));

    [Fact]
    public void Traffic_for_the_tunnels_own_server_sent_into_it_is_found_and_names_allow_recursive_routing()
    {
        var r = Resolve(Seed000(), Env());

        var finding = Assert.Single(RecursiveRouting.Find("tun2", r.State, RecursiveRouting.Servers(Env())));
        Assert.Contains("allow-recursive-routing", finding);
        Assert.Empty(RecursiveRouting.Find("tun2", r.State, [System.Net.IPAddress.Parse("203.0.113.9")]));
    }
}
