using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.EndToEnd.OpenVpnLab;

namespace TunnelRouter.Tests.EndToEnd;

/// <summary>
/// A real OpenVPN server runs the published binary as --up/--down; real clients connect over UDP between
/// namespaces. The same facts hold for both IPv4 topologies a server can use, with IPv6 (server-ipv6) on.
/// </summary>
public abstract class OpenVpnTopologySpecs
{
    protected abstract string Topology { get; }

    [Fact]
    public void Clients_reach_the_internet_host_through_the_NAT_router_and_reach_each_other_and_the_tun_gateway()
    {
        using var lab = new OpenVpnLab(clients: 2);
        lab.WritePolicy();
        lab.Apply();
        var server = lab.StartServer(new ServerSpec(Topology: Topology));
        server.WaitFor(OpenVpnProcess.Ready);
        lab.StartClient(0).WaitFor(OpenVpnProcess.Ready);
        lab.StartClient(1).WaitFor(OpenVpnProcess.Ready);
        var client1 = lab.Clients[0];

        var internet4 = Ping(client1, InternetV4);
        var internet6 = Ping(client1, InternetV6);
        var gateway4 = Ping(client1, "10.10.10.1");
        var gateway6 = Ping(client1, "fd00:4242:4242:4242::1");
        var other4 = Ping(client1, lab.TunAddress(1, "-4"));
        var other6 = Ping(client1, lab.TunAddress(1, "-6"));

        foreach (var (what, ping) in new[] { ("internet v4", internet4), ("internet v6", internet6), ("gateway v4", gateway4),
                     ("gateway v6", gateway6), ("client2 v4", other4), ("client2 v6", other6) })
            Assert.True(ping.ExitCode == 0, $"{Topology}: client1 cannot ping {what}:\n{ping.Stdout}{ping.Stderr}\n{server.Log}\n{lab.Server.Dump()}");
        // Forwarded by the NAT router, and seen by the internet host from the NAT router's address only.
        Assert.True(Counter(lab.Nat!, "counting", 0) >= 1, "no IPv4 packet from the pool crossed the NAT router");
        Assert.True(Counter(lab.Nat!, "counting", 1) >= 1, "no IPv6 packet from the pool crossed the NAT router");
        Assert.True(Counter(lab.Internet!, "seen", 0) >= 1, "the internet host saw no IPv4 echo request from the NAT router");
        Assert.True(Counter(lab.Internet!, "seen", 1) >= 1, "the internet host saw no IPv6 echo request from the NAT router");
        Assert.Equal(0, Counter(lab.Internet!, "seen", 2));
        Assert.Equal(0, Counter(lab.Internet!, "seen", 3));
    }

    [Fact]
    public void Stopping_the_server_removes_what_the_hook_added_and_leaves_foreign_routes_and_rules()
    {
        using var lab = new OpenVpnLab(clients: 0);
        lab.WritePolicy();
        lab.Apply();
        var s = lab.Server;
        // Foreign objects next to ours: same table, and rules at the hook's own priority.
        s.Ip("route", "add", "203.0.113.0/24", "via", "192.168.1.1", "table", "200");
        s.Ip("-6", "route", "add", "2001:db8:ff::/64", "via", "fd00:1010:1010:1010::1", "table", "200");
        s.Ip("rule", "add", "from", "10.99.0.0/16", "lookup", "200", "pref", "1000");
        s.Ip("-6", "rule", "add", "from", "fd00:99::/64", "lookup", "200", "pref", "1000");
        var foreign = Foreign(lab);
        var server = lab.StartServer(new ServerSpec(Topology: Topology));
        server.WaitFor(OpenVpnProcess.Ready);
        var whileUp = lab.HookObjects();

        server.Stop();

        Assert.Equal(ExpectedHookObjects, whileUp.Order(StringComparer.Ordinal));
        Assert.Empty(lab.HookObjects());
        Assert.Equal(foreign, Foreign(lab));
        // apply's routes are the policy's, not the tunnel's: they stay until flush, which leaves the foreign ones.
        Assert.Equal(2, lab.OwnedObjects().Length);
        lab.Tool("flush");
        Assert.Empty(lab.OwnedObjects());
        Assert.Equal(foreign, Foreign(lab));
    }

    /// <summary>What the hook owns while the tunnel is up, sorted, as ip prints it (routes selected by "proto 148" show no proto).</summary>
    protected abstract string[] ExpectedHookObjects { get; }

    static string Foreign(OpenVpnLab lab) => string.Join("\n",
        lab.Server.Ip("-4", "route", "show", "table", "200", "proto", "boot"),
        lab.Server.Ip("-6", "route", "show", "table", "200", "proto", "boot"),
        lab.Server.Ip("-4", "rule", "show", "pref", "1000"), lab.Server.Ip("-6", "rule", "show", "pref", "1000"));
}

public class SubnetTopologySpecs : OpenVpnTopologySpecs
{
    protected override string Topology => "subnet";

    protected override string[] ExpectedHookObjects =>
    [
        "10.10.10.0/24 dev tun0 table 200 scope link",
        "1000:\tfrom 10.10.10.0/24 lookup 200 proto 148",
        "1000:\tfrom fd00:4242:4242:4242::/64 lookup 200 proto 148",
        "fd00:4242:4242:4242::/64 dev tun0 table 200 metric 1024 pref medium",
    ];
}

public class Net30TopologySpecs : OpenVpnTopologySpecs
{
    protected override string Topology => "net30";

    protected override string[] ExpectedHookObjects =>
    [
        "10.10.10.0/24 via 10.10.10.2 dev tun0 table 200 onlink",
        "10.10.10.2 dev tun0 table 200 scope link",
        "1000:\tfrom 10.10.10.0/24 lookup 200 proto 148",
        "1000:\tfrom fd00:4242:4242:4242::/64 lookup 200 proto 148",
        "fd00:4242:4242:4242::/64 dev tun0 table 200 metric 1024 pref medium",
    ];
}
