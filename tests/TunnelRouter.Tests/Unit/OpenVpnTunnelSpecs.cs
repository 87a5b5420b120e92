using System.Net;
using TunnelRouter.Core;
using Xunit;

namespace TunnelRouter.Tests.Unit;

public class OpenVpnTunnelSpecs
{
    static OpenVpnTunnel Parse(Dictionary<string, string> env, string[]? args = null, HookAction? action = null) =>
        OpenVpnTunnel.Parse(env, args ?? [], action);

    static Dictionary<string, string> Subnet() => new()
    {
        ["script_type"] = "up", ["dev"] = "tun0", ["ifconfig_local"] = "10.10.10.1", ["ifconfig_netmask"] = "255.255.255.0",
        ["ifconfig_ipv6_local"] = "fd00:4242:4242:4242::1", ["ifconfig_ipv6_netbits"] = "64",
    };

    static string[] Nets(OpenVpnTunnel t) => t.Networks.Select(n => Core.Net.Format(n.Network) + (n.Gateway is null ? "" : " via " + n.Gateway)).ToArray();

    [Fact]
    public void Topology_subnet_gives_the_masked_IPv4_and_IPv6_networks()
    {
        var t = Parse(Subnet());

        Assert.Equal(HookAction.Up, t.Action);
        Assert.Equal("tun0", t.Device);
        Assert.Equal(["10.10.10.0/24", "fd00:4242:4242:4242::/64"], Nets(t));
        Assert.Equal(IPAddress.Parse("10.10.10.1"), t.Local4);
    }

    [Fact]
    public void Net30_gives_the_peer_and_the_pool_routed_via_the_peer()
    {
        var env = new Dictionary<string, string>
        {
            ["script_type"] = "up", ["dev"] = "tun0", ["ifconfig_local"] = "10.10.10.1", ["ifconfig_remote"] = "10.10.10.2",
            ["route_vpn_gateway"] = "10.10.10.2", ["route_network_1"] = "10.10.10.0", ["route_netmask_1"] = "255.255.255.0",
            ["route_gateway_1"] = "10.10.10.2", ["route_network_2"] = "192.0.2.0", ["route_netmask_2"] = "255.255.255.0",
            ["route_gateway_2"] = "198.51.100.1",
        };

        var t = Parse(env);

        Assert.Equal(["10.10.10.2/32", "10.10.10.0/24 via 10.10.10.2"], Nets(t));
    }

    [Fact]
    public void P2p_gives_the_peer_host_route()
    {
        var env = new Dictionary<string, string>
        {
            ["script_type"] = "up", ["dev"] = "tun1", ["ifconfig_local"] = "10.8.0.1", ["ifconfig_remote"] = "10.8.0.2",
            ["ifconfig_ipv6_local"] = "2001:db8::1", ["ifconfig_ipv6_netbits"] = "112", ["ifconfig_ipv6_remote"] = "2001:db8::2",
        };

        Assert.Equal(["10.8.0.2/32", "2001:db8::/112"], Nets(Parse(env)));
    }

    [Fact]
    public void OpenVPN_arguments_alone_are_enough_for_topology_subnet()
    {
        var t = Parse(new() { ["script_type"] = "up" }, ["tun3", "1500", "0", "10.20.0.1", "255.255.254.0", "init"]);

        Assert.Equal("tun3", t.Device);
        Assert.Equal("init", t.Context);
        Assert.Equal(["10.20.0.0/23"], Nets(t));
    }

    [Fact]
    public void OpenVPN_arguments_alone_are_enough_for_net30()
    {
        var t = Parse(new() { ["script_type"] = "up" }, ["tun3", "1500", "0", "10.20.0.1", "10.20.0.2", "restart"]);

        Assert.Equal(["10.20.0.2/32"], Nets(t));
        Assert.Equal("restart", t.Context);
    }

