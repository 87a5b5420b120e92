using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary>Issue 21, the lifecycle model on a real kernel, both backends: seed 000's LAN traffic for the server is
/// refused — never routed by main — at boot, after down, after the tunnel died, across a flush and with a broken policy.</summary>
public class LifecycleKernelSpecs
{
    const string Seed000 = """
        { "Tables": { "nyet": 100 },
          "FailClosed": [ "nyet" ],
          "Instances": [ { "Dev": "tun2",
            "Rules":  [ "from 192.168.10.0/24 to 198.51.100.7 lookup nyet" ],
            "Routes": [ "default dev ${dev} table nyet" ] } ] }
        """;

    const string Selector = "from 192.168.10.0/24 to 198.51.100.7 lookup 100 proto 147";

    static Dictionary<string, string> Client(string scriptType = "up") => SubnetEnv("tun2", "10.8.0.2", "255.255.255.0", scriptType: scriptType);

    /// <summary>A router with a LAN (lan0) and an uplink (wan0) that main's default route takes.</summary>
    static NetNs Router()
    {
        var ns = new NetNs();
        ns.Forwarding();
        ns.AddTun("lan0", "192.168.10.1/24");
        ns.AddTun("wan0", "192.0.2.2/24");
        ns.Ip("route", "add", "default", "dev", "wan0");
        return ns;
    }

    /// <summary>Where the kernel sends a LAN host's packet for the server: "refused", or the device it leaves by.</summary>
    static string LanToServer(NetNs ns)
    {
        var r = ns.Exec("/usr/sbin/ip", ["-4", "route", "get", "198.51.100.7", "from", "192.168.10.7", "iif", "lan0"]);
        if (r.ExitCode != 0) return r.Stderr.Contains("No route to host") ? "refused" : r.Stderr.Trim();
        var words = r.Stdout.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return words[Array.IndexOf(words, "dev") + 1];
    }

    [Fact]
    public void The_lan_is_refused_at_boot_routed_through_the_tunnel_while_it_is_up_and_refused_after_down_and_after_it_died()
    {
        using var ns = Router();
        var policy = Topology.Policy(ns, Seed000);

        Run(ns, ["apply", "-c", policy]).ShouldSucceed();
        var atBoot = LanToServer(ns);
        Assert.Contains(Selector, ns.Ip("rule"));

        ns.AddTun("tun2", "10.8.0.2/24");
        var up = Run(ns, ["up", "-c", policy], Client()).ShouldSucceed();
        var whileUp = LanToServer(ns);
        Run(ns, ["down", "-c", policy], Client("down")).ShouldSucceed();
        var afterDown = LanToServer(ns);

        Run(ns, ["up", "-c", policy], Client()).ShouldSucceed();
        ns.Ip("link", "del", "tun2"); // OpenVPN SIGKILLed: no down
        var forget = Run(ns, ["apply", "-c", policy]).ShouldSucceed();
        var afterDeath = LanToServer(ns);

        Assert.Equal(["refused", "tun2", "refused", "refused"], [atBoot, whileUp, afterDown, afterDeath]);
        Assert.Contains("[#] forget tunnel record tun2", forget.Stderr);
        Assert.Contains(Selector, ns.Ip("rule"));
        Assert.DoesNotContain("proto 148", ns.Ip("rule"));
        Assert.DoesNotContain("rule add", up.Stderr);
        Assert.Equal(0, Run(ns, ["plan", "-c", policy]).ExitCode);
    }

    [Fact]
    public void Flush_keeps_the_kill_switch_and_the_selector_with_a_broken_policy_and_flush_all_opens_it_saying_so()
    {
        using var ns = Router();
        var policy = Topology.Policy(ns, Seed000);
        Run(ns, ["apply", "-c", policy]).ShouldSucceed();
        Topology.Policy(ns, Seed000.Replace("\"FailClosed\"", "\"FailClosed\" [")); // a typo: the unit restarts on it

        var flush = Run(ns, ["flush", "-c", policy]).ShouldSucceed();
        var apply = Run(ns, ["apply", "-c", policy]);
        var afterRestart = LanToServer(ns);
        var all = Run(ns, ["flush", "--all", "-c", policy]).ShouldSucceed();

        Assert.Contains("kept the kill switch of table nyet and the rule into it: flush never opens a kill switch", flush.Stderr);
        Assert.NotEqual(0, apply.ExitCode);
        Assert.Equal("refused", afterRestart);
        Assert.Contains("removed the kill switch of table nyet and the rules into it", all.Stderr);
        Assert.DoesNotContain("proto 147", ns.Ip("rule") + ns.Ip("route", "show", "table", "all") + ns.Ip("-6", "route", "show", "table", "all"));
        Assert.Equal("wan0", LanToServer(ns));
    }

