using TunnelRouter.Tests.Support;
using Xunit;
using Xunit.Abstractions;
using static TunnelRouter.Tests.EndToEnd.ClientLab;

namespace TunnelRouter.Tests.EndToEnd;

/// <summary>
/// Issue 21's leak matrix, client side (seed 000, <see cref="ClientLab"/>): the router's LAN sends its traffic for the
/// server through an OpenVPN 2.6 client tunnel (tun2, table nyet, <c>FailClosed: ["nyet"]</c>). For each event of the
/// tunnel's life the LAN host pings the server in both families, every 20 ms, while the event happens and in a burst
/// after it; the server counts what arrives through its tunnel and what arrives in clear on its plain interface.
/// Nothing may ever arrive in clear; where the tunnel is up after the event, the burst must arrive through it.
/// <para>The policy is the project's example (contrib/examples/lan-host-via-openvpn.json) in both families: the LAN's
/// rules in the Instances entry ("Instances"), or, where the row says so, at the top level ("top-level", the form
/// the README's boot-order specs use) — the rows that differ between the two run both.</para>
/// </summary>
public class LeakMatrixClientSpecs(ITestOutputHelper output)
{
    /// <summary>The example's rules at the top level of the policy, its routes in the Instances entry.</summary>
    const string TopLevel = """
        "Tables": { "nyet": 100 },
        "FailClosed": [ "nyet" ],
        "Rules": [ "from 192.168.10.0/24 to 198.51.100.7 lookup nyet", "from fd10::/64 to 2001:db8:7::7 lookup nyet" ],
        "Instances": [ { "Dev": "tun2",
                         "Routes": [ "optional default via ${route_vpn_gateway} dev ${dev} table nyet",
                                     "optional -6 default via ${ifconfig_ipv6_remote} dev ${dev} table nyet" ] } ]
        """;

    static void Write(ClientLeakLab lab, string form)
    {
        if (form == "Instances") lab.Lab.WritePolicy(Seed000);
        else lab.Lab.WritePolicyWith(TopLevel);
    }

    /// <summary>One missing comma (after the Tables object): a policy that does not parse.</summary>
    static void Break(ClientLeakLab lab)
    {
        var text = File.ReadAllText(lab.Lab.PolicyPath);
        var broken = text.Replace("\"nyet\": 100 },", "\"nyet\": 100 }");
        Assert.NotEqual(text, broken);
        File.WriteAllText(lab.Lab.PolicyPath, broken);
    }

    /// <summary>The policy applied as the unit does at boot, the server up, the client connected.</summary>
    static ClientLeakLab Connected(string form = "Instances", bool watch = false, params string[] clientExtra)
    {
        var lab = new ClientLeakLab();
        try
        {
            Write(lab, form);
            lab.Unit(ShippedUnit.Start).ShouldSucceed();
            if (watch) lab.Watch();
            lab.Lab.StartServer().WaitFor(OpenVpnProcess.Ready);
            lab.Client(0, clientExtra).WaitFor(OpenVpnProcess.Ready);
            return lab;
        }
        catch
        {
            lab.Dispose();
            throw;
        }
    }

    static void Killed(OpenVpnProcess client)
    {
        client.Signal(OpenVpnProcess.SIGKILL);
        if (!client.WaitForExit(10_000)) throw new TimeoutException("the client did not die on SIGKILL");
    }

    LeakRow Row(ClientLeakLab lab, int order, string name) => new(lab, output, order, "client", name);

    [Theory]
    [InlineData("Instances")]
    [InlineData("top-level")]
    public void Boot_applied_before_the_tunnel_exists_sends_nothing_in_clear(string form)
    {
        using var lab = new ClientLeakLab();
        Write(lab, form);
        lab.Unit(ShippedUnit.Start).ShouldSucceed();
        var row = Row(lab, 1, $"boot: apply, traffic before OpenVPN connects ({form})");

        row.During(() => Thread.Sleep(1_000));

        row.Check(tunnel4: false, tunnel6: false);
    }

