using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.EndToEnd.OpenVpnLab;

namespace TunnelRouter.Tests.EndToEnd;

/// <summary>Issue 13 on the server side, with real OpenVPN 2.6: the networks behind clients (iroute + route) and
/// a second instance with a table name of its own.</summary>
public class ServerInstancesSpecs
{
    [Theory]
    [InlineData("subnet")]
    [InlineData("net30")]
    public void With_pool_rules_another_client_reaches_the_network_behind_a_client_through_the_tunnel_not_the_NAT_router(string topology)
    {
        using var lab = new OpenVpnLab(clients: 2);
        lab.WritePolicy(poolRules: true);
        lab.Apply();
        var ccd = Path.Combine(lab.Dir, "ccd");
        Directory.CreateDirectory(ccd);
        File.WriteAllText(Path.Combine(ccd, Pki.Clients[0]), "iroute 192.168.50.0 255.255.255.0\n");
        var server = lab.StartServer(new ServerSpec(Topology: topology, Extra:
        [
            "route 192.168.50.0 255.255.255.0", $"client-config-dir {ccd}", "push \"route 192.168.50.0 255.255.255.0\"",
        ]));
        server.WaitFor(OpenVpnProcess.Ready);
        // The network behind client1: an address on a link of its own, and a counter of what arrives for it.
        var behind = lab.Clients[0];
        behind.Ip("link", "add", "lan50", "type", "veth", "peer", "name", "lan50p");
        behind.Ip("addr", "add", "192.168.50.1/24", "dev", "lan50");
        behind.Ip("link", "set", "lan50", "up");
        behind.Ip("link", "set", "lan50p", "up");
        behind.Exec("/usr/sbin/nft", ["-f", "-"], stdin: """
            table inet lab {
                chain seen {
                    type filter hook input priority 0;
                    iifname "tun0" ip daddr 192.168.50.1 icmp type echo-request counter
                }
            }
            """).ShouldSucceed();
        lab.Nat!.Exec("/usr/sbin/nft", ["-f", "-"], stdin: """
            table inet behind {
                chain seen {
                    type filter hook prerouting priority 0;
                    ip daddr 192.168.50.0/24 counter
                }
            }
            """).ShouldSucceed();
        lab.StartClient(0).WaitFor(OpenVpnProcess.Ready);
        lab.StartClient(1).WaitFor(OpenVpnProcess.Ready);

        var ping = Ping(lab.Clients[1], "192.168.50.1");

        Assert.True(ping.ExitCode == 0, $"{topology}: client2 cannot reach the network behind client1:\n{ping.Stdout}\n{server.Log}\n{lab.PolicyState()}");
        Assert.True(Counter(behind, "seen", 0) >= 1, "nothing arrived at client1 through its tunnel");
        var nat = lab.Nat.Exec("/usr/sbin/nft", ["list", "chain", "inet", "behind", "seen"]).ShouldSucceed().Stdout;
        Assert.Contains("counter packets 0 ", nat);
        // A route in the policy table through the tunnel, and never a pool rule for it.
        Assert.Contains("192.168.50.0/24 via", lab.Server.Ip("route", "show", "table", "200"));
        Assert.DoesNotContain("192.168.50.0", lab.Server.Ip("rule", "show"));
    }

    [Fact]
    public void The_READMEs_setenv_example_gives_a_second_instance_a_table_of_its_own_with_a_free_id()
    {
        using var lab = new OpenVpnLab(clients: 1);
        lab.WritePolicy(poolRules: true);
        lab.Apply();
        var first = lab.StartServer(new ServerSpec());
        first.WaitFor(OpenVpnProcess.Ready);
        var second = lab.StartServer(new ServerSpec(Device: "tun1", Port: 1195, Pool4: "10.20.20.0", Pool6: "fd00:4242:4242:4343::/64",
            Extra: ["setenv TUNNEL_ROUTER_TABLE vpn2"]));
        second.WaitFor(OpenVpnProcess.Ready);
        lab.StartClient(0, port: 1195).WaitFor(OpenVpnProcess.Ready);

        var names = File.ReadAllText(Path.Combine(lab.Dir, "iproute2", "rt_tables.d", "tunnel-router.conf"));
        var ping = Ping(lab.Clients[0], InternetV4);

        Assert.Matches(@"(?m)^200\s+vpn$", names);
        Assert.Matches(@"(?m)^201\s+vpn2$", names);
        Assert.Contains("10.20.20.0/24 dev tun1", lab.Server.Ip("route", "show", "table", "201"));
        Assert.Contains("from 10.20.20.0/24 lookup 201", lab.Server.Ip("rule", "show"));
        // vpn2 has no default route (the policy gives vpn one): the client reaches nothing beyond the server.
        Assert.NotEqual(0, ping.ExitCode);
    }
}