    [Fact]
    public void An_up_before_any_apply_installs_the_kill_switch_and_the_steady_selector_first_and_down_leaves_them()
    {
        using var ns = Router();
        var policy = Topology.Policy(ns, Seed000);
        ns.AddTun("tun2", "10.8.0.2/24");

        var up = Run(ns, ["up", "-c", policy], Client()).ShouldSucceed();
        Run(ns, ["down", "-c", policy], Client("down")).ShouldSucceed();

        Assert.True(up.Stderr.IndexOf("unreachable default table nyet", StringComparison.Ordinal)
                    < up.Stderr.IndexOf("default dev tun2 table nyet", StringComparison.Ordinal), up.Stderr);
        Assert.Contains(Selector, ns.Ip("rule"));
        Assert.Matches("unreachable default .*proto 147 metric 4294967295", ns.Ip("-6", "route", "show", "table", "100"));
        Assert.Equal("refused", LanToServer(ns));
        // Left for apply: only the fail-closed guard, which the hook never renders (it adds its device to a guard that is there).
        var plan = Run(ns, ["plan", "-c", policy]);
        Assert.Equal(2, plan.ExitCode);
        Assert.StartsWith("nft -f - <<'EOF'\ntable inet tunnel_router_guard", plan.Stdout);
        Assert.DoesNotContain("ip ", plan.Stdout.Replace("ip saddr", "", StringComparison.Ordinal).Replace("ip daddr", "", StringComparison.Ordinal));
    }

    [Fact]
    public void A_rule_with_a_placeholder_into_a_fail_closed_table_is_named_by_plan_apply_and_doctor_with_the_fix()
    {
        using var ns = Router();
        var policy = Topology.Policy(ns, Seed000.Replace("from 192.168.10.0/24 to", "from ${ifconfig_local} to"));

        var plan = Run(ns, ["plan", "-c", policy]);
        var apply = Run(ns, ["apply", "-c", policy]).ShouldSucceed();
        var doctor = Run(ns, ["doctor", "-c", policy]);

        const string named = "Instances[0].Rules[0]: 'from ${ifconfig_local} to 198.51.100.7 lookup nyet' selects traffic into the fail-closed table nyet";
        Assert.Contains(named, plan.Stderr);
        Assert.Contains("write it without placeholders", plan.Stderr);
        Assert.Contains(named, apply.Stderr);
        Assert.Contains(named, doctor.Stdout);
        Assert.Equal(1, doctor.ExitCode);
    }

    [Fact]
    public void A_soft_restart_keeps_the_lan_routed_through_the_tunnel_with_the_gateway_of_the_last_up()
    {
        using var ns = Router();
        var policy = Topology.Policy(ns, Seed000.Replace("default dev ${dev} table nyet", "default via ${route_vpn_gateway} dev ${dev} table nyet"));
        Run(ns, ["apply", "-c", policy]).ShouldSucceed();
        ns.AddTun("tun2", "10.8.0.2/24");
        var init = Client();
        init["route_vpn_gateway"] = "10.8.0.1";
        Run(ns, ["up", "-c", policy], init).ShouldSucceed();
        // SIGUSR1 with persist-tun + up-restart: down and up with restart, no route_vpn_gateway at that up.
        var restart = Client();
        restart["script_context"] = "restart";

        var down = Run(ns, ["down", "-c", policy], new Dictionary<string, string>(restart) { ["script_type"] = "down" }).ShouldSucceed();
        var duringRestart = LanToServer(ns);
        var up = Run(ns, ["up", "-c", policy], restart).ShouldSucceed();

        Assert.Contains("down with restart, the device stays (persist-tun)", down.Stderr);
        Assert.Equal("tun2", duringRestart);
        Assert.Contains("route_vpn_gateway not set by OpenVPN; using the values of the tunnel's last up", up.Stderr);
        Assert.Contains("default via 10.8.0.1 dev tun2 proto 148", ns.Ip("route", "show", "table", "100"));
        Assert.Equal("tun2", LanToServer(ns));
        Assert.Equal(0, Run(ns, ["plan", "-c", policy]).ExitCode);
    }

