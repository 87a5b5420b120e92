using TunnelRouter.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace TunnelRouter.Tests.EndToEnd;

/// <summary>
/// Issue 21's leak matrix, server side (seed 003, <see cref="ServerLeakLab"/>): an eduVPN-style OpenVPN 2.6 server with
/// <c>PoolRules</c>, the vpn table's default routes via the NAT router and its kill switch (<c>FailClosed: ["vpn"]</c>),
/// and the server's own uplink (its main table's default routes) leading elsewhere. Both clients ping the internet host
/// in both families, every 20 ms, while the event happens and in a burst after it: what the internet host counts from
/// the NAT router came through the tunnel's path; what the server's own uplink gateway counts for the internet host
/// left in clear. Nothing may ever leave in clear; where the tunnel's path is up after the event, the burst must arrive by it.
/// </summary>
public class LeakMatrixServerSpecs(ITestOutputHelper output)
{
    static ServerLeakLab Connected(bool poolRules = true, bool watch = false)
    {
        var lab = new ServerLeakLab();
        try
        {
            lab.WritePolicy(poolRules);
            lab.Unit(ShippedUnit.Start).ShouldSucceed();
            if (watch) lab.Watch();
            lab.Connect();
            return lab;
        }
        catch
        {
            lab.Dispose();
            throw;
        }
    }

    LeakRow Row(ServerLeakLab lab, int order, string name) => new(lab, output, order, "server", name);

    [Fact]
    public void Clients_connected_after_apply_reach_the_internet_through_the_NAT_router_and_nothing_leaves_in_clear()
    {
        using var lab = Connected();
        var row = Row(lab, 1, "connect (apply, then the server and two clients)");

        row.During(() => Thread.Sleep(1_000));

        row.Check(tunnel4: true, tunnel6: true);
    }

    /// <summary>The path through the NAT router is the policy's own route, which a stop removes by design (README, "What
    /// flush removes"): between stop and start the clients' packets must be refused, not sent in clear.</summary>
    [Fact]
    public void The_units_stop_sends_nothing_in_clear()
    {
        using var lab = Connected();
        var row = Row(lab, 2, $"unit stop (ExecStop: {string.Join(' ', ShippedUnit.Stop)})");

        row.During(() => row.Note("stop", lab.Unit(ShippedUnit.Stop)), tailMs: 1_000);

        row.Check(tunnel4: false, tunnel6: false);
    }

    [Fact]
    public void The_units_restart_sends_nothing_in_clear_and_the_clients_reach_the_internet_after_it()
    {
        using var lab = Connected();
        var row = Row(lab, 3, "unit restart (stop, then start)");

        row.DuringUnitRestart();

        row.Check(tunnel4: true, tunnel6: true);
    }

    [Fact]
    public void The_units_restart_on_a_policy_with_a_syntax_error_sends_nothing_in_clear_and_the_clients_keep_reaching_the_internet()
    {
        using var lab = Connected();
        var text = File.ReadAllText(lab.Lab.PolicyPath);
        var broken = text.Replace("\"vpn\": 200 },", "\"vpn\": 200 }");
        Assert.NotEqual(text, broken);
        File.WriteAllText(lab.Lab.PolicyPath, broken);
        var row = Row(lab, 4, "unit restart with a syntax error in the policy");

        row.DuringUnitRestart();

        row.Check(tunnel4: true, tunnel6: true);
    }

    [Fact]
    public void Switching_to_PoolRules_with_the_tunnels_running_sends_nothing_in_clear_and_the_clients_keep_reaching_the_internet()
    {
        using var lab = Connected(poolRules: false);
        var row = Row(lab, 5, "policy change on running tunnels (static Rules to PoolRules: true, apply)");

        row.During(() =>
        {
            lab.WritePolicy(poolRules: true);
            row.Note("apply", lab.Unit(ShippedUnit.Start));
        }, tailMs: 1_000);

        row.Check(tunnel4: true, tunnel6: true);
    }