    [Theory]
    [InlineData("Instances")]
    [InlineData("top-level")]
    public void Connecting_the_tunnel_carries_the_LAN_through_it_and_nothing_in_clear(string form)
    {
        using var lab = new ClientLeakLab();
        Write(lab, form);
        lab.Unit(ShippedUnit.Start).ShouldSucceed();
        lab.Lab.StartServer().WaitFor(OpenVpnProcess.Ready);
        var row = Row(lab, 2, $"connect ({form})");

        row.During(() => lab.Client(0).WaitFor(OpenVpnProcess.Ready));

        row.Check(tunnel4: true, tunnel6: true);
    }

    [Fact]
    public void A_SIGUSR1_soft_restart_with_persist_tun_and_up_restart_sends_nothing_in_clear_and_the_tunnel_carries_the_LAN_after_it()
    {
        using var lab = Connected(clientExtra: ["persist-tun", "up-restart"]);
        var row = Row(lab, 3, "SIGUSR1 with persist-tun + up-restart");
        var running = LastClient(lab);

        row.During(() =>
        {
            running.Signal(OpenVpnProcess.SIGUSR1);
            running.WaitFor(OpenVpnProcess.Ready, times: 2);
        });
        if (running.HasExited) row.Note("OpenVPN exited after the restart's up:\n" + Tail(running.Log));

        row.Check(tunnel4: true, tunnel6: true);
    }

    [Fact]
    public void A_ping_restart_without_persist_tun_sends_nothing_in_clear_and_the_tunnel_carries_the_LAN_after_it()
    {
        using var lab = Connected(clientExtra: ["ping 1", "ping-restart 3"]);
        var running = LastClient(lab);
        var row = Row(lab, 4, "ping-restart (no persist-tun)");

        row.During(() =>
        {
            // The server's packets stop reaching the client: after 3 s of silence OpenVPN restarts the tunnel.
            lab.Lab.Router.Exec("/usr/sbin/nft", ["-f", "-"], stdin: """
                table inet leak {
                    chain silence {
                        type filter hook input priority 0;
                        udp sport 1194 drop
                    }
                }
                """).ShouldSucceed();
            running.WaitFor("Inactivity timeout (--ping-restart)", timeoutMs: 15_000);
            lab.Lab.Router.Exec("/usr/sbin/nft", ["delete", "table", "inet", "leak"]).ShouldSucceed();
            running.WaitFor(OpenVpnProcess.Ready, times: 2);
        });

        row.Check(tunnel4: true, tunnel6: true);
    }

    /// <summary>OpenVPN's --inactive: with a byte threshold the LAN's pings never reach, OpenVPN exits on its own after 3 s
    /// and runs down (no restart, as for SIGTERM).</summary>
    [Fact]
    public void OpenVPN_exiting_on_inactive_runs_down_and_sends_nothing_in_clear()
    {
        using var lab = Connected(clientExtra: ["inactive 3 1000000000"]);
        var running = LastClient(lab);
        var row = Row(lab, 20, "--inactive (OpenVPN exits on inactivity and runs down)");

        row.During(() =>
        {
            running.WaitFor("Inactivity timeout (--inactive)", timeoutMs: 20_000);
            if (!running.WaitForExit(10_000)) throw new TimeoutException("OpenVPN did not exit after --inactive");
        }, tailMs: 1_000);

        row.Check(tunnel4: false, tunnel6: false);
    }

    [Theory]
    [InlineData("Instances")]
    [InlineData("top-level")]
    public void A_clean_stop_of_OpenVPN_runs_down_and_sends_nothing_in_clear(string form)
    {
        using var lab = Connected(form);
        var row = Row(lab, 5, $"down (clean stop, SIGTERM) ({form})");

        row.During(() => LastClient(lab).Stop(), tailMs: 1_000);

        row.Check(tunnel4: false, tunnel6: false);
    }

