using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.EndToEnd.ClientLab;

namespace TunnelRouter.Tests.EndToEnd;

/// <summary>
/// Issue 13 with real OpenVPN 2.6: the client side of the how-tos. Seed 000's router runs an OpenVPN client with
/// an Instances entry whose routes go via the gateway the server pushes; packets are counted where they arrive,
/// on the server's tunnel side or on its plain side.
/// </summary>
public class ClientInstancesSpecs
{
    [Theory]
    [InlineData("subnet")]
    [InlineData("net30")]
    public void Seed_000_LAN_packets_to_the_server_arrive_through_the_tunnel_and_the_routers_own_stay_on_main(string topology)
    {
        using var lab = new ClientLab();
        lab.WritePolicy(Seed000);
        lab.Tool("apply").ShouldSucceed();
        lab.StartServer(topology).WaitFor(OpenVpnProcess.Ready);
        var client = lab.StartClient();
        client.WaitFor(OpenVpnProcess.Ready);

        lab.Flows(client, topology);
        var own = lab.Router.Exec("/usr/bin/ping", ["-n", "-c", "1", "-w", "5", Server4]);

        Assert.Equal(0, own.ExitCode);
        Assert.Equal(1, lab.Seen(4));
        // The gateway is the one the server pushed, and the hook owns the route.
        var gateway = topology == "net30" ? "10.8.0.5" : "10.8.0.1";
        Assert.Contains($"default via {gateway} dev tun2 proto 148", lab.Nyet());
        // The client's configuration has allow-recursive-routing: the hook has nothing to warn about.
        Assert.DoesNotContain("own VPN server", client.Log);
    }

    /// <summary>The kill switch as FailClosed, and (net30) as the plain unreachable routes it replaced, which keep working.</summary>
    [Theory]
    [InlineData("subnet", true)]
    [InlineData("net30", false)]
    public void The_routes_follow_the_servers_pool_with_no_apply_fail_closed_when_the_client_dies_and_flow_again_on_reconnect(string topology,
        bool failClosed)
    {
        using var lab = new ClientLab();
        lab.WritePolicy(Seed000, failClosed);
        lab.Tool("apply").ShouldSucceed();
        var server = lab.StartServer(topology, pool4: "10.8.0.0", run: 0);
        server.WaitFor(OpenVpnProcess.Ready);
        var first = lab.StartClient(run: 0);
        first.WaitFor(OpenVpnProcess.Ready);
        lab.Flows(first, "first pool");
        first.Stop();
        server.Stop();

        // The server's pool changes: the next up resolves the new gateway, no apply in between.
        var moved = lab.StartServer(topology, pool4: "10.9.0.0", run: 1);
        moved.WaitFor(OpenVpnProcess.Ready);
        var second = lab.StartClient(run: 1);
        second.WaitFor(OpenVpnProcess.Ready);
        Assert.Contains($"default via {(topology == "net30" ? "10.9.0.5" : "10.9.0.1")} dev tun2", lab.Nyet());
        lab.Flows(second, "second pool");

        lab.KillSwitchHolds();
        // SIGKILL: no down hook; the device and its routes go, the rules and apply's unreachable routes stay.
        second.Signal(OpenVpnProcess.SIGKILL);
        Assert.True(second.WaitForExit(10_000), "the client did not die on SIGKILL");
        Assert.DoesNotContain("tun2", lab.Nyet());
        var leak4 = lab.PingFromLan(Server4);
        var leak6 = lab.PingFromLan(Server6);
        Assert.NotEqual(0, leak4.ExitCode);
        Assert.NotEqual(0, leak6.ExitCode);
        Assert.Equal(0, lab.Seen(2));
        Assert.Equal(0, lab.Seen(3));

        var third = lab.StartClient(run: 2);
        third.WaitFor(OpenVpnProcess.Ready);
        lab.Flows(third, "after reconnecting");
        third.Stop();
        // Down removed what up installed: the rules and the routes of nyet are apply's again.
        Assert.DoesNotContain("proto 148", lab.Nyet());
        Assert.DoesNotContain("lookup nyet proto 148", lab.Router.Ip("rule", "show"));
    }