    /// <summary>Invariant 8: the hook's Table changed (vpn to vpn2, both fail closed) while the server runs: apply moves the
    /// live tunnel's networks and pool rules to the new table.</summary>
    [Fact]
    public void Changing_the_hook_Table_with_the_tunnels_running_sends_nothing_in_clear_and_the_clients_keep_reaching_the_internet()
    {
        using var lab = Connected();
        var row = Row(lab, 10, "policy change on running tunnels (Table vpn to vpn2, apply)");

        row.During(() =>
        {
            lab.WritePolicy(hookTable: "vpn2");
            row.Note("apply", lab.Unit(ShippedUnit.Start));
        }, tailMs: 1_000);
        row.Note("pool rules after it: " + string.Join(" ", lab.Lab.Server.Ip("-4", "rule", "show").Split('\n').Where(l => l.Contains("10.10.10.0/24"))));

        row.Check(tunnel4: true, tunnel6: true);
        Assert.Contains("lookup 201", lab.Lab.Server.Ip("-4", "rule", "show"));
    }

    [Fact]
    public void OpenVPN_started_before_the_units_apply_sends_nothing_in_clear_and_the_clients_reach_the_internet_after_it()
    {
        using var lab = new ServerLeakLab();
        lab.WritePolicy();
        lab.Connect();
        var row = Row(lab, 6, "OpenVPN started before the unit's apply");

        row.During(() =>
        {
            Thread.Sleep(1_000);
            row.Note("apply", lab.Unit(ShippedUnit.Start));
        });

        row.Check(tunnel4: true, tunnel6: true);
    }

    /// <summary>eth1 (towards the NAT router) down for 0.3 s: IPv6 takes the address with the link, so the IPv6 gateway is
    /// unreachable until someone adds it again; IPv4 keeps its address and its gateway. watch runs, and the NetworkManager
    /// dispatcher's apply runs when the link is up again.</summary>
    [Fact]
    public void A_link_flap_that_takes_the_IPv6_gateway_sends_nothing_in_clear_and_IPv4_reaches_the_internet_after_it()
    {
        using var lab = Connected(watch: true);
        var row = Row(lab, 7, "link flap taking one family's gateway (IPv6 address gone; watch + dispatcher apply)");

        row.During(() =>
        {
            lab.Lab.Server.Ip("link", "set", "eth1", "down");
            Thread.Sleep(300);
            lab.Lab.Server.Ip("link", "set", "eth1", "up");
            Thread.Sleep(1_500);
            row.Note("apply", lab.Unit(ShippedUnit.Start));
        }, tailMs: 1_000);
        row.Note(lab.Last<WatchProcess>());

        row.Check(tunnel4: true, tunnel6: false);
    }

    [Fact]
    public void A_second_instance_on_its_own_table_sends_nothing_in_clear()
    {
        using var lab = new ServerLeakLab();
        lab.WritePolicy();
        lab.Unit(ShippedUnit.Start).ShouldSucceed();
        lab.Lab.StartServer(new ServerSpec(Extra: lab.HookEnvironment)).WaitFor(OpenVpnProcess.Ready);
        lab.Lab.StartServer(new ServerSpec(Device: "tun1", Port: 1195, Pool4: "10.10.11.0", Pool6: "fd00:4242:4242:4243::/64",
            Extra: [.. lab.HookEnvironment, "setenv TUNNEL_ROUTER_TABLE vpn2"])).WaitFor(OpenVpnProcess.Ready);
        lab.Lab.StartClient(0).WaitFor(OpenVpnProcess.Ready);
        lab.Lab.StartClient(1, port: 1195).WaitFor(OpenVpnProcess.Ready);
        var row = Row(lab, 8, "second instance (setenv TUNNEL_ROUTER_TABLE vpn2)");

        row.During(() => Thread.Sleep(1_000));

        row.Check(tunnel4: true, tunnel6: true);
    }

    [Fact]
    public void A_pool_rule_deleted_by_hand_under_a_10_ms_ping_and_watch_sends_nothing_in_clear()
    {
        using var lab = Connected(watch: true);
        var row = Row(lab, 9, "pool rule deleted by hand under a 10 ms ping (watch running)");

        row.During(() =>
        {
            lab.Lab.Server.Ip("rule", "del", "from", "10.10.10.0/24", "pref", "1000", "table", "200");
            lab.Lab.Server.Ip("-6", "rule", "del", "from", "fd00:4242:4242:4242::/64", "pref", "1000", "table", "200");
            Thread.Sleep(1_500);
        }, intervalMs: 10);
        row.Note(lab.Last<WatchProcess>());

        row.Check(tunnel4: true, tunnel6: true);
    }
}