    [Fact]
    public void The_down_root_plugin_environment_without_script_type_works_when_the_command_says_down()
    {
        var env = Subnet();
        env.Remove("script_type");

        var t = Parse(env, action: HookAction.Down);

        Assert.Equal(HookAction.Down, t.Action);
        Assert.Equal(2, t.Networks.Count);
    }

    [Fact]
    public void Down_with_only_the_device_is_accepted()
    {
        var t = Parse(new() { ["dev"] = "tun0" }, action: HookAction.Down);

        Assert.Empty(t.Networks);
    }

    [Theory]
    [InlineData("ifconfig_local", "1.2.3.256", "ifconfig_local")]
    [InlineData("ifconfig_local", "10.10.10", "ifconfig_local")]
    [InlineData("ifconfig_local", "010.10.10.1", "ifconfig_local")]
    [InlineData("ifconfig_local", "fd00::1", "ifconfig_local")]
    [InlineData("ifconfig_local", "１０.10.10.1", "ifconfig_local")]
    [InlineData("ifconfig_netmask", "255.0.255.0", "ifconfig_netmask")]
    [InlineData("ifconfig_netmask", "255.255.255.256", "ifconfig_netmask")]
    [InlineData("ifconfig_netmask", "0.0.0.0", "ifconfig_netmask")]
    [InlineData("ifconfig_netmask", "", "ifconfig_netmask")]
    [InlineData("dev", "tun0; reboot", "dev")]
    [InlineData("dev", "tun0123456789abc", "dev")]
    [InlineData("dev", "../../etc", "dev")]
    [InlineData("dev", "", "dev")]
    [InlineData("dev", "tün0", "dev")]
    [InlineData("dev", "tun0\nreboot", "dev")]
    [InlineData("ifconfig_ipv6_netbits", "129", "ifconfig_ipv6_netbits")]
    [InlineData("ifconfig_ipv6_netbits", "-1", "ifconfig_ipv6_netbits")]
    [InlineData("ifconfig_ipv6_netbits", "", "ifconfig_ipv6_netbits")]
    [InlineData("ifconfig_ipv6_netbits", "64abc", "ifconfig_ipv6_netbits")]
    [InlineData("ifconfig_ipv6_local", "fd00::1%eth0", "ifconfig_ipv6_local")]
    [InlineData("ifconfig_ipv6_local", "10.0.0.1", "ifconfig_ipv6_local")]
    [InlineData("ifconfig_ipv6_local", "fd00:::1", "ifconfig_ipv6_local")]
    [InlineData("script_type", "client-connect", "script_type")]
    [InlineData("script_context", "reboot", "script_context")]
    public void A_hostile_value_is_an_error_naming_the_variable(string key, string value, string field)
    {
        var env = Subnet();
        env["script_context"] = "init";
        env[key] = value;

        var e = Assert.Throws<InputException>(() => Parse(env));

        Assert.Equal(field, e.Field);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void A_missing_script_type_without_a_command_says_how_to_run_it()
    {
        var env = Subnet();
        env.Remove("script_type");

        var e = Assert.Throws<InputException>(() => Parse(env));

        Assert.Equal("script_type", e.Field);
        Assert.Contains("tunnel-router up", e.Message);
    }

    [Fact]
    public void Up_without_any_address_is_an_error()
    {
        var e = Assert.Throws<InputException>(() => Parse(new() { ["script_type"] = "up", ["dev"] = "tun0" }));

        Assert.Equal("ifconfig_local", e.Field);
    }

    [Fact]
    public void IPv6_netbits_without_an_address_is_an_error()
    {
        var env = Subnet();
        env.Remove("ifconfig_ipv6_local");

        Assert.Equal("ifconfig_ipv6_local", Assert.Throws<InputException>(() => Parse(env)).Field);
    }
}

/// <summary>Issue 13: one family only, and a server's routed networks.</summary>
public class OpenVpnOneFamilySpecs
{
    static string[] Nets(OpenVpnTunnel t) => t.Networks.Select(n => Net.Format(n.Network) + (n.Routed ? " routed" : "")).ToArray();

