using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary>Live convergence on a real kernel, in a namespace of the test's own: the hook's tunnels in the desired
/// state, objects that wait for their device, fail-closed tables, marks by content, and watch.</summary>
public class LiveConvergenceKernelSpecs
{
    const string Pool = "from 10.10.10.0/24 lookup 200 proto 148";

    static Dictionary<string, string> Up(string dev = "tun0") =>
        new(SubnetEnv(dev, "10.10.10.1", "255.255.255.0", "fd00:4242:4242:4242::1")) { ["TUNNEL_ROUTER_POOLRULES"] = "true" };

    /// <summary>A gateway's policy: a tunnel table whose tunnel (tun2) comes later, a kill switch for it and the
    /// hook's table, a LAN rule into it, and one mark.</summary>
    static string Policy(NetNs ns, bool marks = false)
    {
        var path = Path.Combine(ns.StateDir, "policy.json");
        File.WriteAllText(path, $$"""
            {
              "Tables": { "vpn": 200, "nyet": 201 },
              "PoolRules": true,
              "FailClosed": [ "nyet", "vpn" ],
              "Rules": [ "from 192.168.5.0/24 lookup nyet", "from fd00:5::/64 lookup nyet" ],
              "Routes": [ "10.20.0.0/16 dev tun2 table nyet", "default dev tun2 table nyet", "default via 10.10.10.2 dev tun0 table vpn" ]
              {{(marks ? """, "Marks": [ { "Chain": "prerouting", "InputInterface": "tun0", "Mark": "0xf2" } ]""" : "")}}
            }
            """);
        return path;
    }

    static NetNs Gateway()
    {
        var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24", "fd00:4242:4242:4242::1/64");
        Run(ns, ["up"], Up()).ShouldSucceed();
        return ns;
    }

    [Fact]
    public void The_hooks_objects_deleted_by_hand_are_drift_plan_exits_2_naming_them_and_apply_restores_them()
    {
        using var ns = Gateway();
        var policy = Policy(ns);
        Run(ns, ["apply", "-c", policy]).ShouldSucceed();
        ns.Ip("rule", "del", "pref", "1000");
        ns.Ip("-6", "rule", "del", "pref", "1000");
        ns.Ip("route", "del", "10.10.10.0/24", "table", "200");

        var plan = Run(ns, ["plan", "-c", policy]);
        var status = Run(ns, ["status", "-c", policy]).ShouldSucceed();
        var apply = Run(ns, ["apply", "-c", policy]).ShouldSucceed();

        Assert.Contains("tun0 10.10.10.1 fd00:4242:4242:4242::1: 2 route(s), 2 rule(s), 3 missing; run apply", status.Stdout);
        Assert.Contains("    missing: ip -4 rule add from 10.10.10.0/24 pref 1000 lookup vpn protocol tunnel-router-hook", status.Stdout);
        Assert.Equal(2, plan.ExitCode);
        Assert.Contains("ip -4 route add 10.10.10.0/24 dev tun0 table vpn proto tunnel-router-hook", plan.Stdout);
        Assert.Contains("ip -4 rule add from 10.10.10.0/24 pref 1000 lookup vpn protocol tunnel-router-hook", plan.Stdout);
        Assert.Contains("ip -6 rule add from fd00:4242:4242:4242::/64 pref 1000 lookup vpn protocol tunnel-router-hook", plan.Stdout);
        Assert.Contains("[#] ip -4 rule add from 10.10.10.0/24 pref 1000 lookup vpn protocol tunnel-router-hook", apply.Stderr);
        Assert.Contains(Pool, ns.Ip("rule"));
        Assert.Contains("10.10.10.0/24 dev tun0 proto 148", ns.Ip("route", "show", "table", "200"));
        Assert.Equal(0, Run(ns, ["plan", "-c", policy]).ExitCode);
    }

