using System.Text.RegularExpressions;
using TunnelRouter.Tests.EndToEnd;
using TunnelRouter.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace TunnelRouter.Tests.Guest;

/// <summary>The policy and certificates for tests/guest/dco.sh, run once in the QEMU guest with ovpn-dco-v2.</summary>
public sealed class DcoGuest : IDisposable
{
    public DcoGuest()
    {
        Work = Directory.CreateTempSubdirectory("tunnel-router-dco-").FullName;
        // The server's policy as in the OpenVPN lab (seed 003): pool rules from the hook, the vpn table's default
        // route via the NAT router from apply; RoutedNetworks is on with PoolRules.
        File.WriteAllText(Path.Combine(Work, "policy.json"), """
            {
              "Iproute2Dir": "/run/srv-iproute2",
              "LockFile": "/run/srv.lock",
              "Routes": [ "default via 192.168.1.1 table vpn", "default via fd00:1::1 table vpn" ],
              "PoolRules": true
            }
            """);
        var pki = Directory.CreateDirectory(Path.Combine(Work, "pki")).FullName;
        File.Copy(Pki.Instance.Ca, Path.Combine(pki, "ca.crt"));
        foreach (var name in (string[])["server", .. Pki.Clients])
        {
            File.Copy(Pki.Instance.Cert(name), Path.Combine(pki, name + ".crt"));
            File.Copy(Pki.Instance.Key(name), Path.Combine(pki, name + ".key"));
        }
        Run = GuestKernel.RunWithDco(Path.Combine(GuestKernel.RepoRoot, "tests", "guest", "dco.sh"), Work);
    }

    public string Work { get; }
    public GuestRun Run { get; }

    public void Dispose()
    {
        try { Directory.Delete(Work, recursive: true); } catch (IOException) { }
    }
}

/// <summary>
/// Issue 13's DCO case, for real: OpenVPN 2.6 with data channel offload (ovpn-dco-v2 in Debian's 6.1 kernel, QEMU),
/// tunnel-router as the server's --up/--down hook with PoolRules, a network behind client2 (iroute + the server's
/// route). OpenVPN puts the iroute in main via client2's VPN address, metric 100; the hook's policy table holds the
/// pool on the device and the routed network as a throw route (on to that per-client route); a pool client reaches the
/// network behind client2 (counted there, not at client1 and not at the NAT router), and client-to-client goes through
/// the kernel.
/// </summary>
[Collection("guest-dco")]
public class DcoGuestSpecs(DcoGuest guest, ITestOutputHelper output) : IClassFixture<DcoGuest>
{
    readonly GuestRun _run = guest.Run;

    /// <summary>The lines a "routes KEY ..." step of the scenario reported.</summary>
    IReadOnlyList<string> Routes(string key) => _run.All(key);

    [Fact]
    public void The_module_loads_and_OpenVPN_runs_its_server_with_DCO()
    {
        LinkJson.ScenarioRanToTheEnd(_run, output, GuestKernel.DcoWhy);
        foreach (var key in (string[])["server.ready", "client1.ready", "client2.ready"]) output.WriteLine($"{key} (guest uptime) {string.Join(" ", _run.All(key))}");
        foreach (var line in _run.Console.Where(l => l.StartsWith("@@ ", StringComparison.Ordinal))) output.WriteLine(line);
        Assert.Equal(0, _run.Rc("modprobe"));
        Assert.NotEqual("none", _run.One("module"));
        Assert.StartsWith("0 ", _run.One("server.ready"));
        Assert.Contains(_run.All("server.dco"), l => l.Contains("DCO device tun0 opened", StringComparison.Ordinal));
        Assert.Contains("ovpn-dco", _run.One("link.tun0"));
        Assert.StartsWith("0 ", _run.One("client1.ready"));
        Assert.StartsWith("0 ", _run.One("client2.ready"));
        Assert.Equal("10.10.10.2/24", _run.One("client1.addr"));
        Assert.Equal("10.10.10.20/24", _run.One("client2.addr"));
        Assert.Equal("fd00:4242::1000/64", _run.One("client1.addr6"));
        Assert.Equal("fd00:4242::20/64", _run.One("client2.addr6"));
    }