    [Fact]
    public void An_IPv6_only_server_passes_an_empty_ifconfig_local_and_routes_IPv6_only()
    {
        var env = new Dictionary<string, string>
        {
            ["script_type"] = "up", ["dev"] = "tun0", ["ifconfig_local"] = "", ["ifconfig_netmask"] = "",
            ["ifconfig_ipv6_local"] = "fd00:4242::1", ["ifconfig_ipv6_netbits"] = "64",
        };

        var t = OpenVpnTunnel.Parse(env, ["tun0", "1500", "0", "", "", "init"], null);

        Assert.Equal(["fd00:4242::/64"], Nets(t));
        Assert.Null(t.Local4);
    }

    [Fact]
    public void An_empty_ifconfig_ipv6_local_beside_IPv4_routes_IPv4_only()
    {
        var env = new Dictionary<string, string>
        {
            ["script_type"] = "up", ["dev"] = "tun0", ["ifconfig_local"] = "10.8.0.1", ["ifconfig_netmask"] = "255.255.255.0",
            ["ifconfig_ipv6_local"] = "",
        };

        Assert.Equal(["10.8.0.0/24"], Nets(OpenVpnTunnel.Parse(env, [], null)));
    }

    [Fact]
    public void Both_families_empty_stays_an_error_naming_the_variables()
    {
        var env = new Dictionary<string, string> { ["script_type"] = "up", ["dev"] = "tun0", ["ifconfig_local"] = "", ["ifconfig_ipv6_local"] = "" };

        var e = Assert.Throws<InputException>(() => OpenVpnTunnel.Parse(env, [], null));

        Assert.Equal("ifconfig_local", e.Field);
        Assert.Contains("ifconfig_ipv6_local", e.Message);
    }

    [Fact]
    public void A_servers_routes_to_its_clients_networks_are_routed_networks_and_never_pools()
    {
        var env = new Dictionary<string, string>
        {
            ["script_type"] = "up", ["dev"] = "tun0", ["ifconfig_local"] = "10.8.0.1", ["ifconfig_netmask"] = "255.255.255.0",
            ["route_vpn_gateway"] = "10.8.0.2", ["route_network_1"] = "192.168.50.0", ["route_netmask_1"] = "255.255.255.0",
            ["route_gateway_1"] = "10.8.0.2",
            ["ifconfig_ipv6_local"] = "fd00:4242::1", ["ifconfig_ipv6_netbits"] = "64", ["route_ipv6_network_1"] = "fd00:50::/64",
        };

        var t = OpenVpnTunnel.Parse(env, [], null);

        Assert.Equal(["10.8.0.0/24", "fd00:4242::/64", "192.168.50.0/24 routed", "fd00:50::/64 routed"], Nets(t));
        Assert.DoesNotContain(t.Networks, n => n.Routed && n.Pool);
        var settings = new HookSettings(200, 148, PoolRules: true, 1000, RoutedNetworks: true);
        var state = HookPolicy.Desired(t, settings);
        Assert.Equal(4, state.Routes.Count);
        Assert.Equal(2, state.Rules.Count);
        Assert.Equal(2, HookPolicy.Desired(t, settings with { RoutedNetworks = false }).Routes.Count);
    }

