using System.Net.Sockets;
using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>Issue 21, invariant 10: a rule whose table has neither a route for its traffic nor a kill switch is named,
/// per family — its traffic falls through to main.</summary>
public class FallThroughSpecs
{
    ParsedPolicy Parse(TunnelRouterOptions o) => PolicyParser.Parse(o, Iproute2Files.Of(), "policy.json");

    static TunnelRouterOptions Vpn(params string[] routes) => new()
    {
        Tables = new() { ["vpn"] = 200, ["vpn2"] = 201 },
        Rules = ["from 10.10.10.0/24 lookup vpn", "from fd00:10::/64 lookup vpn"],
        Routes = [.. routes],
    };

    [Fact]
    public void A_second_instances_table_with_pool_rules_and_no_default_route_falls_through_to_main()
    {
        var policy = Parse(Vpn("default via 192.168.1.1 dev eth0 table vpn", "-6 default via fd00:1::1 dev eth0 table vpn"));
        var tunnel = OpenVpnTunnel.Parse(new Dictionary<string, string>
        {
            ["script_type"] = "up", ["dev"] = "tun1", ["ifconfig_local"] = "10.20.20.1", ["ifconfig_netmask"] = "255.255.255.0",
        }, [], null);
        var record = TunnelRecord.Of(tunnel, HookPolicy.Desired(tunnel, new HookSettings(201, 148, PoolRules: true, PoolRulePriority: 1000)));

        var leak = Assert.Single(Lifecycle.FallThrough(policy, [record], KernelSnapshot.Empty));

        Assert.Equal("tun1's rule 'from 10.20.20.0/24 pref 1000 lookup vpn2': table vpn2 has no IPv4 route for its traffic and no kill switch: " +
                     "its traffic falls through to main", leak.Message);
        Assert.Equal("give table vpn2 a default route (Routes, an Instances line) or put it in FailClosed", leak.Fix);
    }

    [Fact]
    public void Each_family_is_judged_on_its_own_and_a_kill_switch_closes_both()
    {
        var v4Only = Parse(Vpn("default via 192.168.1.1 dev eth0 table vpn"));
        var closedOptions = Vpn();
        closedOptions.FailClosed = ["vpn"];
        var closed = Parse(closedOptions);

        var leak = Assert.Single(Lifecycle.FallThrough(v4Only, [], KernelSnapshot.Empty));

        Assert.StartsWith("policy.json: rule '-6 from fd00:10::/64 pref 2010 lookup vpn': table vpn has no IPv6 route", leak.Message);
        Assert.Empty(Lifecycle.FallThrough(closed, [], KernelSnapshot.Empty));
    }

    [Fact]
    public void A_rule_to_a_destination_needs_only_a_route_that_covers_it_and_the_kernels_routes_count()
    {
        var policy = Parse(new TunnelRouterOptions
        {
            Tables = new() { ["nyet"] = 100 },
            Rules = ["from 192.168.10.0/24 to 198.51.100.7 lookup nyet"],
        });
        var covering = new Route(Net.ParsePrefix("d", "198.51.100.0/24"), 100, 148, "tun2");

        Assert.Single(Lifecycle.FallThrough(policy, [], KernelSnapshot.Empty));
        Assert.Empty(Lifecycle.FallThrough(policy, [], new KernelSnapshot { State = new KernelState([covering], []) }));
    }
}