    [Fact]
    public void OpenVPN_puts_the_iroute_in_main_via_the_clients_VPN_address_with_metric_100_and_its_own_route_with_200()
    {
        var main = Routes("main");
        Assert.Contains(main, l => Regex.IsMatch(l, @"^192\.168\.50\.0/24 via 10\.10\.10\.20 dev tun0 .*metric 100"));
        Assert.Contains(main, l => Regex.IsMatch(l, @"^192\.168\.50\.0/24 via 10\.10\.10\.2 dev tun0 .*metric 200"));
        // IPv6: the iroute-ipv6 via client2's address; the server's route-ipv6 line on the device only.
        var main6 = Routes("main6");
        Assert.Contains(main6, l => Regex.IsMatch(l, @"^fd00:50::/64 via fd00:4242::20 dev tun0 .*metric 100"));
        Assert.Contains(main6, l => Regex.IsMatch(l, @"^fd00:50::/64 dev tun0 .*metric 200"));
    }

    [Fact]
    public void The_hook_puts_the_pool_on_the_device_and_the_routed_network_as_a_throw_route_in_the_policy_table_and_a_pool_rule()
    {
        Assert.Equal(0, _run.Rc("apply"));
        var policy = Routes("policy");
        Assert.Contains(policy, l => l.StartsWith("10.10.10.0/24 dev tun0 proto 148", StringComparison.Ordinal));
        Assert.Contains(policy, l => l.StartsWith("throw 192.168.50.0/24 proto 148", StringComparison.Ordinal));
        Assert.Contains(policy, l => l.StartsWith("default via 192.168.1.1 dev lan proto 147", StringComparison.Ordinal));
        Assert.Contains(_run.All("rule"), l => l.Contains("from 10.10.10.0/24 lookup 200 proto 148", StringComparison.Ordinal));
        var policy6 = Routes("policy6");
        Assert.Contains(policy6, l => l.StartsWith("fd00:4242::/64 dev tun0 proto 148", StringComparison.Ordinal));
        // The kernel shows an IPv6 throw route on lo.
        Assert.Contains(policy6, l => Regex.IsMatch(l, @"^throw fd00:50::/64 (dev lo )?proto 148"));
        Assert.Contains(policy6, l => l.StartsWith("default via fd00:1::1 dev lan proto 147", StringComparison.Ordinal));
        Assert.Contains(_run.All("rule6"), l => l.Contains("from fd00:4242::/64 lookup 200 proto 148", StringComparison.Ordinal));
    }

    [Fact]
    public void A_pool_client_reaches_the_network_behind_another_client_through_the_tunnel_not_the_NAT_router()
    {
        Assert.Equal("0", _run.One("ping.behind"));
        Assert.True(int.Parse(_run.One("count.behind")) >= 3, $"the host behind client2 counted {_run.One("count.behind")} echo requests");
        Assert.Equal("0", _run.One("count.client1"));
        Assert.Equal("0", _run.One("count.nat"));
        Assert.Equal("0", _run.One("ping6.behind"));
        Assert.True(int.Parse(_run.One("count6.behind")) >= 3, $"the host behind client2 counted {_run.One("count6.behind")} IPv6 echo requests");
        Assert.Equal("0", _run.One("count6.client1"));
        Assert.Equal("0", _run.One("count6.nat"));
    }