    /// <summary>With DCO the kernel picks the client by the gateway of the route a packet takes (the upstream ovpn
    /// module; ovpn-dco-v2 by a lookup in main): the policy table's routed networks throw the lookup on to main, where
    /// OpenVPN keeps a route via each client's VPN address. The pool stays on the device; a record of it reads back.</summary>
    /// <summary>Issue 23, a user trial: a down with only dev set was "another tunnel's now" and left the pool rule. A down
    /// with addresses still tells two tunnels on one device apart.</summary>
    [Fact]
    public void A_down_with_only_dev_takes_down_the_devices_record_and_one_with_other_addresses_does_not()
    {
        var env = new Dictionary<string, string> { ["script_type"] = "up", ["dev"] = "tun0", ["ifconfig_local"] = "10.8.0.1", ["ifconfig_netmask"] = "255.255.255.0" };
        var settings = new HookSettings(200, 148, PoolRules: true, 1000);
        var up = OpenVpnTunnel.Parse(env, [], null);
        var record = TunnelRecord.Of(up, HookPolicy.Desired(up, settings), settings, env);

        var bare = OpenVpnTunnel.Parse(new Dictionary<string, string> { ["script_type"] = "down", ["dev"] = "tun0" }, [], null);
        var other = OpenVpnTunnel.Parse(new Dictionary<string, string>(env) { ["script_type"] = "down", ["ifconfig_local"] = "10.9.0.1" }, [], null);

        var scope = HookPolicy.Scope(bare, settings, KernelState.Empty, record);
        Assert.True(scope.Rule(Assert.Single(record.Rules)));
        Assert.True(scope.Route(Assert.Single(record.Routes)));
        Assert.False(HookPolicy.Scope(other, settings, KernelState.Empty, record).Rule(record.Rules[0]));
    }

    [Fact]
    public void With_DCO_a_servers_routed_networks_are_throw_routes_that_send_the_pools_lookup_on_to_OpenVPNs_per_client_routes()
    {
        var env = new Dictionary<string, string>
        {
            ["script_type"] = "up", ["dev"] = "tun0", ["ifconfig_local"] = "10.8.0.1", ["ifconfig_netmask"] = "255.255.255.0",
            ["route_vpn_gateway"] = "10.8.0.2", ["route_network_1"] = "192.168.50.0", ["route_netmask_1"] = "255.255.255.0",
            ["route_gateway_1"] = "10.8.0.2", ["route_metric_1"] = "200",
            ["ifconfig_ipv6_local"] = "fd00:4242::1", ["ifconfig_ipv6_netbits"] = "64", ["route_ipv6_network_1"] = "fd00:50::/64",
        };
        var t = OpenVpnTunnel.Parse(env, [], null);
        var settings = new HookSettings(200, 148, PoolRules: true, 1000, RoutedNetworks: true);

        var state = HookPolicy.Desired(t, settings, dco: true);

        Assert.Equal([
            "10.8.0.0/24 dev tun0 table 200 proto 148",
            "fd00:4242::/64 dev tun0 table 200 proto 148",
            "throw 192.168.50.0/24 table 200 proto 148",
            "throw fd00:50::/64 table 200 proto 148",
        ], state.Routes.Select(r => r.ToString()));
        Assert.Equal(2, state.Rules.Count);
        var record = TunnelRecord.Of(t, state, settings, env);
        Assert.Equal(record.Routes, TunnelRecord.Parse("tun0", record.Format())!.Routes);
        // Down after the device has gone cannot tell: without a record it owns both ways of routing the networks.
        var scope = HookPolicy.Scope(t with { Action = HookAction.Down }, settings, KernelState.Empty, record: null);
        Assert.All(state.Routes.Concat(HookPolicy.Desired(t, settings).Routes), r => Assert.True(scope.Route(r), r.ToString()));
    }

    [Fact]
    public void A_clients_pushed_routes_stay_out_even_as_routed_networks()
    {
        var env = new Dictionary<string, string>
        {
            ["script_type"] = "up", ["dev"] = "tun0", ["ifconfig_local"] = "10.8.0.6", ["ifconfig_netmask"] = "255.255.255.0",
            ["remote_1"] = "198.51.100.7", ["route_vpn_gateway"] = "10.8.0.1", ["route_network_1"] = "192.168.50.0",
            ["route_netmask_1"] = "255.255.255.0", ["route_gateway_1"] = "10.8.0.1", ["route_ipv6_network_1"] = "fd00:50::/64",
        };

        Assert.Equal(["10.8.0.0/24"], Nets(OpenVpnTunnel.Parse(env, [], null)));
    }
}