    [Fact]
    public void Apply_before_the_tunnel_exists_installs_the_rules_and_kill_switches_says_what_waits_and_exits_0()
    {
        using var ns = Gateway();
        var policy = Policy(ns);

        var plan = Run(ns, ["plan", "-c", policy]);
        var apply = Run(ns, ["apply", "-c", policy]);

        Assert.Equal(2, plan.ExitCode);
        Assert.Contains("waiting for tun2: 2 routes", plan.Stderr);
        Assert.Equal(0, apply.ExitCode);
        Assert.Contains("waiting for tun2: 2 routes", apply.Stderr);
        Assert.Contains("from 192.168.5.0/24 lookup 201 proto 147", ns.Ip("rule"));
        foreach (var family in (string[])["-4", "-6"])
            foreach (var table in (string[])["200", "201"])
                Assert.Contains("unreachable default", ns.Ip(family, "route", "show", "table", table));
        // The LAN's traffic for the tunnel is refused, not sent by main's default route.
        ns.Ip("route", "add", "default", "dev", "tun0");
        var lan = ns.Exec("/usr/sbin/ip", ["route", "get", "198.51.100.1", "from", "192.168.5.7", "iif", "tun0"]);
        Assert.NotEqual(0, lan.ExitCode);
        Assert.Contains("No route to host", lan.Stderr);

        ns.AddTun("tun2", "10.8.0.2/24");
        Run(ns, ["apply", "-c", policy]).ShouldSucceed();

        Assert.Contains("default dev tun2 proto 147", ns.Ip("route", "show", "table", "201"));
        Assert.Equal(0, Run(ns, ["plan", "-c", policy]).ExitCode);
    }

    [Fact]
    public void A_hooks_down_leaves_the_kill_switch_and_a_failure_of_the_rest_never_takes_it_back()
    {
        using var ns = Gateway();
        var policy = Policy(ns);
        Run(ns, ["apply", "-c", policy]).ShouldSucceed();

        Run(ns, ["down"], SubnetEnv("tun0", "10.10.10.1", "255.255.255.0", "fd00:4242:4242:4242::1", scriptType: "down")).ShouldSucceed();
        Assert.Contains("unreachable default", ns.Ip("route", "show", "table", "200"));

        // Plain flush keeps the kill switches (docs/lifecycle.md): --all, so that apply has to put them back.
        Run(ns, ["flush", "--all", "-c", policy]).ShouldSucceed();
        // The first 6 changes close the tables (4 kill switches, the 2 LAN rules into nyet); the 7th fails.
        var failing = Run(ns, ["apply", "-c", policy], new Dictionary<string, string> { ["TUNNEL_ROUTER_FAULT_AFTER"] = "6" });

        Assert.NotEqual(0, failing.ExitCode);
        Assert.Contains("from 192.168.5.0/24 lookup 201 proto 147", ns.Ip("rule"));
        Assert.Contains("unreachable default", ns.Ip("-4", "route", "show", "table", "201"));
        Assert.Contains("unreachable default", ns.Ip("-6", "route", "show", "table", "201"));
    }

    [Fact]
    public void Flush_leaves_the_live_tunnels_objects_and_flush_all_removes_them_and_their_records()
    {
        using var ns = Gateway();
        var policy = Policy(ns);
        Run(ns, ["apply", "-c", policy]).ShouldSucceed();

        var flush = Run(ns, ["flush", "-c", policy]).ShouldSucceed();

        Assert.Contains(Pool, ns.Ip("rule"));
        Assert.Contains("10.10.10.0/24 dev tun0 proto 148", ns.Ip("route", "show", "table", "200"));
        // Flush never opens a kill switch (docs/lifecycle.md): both tables keep theirs, and the LAN's rules into nyet
        // stay with it; the rest of the policy's objects go.
        Assert.Contains("kept the kill switch of table vpn, nyet and the 2 rules into it: flush never opens a kill switch", flush.Stderr);
        Assert.Contains("from 192.168.5.0/24 lookup 201 proto 147", ns.Ip("rule"));
        Assert.DoesNotContain("default via 10.10.10.2", ns.Ip("route", "show", "table", "200"));
        foreach (var family in (string[])["-4", "-6"])
        {
            Assert.Contains("unreachable default", ns.Ip(family, "route", "show", "table", "200"));
            Assert.Contains("unreachable default", ns.Ip(family, "route", "show", "table", "201"));
        }
        var refused = ns.Exec("/usr/sbin/ip", ["route", "get", "198.51.100.1", "from", "10.10.10.7", "iif", "tun0"]);
        Assert.Contains("No route to host", refused.Stderr);

        Run(ns, ["flush", "--all", "-c", policy]).ShouldSucceed();

        Assert.DoesNotContain("proto 148", ns.Ip("rule") + ns.Ip("-6", "rule") + ns.Ip("route", "show", "table", "all"));
        Assert.False(File.Exists(ns.RecordPath("tun0")));
    }

