using TunnelRouter.Tests.Support;
using Xunit;

namespace TunnelRouter.Tests.EndToEnd;

/// <summary>
/// Issue 16, finding 1, with real OpenVPN: a VPN server decides what it pushes to a client (routes, their
/// gateway, the client's addresses). A client that runs tunnel-router as its --up/--down hook with pool rules
/// on must not let those pushed routes become rules that outrank main: its own LAN and OpenVPN's own packets
/// to the server stay on main.
/// </summary>
public class PushedRoutesSpecs
{
    [Fact]
    public void A_server_pushing_the_two_halves_and_a_default_route_in_net30_does_not_steer_the_clients_rules()
    {
        using var lab = new OpenVpnLab(clients: 1, internet: false);
        lab.WritePolicy(poolRules: true);
        var server = lab.StartServer(new ServerSpec(Topology: "net30", Extra:
        [
            "push \"route 0.0.0.0 128.0.0.0\"", "push \"route 128.0.0.0 128.0.0.0\"", "push \"route 0.0.0.0 0.0.0.0\"",
        ]));
        server.WaitFor(OpenVpnProcess.Ready);
        var client = lab.Clients[0];
        var policy = Path.Combine(client.StateDir, "client.json");
        File.WriteAllText(policy, $$"""
            { "Iproute2Dir": "{{Path.Combine(client.StateDir, "iproute2")}}", "LockFile": "{{Path.Combine(client.StateDir, "lock")}}",
              "PoolRules": true }
            """);
        File.SetUnixFileMode(policy, (UnixFileMode)0b110_100_100);
        var bin = Prerequisites.Binary;
        // The client's own LAN, which the pushed halves cover.
        client.Ip("link", "add", "lan0", "type", "veth", "peer", "name", "lan0p");
        client.Ip("addr", "add", "172.16.5.1/24", "dev", "lan0");
        client.Ip("link", "set", "lan0", "up");
        client.Ip("link", "set", "lan0p", "up");
        var openvpn = lab.StartClient(0, extra:
        [
            "script-security 2", $"up \"{bin} --config {policy}\"", $"down \"{bin} --config {policy}\"",
        ]);
        openvpn.WaitFor(OpenVpnProcess.Ready);

        var rules = client.Ip("rule", "show");
        var table = client.Ip("route", "show", "table", "200");
        var lan = client.Ip("route", "get", "172.16.5.10", "from", "172.16.5.1");
        var toServer = client.Ip("route", "get", OpenVpnLab.ServerLan, "from", "192.168.178.10");

        // The hook ran (the peer's host route is in the policy table) ...
        Assert.Contains("proto 148", table);
        Assert.True(openvpn.Log.Contains("[#] ip -4 route add"), openvpn.Log);
        // ... but nothing the server pushed became a rule or a policy route.
        Assert.DoesNotContain("lookup 200", rules);
        Assert.DoesNotContain("0.0.0.0/1", table);
        Assert.DoesNotContain("128.0.0.0/1", table);
        Assert.DoesNotContain("default", table);
        Assert.Contains("dev lan0", lan);
        Assert.Contains("dev eth0", toServer);

        // What up installed is recorded for down, which removes exactly that and forgets it.
        var record = client.RecordPath("tun0");
        Assert.True(File.Exists(record));
        openvpn.Stop();
        Assert.False(File.Exists(record), openvpn.Log);
    }
}