    [Fact]
    public void A_SIGKILL_of_OpenVPN_under_watch_sends_nothing_in_clear()
    {
        using var lab = Connected(watch: true);
        var row = Row(lab, 6, "SIGKILL of OpenVPN (watch running)");

        row.During(() => Killed(LastClient(lab)), tailMs: 2_000);
        row.Note(WatchOf(lab));

        row.Check(tunnel4: false, tunnel6: false);
    }

    [Fact]
    public void Reconnecting_after_a_SIGKILL_sends_nothing_in_clear_and_the_tunnel_carries_the_LAN_again()
    {
        using var lab = Connected();
        var row = Row(lab, 7, "reconnect after SIGKILL");

        row.During(() =>
        {
            Killed(LastClient(lab));
            Thread.Sleep(500);
            lab.Client(1).WaitFor(OpenVpnProcess.Ready);
        });

        row.Check(tunnel4: true, tunnel6: true);
    }

    [Fact]
    public void Apply_with_the_tunnels_device_gone_sends_nothing_in_clear()
    {
        using var lab = Connected();
        Killed(LastClient(lab));
        var row = Row(lab, 8, "apply with the device gone (after SIGKILL)");

        row.During(() => row.Note("apply", lab.Unit(ShippedUnit.Start)), tailMs: 1_000);

        row.Check(tunnel4: false, tunnel6: false);
    }

    [Theory]
    [InlineData("Instances")]
    [InlineData("top-level")]
    public void The_units_stop_sends_nothing_in_clear_and_the_live_tunnel_keeps_carrying_the_LAN(string form)
    {
        using var lab = Connected(form);
        var row = Row(lab, 9, $"unit stop (ExecStop: {string.Join(' ', ShippedUnit.Stop)}) ({form})");

        row.During(() => row.Note("stop", lab.Unit(ShippedUnit.Stop)), tailMs: 1_000);

        row.Check(tunnel4: true, tunnel6: true);
    }

    [Theory]
    [InlineData("Instances")]
    [InlineData("top-level")]
    public void The_units_restart_sends_nothing_in_clear_and_the_tunnel_carries_the_LAN_after_it(string form)
    {
        using var lab = Connected(form);
        var row = Row(lab, 10, $"unit restart (stop, then start) ({form})");

        row.DuringUnitRestart();

        row.Check(tunnel4: true, tunnel6: true);
    }

    [Theory]
    [InlineData("Instances")]
    [InlineData("top-level")]
    public void The_units_restart_on_a_policy_with_a_syntax_error_sends_nothing_in_clear_and_the_tunnel_keeps_carrying_the_LAN(string form)
    {
        using var lab = Connected(form);
        Break(lab);
        var row = Row(lab, 11, $"unit restart with a syntax error in the policy ({form})");

        row.DuringUnitRestart();

        row.Check(tunnel4: true, tunnel6: true);
    }

    [Fact]
    public void OpenVPN_reconnecting_on_a_policy_with_a_syntax_error_sends_nothing_in_clear_and_the_tunnel_carries_the_LAN_again()
    {
        using var lab = Connected();
        Break(lab);
        var row = Row(lab, 12, "OpenVPN restart with a syntax error in the policy");

        row.During(() =>
        {
            LastClient(lab).Stop();
            var next = lab.Client(1);
            next.WaitFor(OpenVpnProcess.Ready);
        });
        if (LastClient(lab).HasExited) row.Note("OpenVPN exited at its up:\n" + Tail(LastClient(lab).Log));

        row.Check(tunnel4: true, tunnel6: true);
    }

    [Fact]
    public void Restarting_watch_sends_nothing_in_clear_and_the_tunnel_keeps_carrying_the_LAN()
    {
        using var lab = Connected(watch: true);
        var row = Row(lab, 13, "watch restart (tunnel up)");

        row.During(() =>
        {
            WatchOf(lab).Stop();
            lab.Watch();
        }, tailMs: 1_000);
        row.Note(WatchOf(lab));

        row.Check(tunnel4: true, tunnel6: true);
    }