    [Fact]
    public void A_record_whose_device_went_without_a_down_is_forgotten_by_the_next_apply_with_its_rules()
    {
        using var ns = Gateway();
        var policy = Policy(ns);
        ns.Ip("link", "del", "tun0");

        var apply = Run(ns, ["apply", "-c", policy]).ShouldSucceed();

        Assert.Contains("[#] forget tunnel record tun0", apply.Stderr);
        Assert.DoesNotContain("proto 148", ns.Ip("rule") + ns.Ip("-6", "rule"));
        Assert.False(File.Exists(ns.RecordPath("tun0")));
    }

    [Fact]
    public void A_flushed_marks_chain_is_drift_by_content_and_apply_restores_it()
    {
        using var ns = Gateway();
        var policy = Policy(ns, marks: true);
        Run(ns, ["apply", "-c", policy]).ShouldSucceed();
        ns.Exec("/usr/sbin/nft", ["flush", "chain", "inet", "tunnel_router", "prerouting"]).ShouldSucceed();

        var plan = Run(ns, ["plan", "-c", policy]);
        var doctor = Run(ns, ["doctor", "-c", policy]);
        Run(ns, ["apply", "-c", policy]).ShouldSucceed();

        Assert.Equal(2, plan.ExitCode);
        Assert.Contains("nft -f -", plan.Stdout);
        Assert.Contains("PROBLEM  drift", doctor.Stdout);
        Assert.Contains("meta mark set 0x000000f2", ns.Exec("/usr/sbin/nft", ["list", "table", "inet", "tunnel_router"]).Stdout);
        Assert.Equal(0, Run(ns, ["plan", "-c", policy]).ExitCode);
    }

    [Fact]
    public void Doctor_names_missing_kernel_rules_with_their_fix_and_what_waits()
    {
        using var ns = Gateway();
        var policy = Policy(ns);
        Run(ns, ["apply", "-c", policy]).ShouldSucceed();
        ns.Ip("rule", "flush");

        var doctor = Run(ns, ["doctor", "-c", policy]);

        Assert.Contains("PROBLEM  kernel rules", doctor.Stdout);
        Assert.Contains("ip -4 rule add from all lookup main pref 32766", doctor.Stdout);
        Assert.Contains("ip -4 rule add from all lookup default pref 32767", doctor.Stdout);
        Assert.DoesNotContain("ip -6 rule add from all lookup main", doctor.Stdout);
        Assert.Contains("waiting for tun2: 2 routes", doctor.Stdout);
    }

    [Fact]
    public void Watch_restores_a_rule_flush_in_both_families_a_flushed_table_and_a_flushed_marks_chain()
    {
        using var ns = Gateway();
        var policy = Policy(ns, marks: true);
        Run(ns, ["apply", "-c", policy]).ShouldSucceed();
        var before = ns.Ip("rule") + ns.Ip("-6", "rule") + ns.Ip("route", "show", "table", "200");
        using var watch = new WatchProcess(ns, ["-c", policy]);

        ns.Ip("rule", "flush");
        ns.Ip("-6", "rule", "flush");
        ns.Ip("rule", "add", "from", "all", "lookup", "main", "pref", "32766");
        ns.Ip("rule", "add", "from", "all", "lookup", "default", "pref", "32767");
        ns.Ip("-6", "rule", "add", "from", "all", "lookup", "main", "pref", "32766");
        ns.Ip("route", "flush", "table", "200");
        ns.Exec("/usr/sbin/nft", ["flush", "chain", "inet", "tunnel_router", "prerouting"]).ShouldSucceed();

        Eventually.True(() => Run(ns, ["plan", "-c", policy]).ExitCode == 0, () => $"watch did not restore everything:\n{watch.Output}");
        Assert.Equal(before, ns.Ip("rule") + ns.Ip("-6", "rule") + ns.Ip("route", "show", "table", "200"));
        Assert.Contains("rule 1000 from 10.10.10.0/24 lookup vpn was deleted by someone else: restored", watch.Output);
        Assert.Contains("IPv6 rule 1000 from fd00:4242:4242:4242::/64 lookup vpn was deleted by someone else: restored", watch.Output);
        Assert.Contains("route 10.10.10.0/24 dev tun0 table vpn was deleted by someone else: restored", watch.Output);
        watch.WaitFor("table inet tunnel_router was");
    }