    [Theory]
    [InlineData("\"Tunnels\": [ { \"Name\": \"gre_black\", \"Mode\": \"gre\", \"Local\": \"192.0.2.2\", \"Remote\": \"198.51.100.9\", \"Addresses\": [ \"10.255.0.1/30\" ] } ],",
        "needs the kernel module ip_gre")]
    [InlineData("\"Routes\": [ \"-6 default via 2001:db8:99::1 dev wan0 table 300\" ],", "gateway 2001:db8:99::1 is not on a connected network")]
    public void A_part_that_fails_never_keeps_the_kill_switch_and_the_selector_out_and_is_named(string part, string named)
    {
        if (part.Contains("gre") && Directory.Exists("/sys/module/ip_gre"))
            throw new InvalidOperationException("this host's kernel has GRE loaded; this test needs one without");
        using var ns = Router();
        var policy = Topology.Policy(ns, Seed000.Replace("\"FailClosed\"", part + " \"FailClosed\""));

        var apply = Run(ns, ["apply", "-c", policy]);

        Assert.Equal(1, apply.ExitCode);
        Assert.Contains(named, apply.Stderr);
        Assert.Contains("the kill switches and the rules into them went in", apply.Stderr);
        Assert.Contains(Selector, ns.Ip("rule"));
        Assert.Equal("refused", LanToServer(ns));
        Assert.DoesNotContain("table 300", ns.Ip("-6", "route", "show", "table", "all"));
    }

