using TunnelRouter.Core;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>Issue 21, invariant 5: at OpenVPN's soft restart (up with restart, persist-tun + up-restart) the variables
/// OpenVPN no longer sets are taken from the tunnel's record.</summary>
public class SoftRestartSpecs
{
    static readonly Dictionary<string, string> AtUp = new()
    {
        ["script_type"] = "up", ["script_context"] = "init", ["dev"] = "tun2", ["ifconfig_local"] = "10.8.0.2",
        ["ifconfig_netmask"] = "255.255.255.0", ["route_vpn_gateway"] = "10.8.0.1", ["common_name"] = "client",
    };

    static TunnelRecord Record() => TunnelRecord.Of(OpenVpnTunnel.Parse(AtUp, [], null), KernelState.Empty, environment: AtUp);

    [Fact]
    public void A_variable_openvpn_leaves_unset_at_a_restart_takes_the_value_of_the_tunnels_last_up()
    {
        var atRestart = new Dictionary<string, string>(AtUp) { ["script_context"] = "restart" };
        atRestart.Remove("route_vpn_gateway");

        var env = Record().AtRestart(atRestart, out var filled);

        Assert.Equal("10.8.0.1", env["route_vpn_gateway"]);
        Assert.Equal(["route_vpn_gateway"], filled);
        Assert.Equal("restart", env["script_context"]);
    }

    [Fact]
    public void What_openvpn_does_set_at_a_restart_wins_and_an_empty_value_counts_as_unset()
    {
        var atRestart = new Dictionary<string, string>(AtUp) { ["route_vpn_gateway"] = "10.8.0.9", ["ifconfig_netmask"] = "" };

        var env = Record().AtRestart(atRestart, out var filled);

        Assert.Equal("10.8.0.9", env["route_vpn_gateway"]);
        Assert.Equal("255.255.255.0", env["ifconfig_netmask"]);
        Assert.Equal(["ifconfig_netmask"], filled);
    }

    [Fact]
    public void Only_the_recorded_variables_are_taken_never_what_a_client_sends()
    {
        var env = Record().AtRestart(new Dictionary<string, string> { ["dev"] = "tun2" }, out var filled);

        Assert.False(env.ContainsKey("common_name"));
        Assert.DoesNotContain("common_name", filled);
    }
}