    [Fact]
    public void Watch_installs_what_waited_when_the_device_appears_and_one_watch_per_host()
    {
        using var ns = Gateway();
        var policy = Policy(ns);
        using var watch = new WatchProcess(ns, ["-c", policy]);

        var second = Run(ns, ["watch", "-c", policy]);
        ns.AddTun("tun2", "10.8.0.2/24");

        watch.WaitFor("tun2 appeared: route default dev tun2 table nyet installed");
        // The reason comes before the change: wait for the kernel too.
        Eventually.True(() => ns.Ip("route", "show", "table", "201").Contains("default dev tun2 proto 147"), () => watch.Output);
        Assert.Equal(1, second.ExitCode);
        Assert.Contains("another tunnel-router watch runs in this network namespace", second.Stderr);
        Assert.Equal(0, watch.Stop());
        Assert.Contains("the kernel keeps its state", watch.Output);
    }

    [Fact]
    public void Watch_says_a_device_made_again_between_two_re_plans_appeared_and_not_that_someone_deleted_its_routes()
    {
        using var ns = Gateway();
        var policy = Policy(ns);
        ns.AddTun("tun2", "10.8.0.2/24");
        Run(ns, ["apply", "-c", policy]).ShouldSucceed();
        using var watch = new WatchProcess(ns, ["-c", policy]);

        // Deleted and made again by one ip process, within watch's debounce: OpenVPN killed and started again at once.
        ns.Exec("/usr/sbin/ip", ["-batch", "-"], stdin: "link del tun2\ntuntap add dev tun2 mode tun\nlink set tun2 up\n").ShouldSucceed();

        watch.WaitFor("tun2 appeared: route default dev tun2 table nyet installed");
        Eventually.True(() => ns.Ip("route", "show", "table", "201").Contains("default dev tun2 proto 147"), () => watch.Output);
        Assert.DoesNotContain("deleted by someone else", watch.Output);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Watch_says_the_kernel_dropped_the_routes_of_a_device_that_went_down_not_that_someone_deleted_them(bool atOnce)
    {
        using var ns = Gateway();
        var policy = Policy(ns);
        ns.AddTun("tun2", "10.8.0.2/24");
        Run(ns, ["apply", "-c", policy]).ShouldSucceed();
        using var watch = new WatchProcess(ns, ["-c", policy]);

        // A link flap: down and up within watch's debounce (one ip process), or down long enough for a re-plan between.
        if (atOnce) ns.Exec("/usr/sbin/ip", ["-batch", "-"], stdin: "link set tun2 down\nlink set tun2 up\n").ShouldSucceed();
        else
        {
            ns.Ip("link", "set", "tun2", "down");
            Eventually.True(() => !ns.Ip("route", "show", "table", "201").Contains("dev tun2"), () => "the kernel kept the route of a device set down");
            // Most likely a re-plan runs while it is down (past the 200 ms debounce); either way the words must be the same.
            Thread.Sleep(600);
            ns.Ip("link", "set", "tun2", "up");
        }

        watch.WaitFor("tun2 went down (the kernel drops a device's routes with it): route default dev tun2 table nyet put back");
        Eventually.True(() => ns.Ip("route", "show", "table", "201").Contains("default dev tun2 proto 147"), () => watch.Output);
        Assert.DoesNotContain("deleted by someone else", watch.Output);
    }

    [Fact]
    public void Flush_under_a_running_watch_says_that_watch_restores_what_it_removed()
    {
        using var ns = Gateway();
        var policy = Policy(ns);
        Run(ns, ["apply", "-c", policy]).ShouldSucceed();
        var alone = Run(ns, ["flush", "-c", policy]).ShouldSucceed();
        Run(ns, ["apply", "-c", policy]).ShouldSucceed();
        using var watch = new WatchProcess(ns, ["-c", policy]);

        var flush = Run(ns, ["flush", "-c", policy]).ShouldSucceed();

        Assert.DoesNotContain("watch runs", alone.Stderr);
        Assert.Contains("a tunnel-router watch runs on this host and restores what flush removed; stop it first", flush.Stderr);
        watch.WaitFor("route default via 10.10.10.2 dev tun0 table vpn was deleted by someone else: restored");
    }

    [Fact]
    public void Watch_backs_off_with_one_clear_line_from_a_rule_someone_keeps_deleting()
    {
        using var ns = Gateway();
        // vpn not fail-closed here: watch never backs off from a rule into a fail-closed table (nyet's below).
        var policy = Policy(ns);
        File.WriteAllText(policy, File.ReadAllText(policy).Replace("\"FailClosed\": [ \"nyet\", \"vpn\" ]", "\"FailClosed\": [ \"nyet\" ]"));
        Run(ns, ["apply", "-c", policy]).ShouldSucceed();
        using var watch = new WatchProcess(ns, ["-c", policy]);

        for (var i = 1; i <= 5; i++)
        {
            Eventually.True(() => ns.Ip("rule").Contains(Pool), () => $"not restored ({i}):\n{watch.Output}");
            ns.Ip("rule", "del", "pref", "1000", "from", "10.10.10.0/24");
            watch.WaitFor("rule 1000 from 10.10.10.0/24 lookup vpn was deleted by someone else: restored", i);
        }
        watch.WaitFor("keeps being deleted by someone else");
        ns.Ip("rule", "del", "pref", "1000", "from", "10.10.10.0/24");
        ns.Ip("-6", "rule", "del", "pref", "2010");
        watch.WaitFor("IPv6 rule 2010 from fd00:5::/64 lookup nyet was deleted by someone else: restored");

        Assert.Equal(1, watch.Count("keeps being deleted by someone else"));
        Assert.Contains("backing off", watch.Output);
        Assert.DoesNotContain(Pool, ns.Ip("rule"));
    }

    [Fact]
    public void Watch_never_backs_off_from_a_kill_switch_or_a_rule_into_a_fail_closed_table_deleted_ten_times_in_a_minute()
    {
        using var ns = Gateway();
        var policy = Policy(ns);
        Run(ns, ["apply", "-c", policy]).ShouldSucceed();
        using var watch = new WatchProcess(ns, ["-c", policy]);

        for (var i = 1; i <= 10; i++)
        {
            Eventually.True(() => ns.Ip("rule").Contains("lookup 201 proto 147") && ns.Ip("route", "show", "table", "201").Contains("unreachable default"),
                () => $"not restored ({i}):\n{watch.Output}");
            ns.Ip("route", "del", "unreachable", "default", "table", "201", "metric", "4294967295");
            ns.Ip("rule", "del", "pref", "2000");
            watch.WaitFor("route unreachable default table nyet metric 4294967295 was deleted by someone else: restored", i);
            watch.WaitFor("rule 2000 from 192.168.5.0/24 lookup nyet was deleted by someone else: restored", i);
        }

        Assert.Equal(0, watch.Count("keeps being deleted by someone else"));
        Eventually.True(() => ns.Ip("rule").Contains("from 192.168.5.0/24 lookup 201 proto 147"), () => watch.Output);
    }

    [Fact]
    public void Watch_keeps_the_last_good_policy_when_a_reload_finds_it_broken()
    {
        using var ns = Gateway();
        var policy = Policy(ns);
        using var watch = new WatchProcess(ns, ["-c", policy]);

        File.WriteAllText(policy, "{ \"Rules\": [ \"from nonsense lookup\" ] }");
        watch.Signal(1);
        watch.WaitFor("the policy cannot be re-read, keeping the last good one");
        ns.Ip("rule", "del", "pref", "2000");

        watch.WaitFor("rule 2000 from 192.168.5.0/24 lookup nyet was deleted by someone else: restored");
    }
}