    [Fact]
    public void A_broken_policy_never_takes_a_tunnel_down_the_hook_watch_and_apply_run_on_the_last_good_one()
    {
        using var ns = Router();
        var policy = Topology.Policy(ns, Seed000);
        Run(ns, ["apply", "-c", policy]).ShouldSucceed();
        var copy = Path.Combine(ns.StateDir, "last-good.json");
        var kept = File.ReadAllText(copy);
        var mode = File.GetUnixFileMode(copy);
        Topology.Policy(ns, Seed000.Replace("\"FailClosed\"", "\"FailClosed\" [")); // one edit breaks it
        var before = ns.Dump();

        var apply = Run(ns, ["apply", "-c", policy]);
        var unchanged = ns.Dump();
        ns.AddTun("tun2", "10.8.0.2/24");
        var up = Run(ns, ["up", "-c", policy], Client()).ShouldSucceed();
        var whileUp = LanToServer(ns);
        ns.Ip("rule", "del", "pref", "1100");
        using var watch = new WatchProcess(ns, ["-c", policy]);
        watch.WaitFor("[#] ip -4 rule add from 192.168.10.0/24 to 198.51.100.7/32 pref 1100 lookup nyet protocol tunnel-router");

        Assert.Equal(Seed000, kept);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, mode);
        Assert.Equal(1, apply.ExitCode);
        Assert.Contains($"running on the last good policy, {copy}, until it is fixed", apply.Stderr);
        Assert.Equal(before, unchanged);
        Assert.Contains($"running on the last good policy, {copy}, until it is fixed", up.Stderr);
        Assert.Equal("tun2", whileUp);
        Assert.Contains($"running on the last good policy, {copy}", watch.Output);
        Assert.Contains(Selector, ns.Ip("rule"));
        Assert.Equal(Seed000, File.ReadAllText(copy));
    }

    [Fact]
    public void The_units_restart_after_a_typo_puts_the_last_good_policy_back_and_still_fails()
    {
        using var ns = Router();
        var policy = Topology.Policy(ns, Seed000);
        Run(ns, ["apply", "-c", policy]).ShouldSucceed();
        var applied = ns.Dump();
        Topology.Policy(ns, Seed000.Replace("\"FailClosed\"", "\"FailClosed\" ["));

        Run(ns, ["flush", "-c", policy]).ShouldSucceed(); // ExecStop
        var start = Run(ns, ["apply", "-c", policy]);     // ExecStart

        Assert.Equal(1, start.ExitCode);
        Assert.Contains("the policy does not load", start.Stderr);
        Assert.Equal(applied, ns.Dump());
        var plan = Run(ns, ["plan", "-c", policy]);
        Assert.Equal(1, plan.ExitCode); // plan shows the truth: the file is broken
        Assert.DoesNotContain("last good", plan.Stderr);
    }

    [Fact]
    public void Two_namespaces_sharing_the_run_directory_never_install_nor_forget_each_others_tunnels()
    {
        using var a = new NetNs();
        using var b = new NetNs();
        a.AddTun("tun0", "10.10.10.1/24");
        var shared = new Dictionary<string, string> { ["TUNNEL_ROUTER_LOCKFILE"] = Path.Combine(a.StateDir, "lock"), ["TUNNEL_ROUTER_POOLRULES"] = "true" };
        Run(a, ["up"], new Dictionary<string, string>(SubnetEnv("tun0", "10.10.10.1", "255.255.255.0")).Concat(shared).ToDictionary()).ShouldSucceed();

        var apply = Run(b, ["apply"], shared).ShouldSucceed();

        Assert.DoesNotContain("forget", apply.Stderr);
        Assert.DoesNotContain("10.10.10.0/24", b.Ip("rule"));
        Assert.True(File.Exists(a.RecordPath("tun0")));
        Assert.Contains("from 10.10.10.0/24 lookup 200 proto 148", a.Ip("rule"));
        Assert.Contains("\"NetNs\"", File.ReadAllText(a.RecordPath("tun0")));

        // b's own tun0 (the same name, the same run directory): each namespace keeps its own record, and the next
        // applies in both keep both tunnels' rules.
        b.AddTun("tun0", "10.20.20.1/24");
        Run(b, ["up"], new Dictionary<string, string>(SubnetEnv("tun0", "10.20.20.1", "255.255.255.0")).Concat(shared).ToDictionary()).ShouldSucceed();
        Run(a, ["apply"], shared).ShouldSucceed();
        Run(b, ["apply"], shared).ShouldSucceed();

        Assert.Contains("10.10.10.1", File.ReadAllText(a.RecordPath("tun0")));
        Assert.Contains("10.20.20.1", File.ReadAllText(b.RecordPath("tun0", a.StateDir)));
        Assert.Contains("from 10.10.10.0/24 lookup 200 proto 148", a.Ip("rule"));
        Assert.Contains("from 10.20.20.0/24 lookup 200 proto 148", b.Ip("rule"));
        Assert.DoesNotContain("10.20.20.0/24", a.Ip("rule"));
        Assert.DoesNotContain("10.10.10.0/24", b.Ip("rule"));
    }

    /// <summary>Invariant 8: a changed hook Table moves a running server tunnel's networks and pool rules at the next
    /// apply — plan says so first, and its down then removes them from where they are.</summary>
    [Fact]
    public void A_changed_Table_moves_a_running_tunnels_routes_and_pool_rules_and_its_down_removes_them_there()
    {
        using var ns = new NetNs();
        const string Before = """{ "Tables": { "vpn": 200, "vpn2": 300 }, "Table": "vpn", "PoolRules": true }""";
        var policy = Topology.Policy(ns, Before);
        ns.AddTun("tun0", "10.10.10.1/24");
        var server = SubnetEnv("tun0", "10.10.10.1", "255.255.255.0");
        Run(ns, ["apply", "-c", policy]).ShouldSucceed();
        Run(ns, ["up", "-c", policy], server).ShouldSucceed();
        Assert.Contains("from 10.10.10.0/24 lookup 200 proto 148", ns.Ip("rule"));

        Topology.Policy(ns, Before.Replace("\"Table\": \"vpn\"", "\"Table\": \"vpn2\"", StringComparison.Ordinal));
        var plan = Run(ns, ["plan", "-c", policy]);

        Assert.Equal(2, plan.ExitCode);
        Assert.Contains("tun0: a live tunnel follows the policy's Table vpn2 (200 -> 300)", plan.Stdout + plan.Stderr);
        Run(ns, ["apply", "-c", policy]).ShouldSucceed();
        Assert.Equal(0, Run(ns, ["plan", "-c", policy]).ExitCode);
        Assert.Contains("from 10.10.10.0/24 lookup 300 proto 148", ns.Ip("rule"));
        Assert.DoesNotContain("lookup 200", ns.Ip("rule"));
        Assert.Contains("10.10.10.0/24 dev tun0 proto 148", ns.Ip("route", "show", "table", "300"));
        Assert.DoesNotContain("10.10.10.0/24", ns.Ip("route", "show", "table", "200"));

        Run(ns, ["down", "-c", policy], SubnetEnv("tun0", "10.10.10.1", "255.255.255.0", scriptType: "down")).ShouldSucceed();
        Assert.DoesNotContain("10.10.10.0/24", ns.Ip("rule"));
        Assert.DoesNotContain("10.10.10.0/24", ns.Ip("route", "show", "table", "300"));
    }
}