    /// <summary>The pool's packet for the network behind client2 takes OpenVPN's route via client2's VPN address (the
    /// policy table's throw route sends the lookup on to main), the route whose gateway the upstream ovpn module picks
    /// the peer by; ovpn-dco-v2 looks up the destination alone, which main answers the same way.</summary>
    [Fact]
    public void The_pools_packet_takes_OpenVPNs_route_via_the_clients_VPN_address_as_the_kernel_needs()
    {
        Assert.StartsWith("192.168.50.10 from 10.10.10.2 via 10.10.10.20 dev tun0", _run.One("route.get"));
        Assert.StartsWith("192.168.50.10 via 10.10.10.20 dev tun0", _run.One("route.get.dco"));
        Assert.StartsWith("fd00:50::10 from fd00:4242::1000 via fd00:4242::20 dev tun0", _run.One("route6.get"));
        Assert.Contains("via fd00:4242::20 dev tun0", _run.One("route6.get.dco"));
    }

    [Fact]
    public void Client_to_client_goes_through_the_kernel()
    {
        Assert.Equal("0", _run.One("ping.c2c"));
        Assert.True(int.Parse(_run.One("count.c2c")) >= 2, $"client2 counted {_run.One("count.c2c")} echo requests from client1");
    }

    [Fact]
    public void Apply_and_doctor_leave_OpenVPNs_routes_in_main_and_the_policy_table_keeps_its_route()
    {
        Assert.Equal(0, _run.Rc("apply.again"));
        Assert.Equal(0, _run.Rc("doctor"));
        Assert.Equal(0, _run.Rc("plan"));
        Assert.Equal(Routes("main"), Routes("main.after"));
        Assert.Equal(Routes("policy"), Routes("policy.after"));
        Assert.Equal(Routes("main6"), Routes("main6.after"));
        Assert.Equal(Routes("policy6"), Routes("policy6.after"));
    }

    [Fact]
    public void When_the_client_goes_its_iroute_leaves_main_the_policy_table_keeps_the_route_and_the_pool_never_leaks_to_the_NAT_router()
    {
        Assert.DoesNotContain(Routes("main.gone"), l => l.Contains("metric 100", StringComparison.Ordinal));
        Assert.Contains(Routes("policy.gone"), l => l.StartsWith("throw 192.168.50.0/24 proto 148", StringComparison.Ordinal));
        Assert.NotEqual("0", _run.One("ping.gone"));
        Assert.Equal("0", _run.One("count.nat.gone"));
    }

    /// <summary>OpenVPN's own behaviour with DCO, not tunnel-router's: the server's <c>route</c> line stays in main
    /// (metric 200) via the gateway OpenVPN gives it, the pool's first address, and ovpn-dco picks the peer from main,
    /// so while client2 is away its network's packets go to client1, which holds that address. Without DCO OpenVPN
    /// drops them (no client has the iroute).</summary>
    [Fact]
    public void Without_its_client_the_networks_packets_go_to_the_client_holding_OpenVPNs_route_gateway()
    {
        Assert.Equal(["192.168.50.0/24 via 10.10.10.2 dev tun0 metric 200 "], Routes("main.gone"));
        Assert.Equal("1", _run.One("count.client1.gone"));
        // IPv6 has no such gateway (route-ipv6 goes on the device only): the packet finds no peer and is dropped.
        Assert.Single(Routes("main6.gone"), l => Regex.IsMatch(l, @"^fd00:50::/64 dev tun0 .*metric 200"));
        Assert.NotEqual("0", _run.One("ping6.gone"));
        Assert.Equal("0", _run.One("count6.client1.gone"));
        Assert.Equal("0", _run.One("count6.nat.gone"));
    }

    [Fact]
    public void The_servers_down_hook_removes_what_its_up_made()
    {
        Assert.Equal("0 0 0 0", _run.One("left"));
        // Routes on the device leave with it; the throw routes are on no device, and down deletes them.
        Assert.Contains("[#] ip -4 route del throw 192.168.50.0/24 table vpn proto tunnel-router-hook", _run.All("server.hook"));
        Assert.Contains("[#] ip -6 route del throw fd00:50::/64 table vpn proto tunnel-router-hook", _run.All("server.hook"));
    }
}