    [Fact]
    public void A_kill_switch_deleted_10_times_within_a_minute_under_watch_sends_nothing_in_clear()
    {
        using var lab = new ClientLeakLab();
        Write(lab, "top-level");
        lab.Unit(ShippedUnit.Start).ShouldSucceed();
        var watch = lab.Watch();
        var row = Row(lab, 14, "kill switch deleted 10 times in a minute under watch (tunnel down, top-level rules)");

        var growth = new List<string>();
        row.During(() =>
        {
            var last = lab.Counts();
            for (var i = 0; i < 10; i++)
            {
                lab.Lab.Router.Exec("/usr/sbin/ip", ["route", "del", "unreachable", "default", "table", "100", "metric", "4294967295"]);
                lab.Lab.Router.Exec("/usr/sbin/ip", ["-6", "route", "del", "unreachable", "default", "table", "100", "metric", "4294967295"]);
                Thread.Sleep(1_000);
                var now = lab.Counts();
                growth.Add($"{now.Clear4 - last.Clear4}/{now.Clear6 - last.Clear6}");
                last = now;
            }
        });
        // Which deletions leaked how much: the debounce's share at each, and the back-off's from the sixth on.
        row.Note("in clear in the second after each deletion (IPv4/IPv6): " + string.Join(", ", growth));
        row.Note(watch);

        row.Check(tunnel4: false, tunnel6: false);
    }

    [Fact]
    public void A_rule_deleted_by_hand_under_a_10_ms_ping_and_watch_sends_nothing_in_clear()
    {
        using var lab = Connected(watch: true);
        var row = Row(lab, 15, "rule deleted by hand under a 10 ms ping (watch running)");

        row.During(() =>
        {
            lab.Lab.Router.Ip("rule", "del", "from", "192.168.10.0/24", "to", Server4, "table", "100");
            lab.Lab.Router.Ip("-6", "rule", "del", "from", "fd10::/64", "to", Server6, "table", "100");
            Thread.Sleep(1_500);
        }, intervalMs: 10);
        row.Note(WatchOf(lab));

        row.Check(tunnel4: true, tunnel6: true);
    }

    [Fact]
    public void A_pushed_route_gateway_on_the_clients_WAN_sends_nothing_in_clear()
    {
        using var lab = new ClientLeakLab();
        // The Instances route without "dev ${dev}" (the form the issue found): the pushed gateway decides the device.
        lab.Lab.WritePolicy("""
            { "Dev": "tun2",
              "Rules":  [ "from 192.168.10.0/24 to 198.51.100.7 lookup nyet", "from fd10::/64 to 2001:db8:7::7 lookup nyet" ],
              "Routes": [ "optional default via ${route_vpn_gateway} table nyet",
                          "optional -6 default via ${ifconfig_ipv6_remote} dev ${dev} table nyet" ] }
            """);
        lab.Unit(ShippedUnit.Start).ShouldSucceed();
        // A hostile server: its route-gateway is an address on the client's WAN (its own plain address).
        lab.Lab.StartServer("net30", extra: [$"push \"route-gateway {Server4}\""]).WaitFor(OpenVpnProcess.Ready);
        var row = Row(lab, 16, "pushed hostile route-gateway (an address on the client's WAN)");

        OpenVpnProcess? client = null;
        row.During(() =>
        {
            client = lab.Client(0);
            // Either outcome is the product's to choose: connected with the gateway refused or bound to tun2, or an up
            // that refuses the pushed gateway (issue 21, invariant 4), after which OpenVPN exits.
            Eventually.True(() => client.HasExited || client.Count(OpenVpnProcess.Ready) > 0,
                () => $"OpenVPN neither connected nor exited:\n{client.Log}");
        }, tailMs: 1_000);
        var up = client is { HasExited: false };
        row.Note(up
            ? "OpenVPN connected and runs: the tunnel is up, so the LAN must arrive through it; nyet: " + lab.Lab.Nyet().Trim().Replace('\n', ';')
            : "OpenVPN exited at up: the tunnel is down, so the row asks only for 0 in clear");

        // "Where the tunnel is up, the traffic arrives through it": up while OpenVPN runs.
        row.Check(tunnel4: up, tunnel6: up);
    }