    [Theory]
    [InlineData("-6")]
    [InlineData("-4")]
    public void A_one_family_server_and_its_client_route_that_family_and_skip_the_other_line_with_a_note(string family)
    {
        var v6 = family == "-6";
        using var lab = new ClientLab();
        lab.WritePolicy(Seed000);
        lab.Tool("apply").ShouldSucceed();
        // The server runs tunnel-router too, as an eduVPN server would: IPv6-only, its up gets an empty ifconfig_local.
        var serverPolicy = Path.Combine(lab.Server.StateDir, "server.json");
        File.WriteAllText(serverPolicy, $$"""
            { "Iproute2Dir": "{{Path.Combine(lab.Server.StateDir, "iproute2")}}", "LockFile": "{{Path.Combine(lab.Server.StateDir, "lock")}}", "PoolRules": true }
            """);
        File.SetUnixFileMode(serverPolicy, (UnixFileMode)0b110_100_100);
        var server = lab.StartServer(pool4: v6 ? null : "10.8.0.0", pool6: v6 ? "fd00:8::/64" : null, extra:
        [
            "script-security 2", $"up \"{Prerequisites.Binary} --config {serverPolicy}\"", $"down \"{Prerequisites.Binary} --config {serverPolicy}\"",
        ]);
        server.WaitFor(OpenVpnProcess.Ready);
        var client = lab.StartClient();
        client.WaitFor(OpenVpnProcess.Ready);

        var ping = lab.PingFromLan(v6 ? Server6 : Server4);

        Assert.True(ping.ExitCode == 0, $"{ping.Stdout}\n{client.Log}\n{server.Log}");
        Assert.True(lab.Seen(v6 ? 1 : 0) >= 1, "nothing arrived on the server's tunnel side");
        Assert.Equal(0, lab.Seen(v6 ? 3 : 2));
        Assert.Contains($"skipped, {(v6 ? "route_vpn_gateway" : "ifconfig_ipv6_remote")} is", client.Log);
        var pool = v6 ? "fd00:8::/64" : "10.8.0.0/24";
        Assert.Contains($"{pool} dev tun0 proto 148", lab.Server.Ip(family, "route", "show", "table", "200"));
        Assert.Contains($"from {pool} lookup 200", lab.Server.Ip(family, "rule", "show"));
        Assert.DoesNotContain("proto 148", lab.Server.Ip(v6 ? "-4" : "-6", "rule", "show"));
    }

    [Fact]
    public void Plan_and_doctor_show_the_resolved_lines_and_say_the_server_is_routed_into_its_own_tunnel()
    {
        using var lab = new ClientLab();
        lab.WritePolicy(Seed000);
        lab.Tool("apply").ShouldSucceed();
        var before = lab.Tool("plan");
        lab.StartServer().WaitFor(OpenVpnProcess.Ready);
        var client = lab.StartClient(allowRecursiveRouting: false);
        client.WaitFor(OpenVpnProcess.Ready);

        var plan = lab.Tool("plan");
        var doctor = lab.Tool("doctor");
        var explain = lab.Tool("explain", "--from", Lan4, "--to", Server4, "--iif", "lan0");

        Assert.Contains("Instances[0] (tun2, no tunnel up): route optional default via ${route_vpn_gateway} dev ${dev} table nyet", before.Stderr);
        Assert.Contains("Instances[0] (tun2, up): route default via 10.8.0.1 dev tun2 table nyet", plan.Stderr);
        Assert.Contains("Instances[0] (steady, installed by apply): rule from 192.168.10.0/24 to 198.51.100.7 lookup nyet pref 1100", plan.Stderr);
        Assert.Contains("allow-recursive-routing", plan.Stderr);
        Assert.Contains("recursive-routing: traffic to 198.51.100.7, tun2's own VPN server", doctor.Stdout);
        Assert.Contains("allow-recursive-routing", explain.Stdout);
        Assert.Contains("tun2's own VPN server", client.Log);
        // What they warn of: without the option OpenVPN drops the LAN's packets for its server, on either side.
        Assert.NotEqual(0, lab.PingFromLan(Server4).ExitCode);
        Assert.Equal(0, lab.Seen(0));
        Assert.Equal(0, lab.Seen(2));
    }
}