    [Fact]
    public void OpenVPN_connecting_before_the_units_apply_and_then_killed_sends_nothing_in_clear()
    {
        using var lab = new ClientLeakLab();
        Write(lab, "Instances");
        lab.Lab.StartServer().WaitFor(OpenVpnProcess.Ready);
        lab.Client(0).WaitFor(OpenVpnProcess.Ready);
        var row = Row(lab, 17, "OpenVPN started before apply, then SIGKILLed");

        row.During(() => Killed(LastClient(lab)), tailMs: 1_500);

        row.Check(tunnel4: false, tunnel6: false);
    }

    [Fact]
    public void Apply_failing_on_a_missing_GRE_module_still_sends_nothing_in_clear()
    {
        using var lab = new ClientLeakLab();
        lab.Lab.WritePolicyWith(TopLevel + """
            ,
            "Tunnels": [ { "Name": "gre_black", "Mode": "gre", "Local": "198.51.100.2", "Remote": "198.51.100.9",
                           "Addresses": [ "10.255.0.1/30" ] } ]
            """);
        var apply = lab.Unit(ShippedUnit.Start);
        var row = Row(lab, 18, "apply with a GRE tunnel the kernel cannot make (top-level rules, tunnel down)");
        row.Note($"apply: exit {apply.ExitCode}: {apply.Stderr.Trim().Split('\n').LastOrDefault()}");

        row.During(() => Thread.Sleep(1_000));

        row.Check(tunnel4: false, tunnel6: false);
    }

    /// <summary>Two routers in two network namespaces of one host share /run: its lock and the tunnels' records beside it.
    /// The second has no tunnel; its apply, then this router's own, run while this router's tunnel is up.</summary>
    [Fact]
    public void A_second_network_namespaces_apply_on_the_same_host_sends_nothing_in_clear_and_the_tunnel_keeps_carrying_the_LAN()
    {
        var run = Directory.CreateTempSubdirectory("tunnel-router-leak-run-");
        try
        {
            var hostLock = Path.Combine(run.FullName, "lock");
            using var lab = new ClientLeakLab(hostLock);
            Write(lab, "Instances");
            lab.PointPolicyAtLock();
            lab.Unit(ShippedUnit.Start).ShouldSucceed();
            lab.Lab.StartServer().WaitFor(OpenVpnProcess.Ready);
            lab.Client(0).WaitFor(OpenVpnProcess.Ready);
            using var other = new ClientLeakLab(hostLock);
            Write(other, "Instances");
            other.PointPolicyAtLock();
            var row = Row(lab, 19, "a second network namespace's apply on the same host (shared /run)");

            row.During(() =>
            {
                row.Note("the other namespace's apply", other.Unit(ShippedUnit.Start));
                row.Note("this tunnel's record after it: " + (File.Exists(lab.Lab.Router.RecordPath("tun2", run.FullName)) ? "kept" : "gone"));
                row.Note("this namespace's apply", lab.Unit(ShippedUnit.Start));
            }, tailMs: 1_000);
            row.Note("the other namespace's rules: " + other.Lab.Router.Ip("-4", "rule", "show").Replace('\n', ' '));

            row.Check(tunnel4: true, tunnel6: true);
        }
        finally
        {
            run.Delete(recursive: true);
        }
    }

    static OpenVpnProcess LastClient(ClientLeakLab lab) => lab.Last<OpenVpnProcess>();
    static WatchProcess WatchOf(ClientLeakLab lab) => lab.Last<WatchProcess>();

    static string Tail(string log) => string.Join('\n', log.Split('\n').TakeLast(12));
}
