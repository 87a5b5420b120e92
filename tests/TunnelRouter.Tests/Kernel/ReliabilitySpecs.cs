using System.Diagnostics;
using TunnelRouter.Tests.Support;
using Xunit;
using Xunit.Abstractions;
using static TunnelRouter.Tests.Support.Hardening;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary>Load, repetition and failure at every step: the published binary never leaves a half-configured
/// host. Figures (wall times) go to the test output.</summary>
public class ReliabilitySpecs(ITestOutputHelper output)
{
    static string[] OpenVpnArgs(int i) => [$"tun{i}", "1500", "0", V4(i), "255.255.255.0", "init"];
    static string V4(int i) => $"10.{i}.0.1";
    static string V6(int i) => $"fd00:{i + 1:x}::1";

    static Dictionary<string, string> HookEnv(int i, string scriptType = "up", bool poolRules = true)
    {
        var env = SubnetEnv($"tun{i}", V4(i), "255.255.255.0", V6(i), 64, scriptType);
        if (poolRules) env["TUNNEL_ROUTER_POOLRULES"] = "true";
        return env;
    }

    /// <summary>No duplicate address detection: an IPv6 address's local route then exists at once, instead of
    /// appearing in the middle of a before/after comparison.</summary>
    static void QuietIpv6(NetNs ns) =>
        ns.Exec("/usr/sbin/sysctl", ["-qw", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0"]).ShouldSucceed();

    static NetNs WithTunnels(int count)
    {
        var ns = new NetNs();
        QuietIpv6(ns);
        for (var i = 0; i < count; i++) ns.AddTun($"tun{i}", $"{V4(i)}/24", $"{V6(i)}/64");
        // addrconf adds an IPv6 address's local route from a work queue, a moment later.
        var clock = Stopwatch.StartNew();
        while (ns.Ip("-6", "route", "show", "table", "local").Split('\n').Count(l => l.StartsWith("local fd00:")) < count)
        {
            if (clock.ElapsedMilliseconds > 60_000) throw new TimeoutException("the tunnels' IPv6 local routes did not appear in 60 s");
            Thread.Sleep(10);
        }
        return ns;
    }

    [Fact]
    public void Sixty_four_hooks_at_once_all_succeed_and_every_route_and_rule_is_present_exactly_once()
    {
        using var ns = WithTunnels(64);
        var runs = Enumerable.Range(0, 64).Select(i => (OpenVpnArgs(i), HookEnv(i))).ToList();

        var clock = Stopwatch.StartNew();
        var results = RunAtOnce(ns, runs);
        clock.Stop();

        output.WriteLine($"figure: 64 concurrent up hooks (pool rules on) finished in {clock.ElapsedMilliseconds} ms wall time");
        Assert.All(results, r => r.ShouldSucceed());
        var routes = Routes(ns).Where(l => l.Contains("proto 148")).ToList();
        var rules = Rules(ns).Where(l => l.Contains("proto 148")).ToList();
        NoDuplicates(routes);
        NoDuplicates(rules);
        for (var i = 0; i < 64; i++)
        {
            Assert.Single(routes, l => l.StartsWith($"-4 10.{i}.0.0/24 dev tun{i} table 200 "));
            Assert.Single(routes, l => l.StartsWith($"-6 fd00:{i + 1:x}::/64 dev tun{i} table 200 "));
            Assert.Single(rules, l => l.StartsWith($"-4 1000:\tfrom 10.{i}.0.0/24 lookup 200 "));
            Assert.Single(rules, l => l.StartsWith($"-6 1000:\tfrom fd00:{i + 1:x}::/64 lookup 200 "));
        }
        Assert.Equal(128, routes.Count);
        Assert.Equal(128, rules.Count);
    }

    [Fact]
    public void Up_ten_times_leaves_the_state_of_one_run_with_no_duplicate_rules()
    {
        using var ns = WithTunnels(1);
        Run(ns, OpenVpnArgs(0), HookEnv(0)).ShouldSucceed();
        var once = ns.Dump();

        for (var n = 0; n < 9; n++) Run(ns, OpenVpnArgs(0), HookEnv(0)).ShouldSucceed();

        Assert.Equal(once, ns.Dump());
        NoDuplicates(Rules(ns));
        Assert.Equal(2, Rules(ns).Count(l => l.Contains("proto 148")));
    }

    [Fact]
    public void A_failure_injected_at_every_step_of_up_leaves_the_kernel_as_before()
    {
        using var ns = WithTunnels(1);
        ns.Ip("route", "add", "192.0.2.0/24", "dev", "tun0", "table", "200");
        var before = ns.Dump();
        // v4 route, v6 route, v4 rule, v6 rule: four steps.
        var steps = Run(ns, ["up", "--dry-run"], HookEnv(0)).ShouldSucceed().Stderr.Split('\n').Count(l => l.StartsWith("[#]"));
        Assert.Equal(4, steps);

        for (var k = 0; k < steps; k++)
        {
            var env = HookEnv(0);
            env["TUNNEL_ROUTER_FAULT_AFTER"] = k.ToString();

            var up = Run(ns, OpenVpnArgs(0), env);

            Assert.NotEqual(0, up.ExitCode);
            Assert.Contains("injected fault", up.Stderr);
            Assert.Contains($"rolled back {k} change", up.Stderr);
            Assert.Equal(before, ns.Dump());
        }
    }

    [Fact]
    public void A_failure_injected_at_every_step_of_down_leaves_the_tunnel_as_it_was()
    {
        using var ns = WithTunnels(1);
        Run(ns, OpenVpnArgs(0), HookEnv(0)).ShouldSucceed();
        var up = ns.Dump();

        for (var k = 0; k < 4; k++)
        {
            var env = HookEnv(0, "down");
            env["TUNNEL_ROUTER_FAULT_AFTER"] = k.ToString();

            var down = Run(ns, OpenVpnArgs(0), env);

            Assert.NotEqual(0, down.ExitCode);
            Assert.Equal(up, ns.Dump());
        }
        Run(ns, OpenVpnArgs(0), HookEnv(0, "down")).ShouldSucceed();
        Assert.DoesNotContain("proto 148", string.Join("\n", Routes(ns).Concat(Rules(ns))));
    }

    /// <summary>Policy A, then B: B adds, replaces and deletes routes and rules, so every kind of step and
    /// its inverse is interrupted somewhere.</summary>
    static string PolicyA => Hardening.Policy(
        ["default via 192.168.1.1 dev wan table wan", "192.0.2.0/24 via 192.168.1.1 dev wan table wan", "blackhole 198.51.100.0/24 table wan"],
        ["from 10.10.10.0/24 lookup wan pref 2000", "fwmark 0x1 lookup wan pref 2010"]);

    static string PolicyB => Hardening.Policy(
        ["default via 192.168.1.254 dev wan table wan", "203.0.113.0/24 via 192.168.1.1 dev wan table wan", "blackhole 198.51.100.0/24 table wan",
         "2001:db8:1::/48 dev wan table wan"],
        ["from 10.10.10.0/24 lookup wan pref 2000", "from 10.20.0.0/16 lookup wan pref 2020", "-6 from fd00::/64 lookup wan pref 2030"]);

    static NetNs WithUplink()
    {
        var ns = new NetNs();
        QuietIpv6(ns);
        AddVeth(ns, "wan", "192.168.1.2/24");
        return ns;
    }

    [Fact]
    public void Apply_ten_times_leaves_the_state_of_one_run_with_no_duplicate_rules()
    {
        using var ns = WithUplink();
        var policy = WritePolicy(ns, PolicyA);
        Run(ns, ["apply", "--config", policy]).ShouldSucceed();
        var once = ns.Dump();

        for (var n = 0; n < 9; n++) Run(ns, ["apply", "--config", policy]).ShouldSucceed();

        Assert.Equal(once, ns.Dump());
        NoDuplicates(Rules(ns));
        Assert.Equal(2, Rules(ns).Count(l => l.Contains("proto 147")));
        Assert.Equal(0, Run(ns, ["plan", "--config", policy]).ExitCode);
    }

    [Fact]
    public void A_failure_injected_at_every_step_of_a_multi_step_apply_leaves_the_kernel_as_before()
    {
        using var ns = WithUplink();
        Run(ns, ["apply", "--config", WritePolicy(ns, PolicyA)]).ShouldSucceed();
        var before = ns.Dump();
        var b = WritePolicy(ns, PolicyB, "b.json");
        var steps = Run(ns, ["plan", "--config", b]).Stdout.Split('\n').Count(l => l.StartsWith("ip "));
        Assert.True(steps >= 6, $"policy B should take many steps from A, took {steps}");

        for (var k = 0; k < steps; k++)
        {
            var apply = Run(ns, ["apply", "--config", b], new Dictionary<string, string> { ["TUNNEL_ROUTER_FAULT_AFTER"] = k.ToString() });

            Assert.NotEqual(0, apply.ExitCode);
            Assert.Contains("injected fault", apply.Stderr);
            Assert.Equal(before, ns.Dump());
        }
        Run(ns, ["apply", "--config", b], new Dictionary<string, string> { ["TUNNEL_ROUTER_FAULT_AFTER"] = steps.ToString() }).ShouldSucceed();
        Assert.Equal(0, Run(ns, ["plan", "--config", b]).ExitCode);
        output.WriteLine($"figure: a failure injected at each of the {steps} steps of an apply; each rolled back to the state before");
    }

    [Fact]
    public void A_device_removed_between_plan_and_apply_makes_its_routes_wait_and_the_rest_goes_in()
    {
        using var ns = WithUplink();
        AddVeth(ns, "lan", "192.168.2.2/24");
        // A device that vanishes under a run (as under a hook) is not an error: its routes wait for it to come back.
        var policy = WritePolicy(ns, Hardening.Policy(
            ["192.0.2.0/24 via 192.168.1.1 dev wan table wan", "198.51.100.0/24 via 192.168.2.1 dev lan table wan"], []));
        var plan = Run(ns, ["plan", "--config", policy]);
        Assert.Equal(2, plan.ExitCode);
        ns.Ip("link", "del", "lan");

        var apply = Run(ns, ["apply", "--config", policy]).ShouldSucceed();

        Assert.Contains("waiting for lan: 1 route", apply.Stderr);
        Assert.Contains("192.0.2.0/24 via 192.168.1.1 dev wan", ns.Ip("route", "show", "table", "all"));
        Assert.DoesNotContain("198.51.100.0/24", ns.Ip("route", "show", "table", "all"));
    }

    /// <summary>Runs apply with the test flavour's fault point set to stop it (SIGSTOP) at <paramref name="point"/> — after
    /// that many kernel changes, or at a named step ("guard", "records") — and SIGKILLs its whole process tree there (the
    /// ip -batch child included, as systemd or the OOM killer would). The kill lands at the chosen point however fast or
    /// loaded the machine is; an apply that finishes without reaching it fails the test.</summary>
    static void ApplyAndKillAt(NetNs ns, string policy, string point)
    {
        var psi = new ProcessStartInfo("/usr/sbin/ip") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in (string[])["netns", "exec", ns.Name, Prerequisites.Binary, "apply", "--quiet", "--config", policy]) psi.ArgumentList.Add(a);
        psi.Environment.Clear();
        foreach (var (k, v) in TunnelRouterProcess.Environment(ns, new Dictionary<string, string> { ["TUNNEL_ROUTER_FAULT_AFTER"] = $"{point}:stop" })) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        _ = p.StandardOutput.ReadToEndAsync();
        // A condition, not a moment: stopped (state T) at the fault point. The ceiling only turns a hang into a failure.
        var deadline = DateTime.UtcNow.AddMinutes(5);
        while (!Stopped(p.Id))
        {
            if (p.HasExited)
                throw new Xunit.Sdk.XunitException($"apply finished (exit {p.ExitCode}) without reaching its fault point {point}: {stderr.Result}");
            if (DateTime.UtcNow > deadline)
            {
                p.Kill(entireProcessTree: true);
                throw new TimeoutException($"apply did not reach its fault point {point} within 5 minutes");
            }
            Thread.Sleep(5);
        }
        p.Kill(entireProcessTree: true);
        p.WaitForExit();
    }

    /// <summary>The state letter of /proc/PID/stat: T once the process stopped itself.</summary>
    static bool Stopped(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('T');
        }
        catch (IOException) { return false; }
    }

    [Fact]
    public void SIGKILL_at_chosen_points_of_a_5000_route_apply_is_repaired_by_the_next_apply()
    {
        using var ns = WithUplink();
        ns.AddTun("tun0", "10.20.0.1/24");
        // A live tunnel that follows the policy's PoolRules: every switch rewrites its record after the kernel changes.
        var tun = SubnetEnv("tun0", "10.20.0.1", "255.255.255.0");
        Run(ns, ["tun0", "1500", "0", "10.20.0.1", "255.255.255.0", "init"], tun).ShouldSucceed();
        var record = ns.RecordPath("tun0");
        // Two FailClosed policies that share half their routes and switch PoolRules: a run killed on the way from one to
        // the other leaves adds, deletes, rules, the guard or the records half done.
        string PolicyOf(int first) => WritePolicy(ns, $$"""
            { "Tables": { "wan": 100 }, "FailClosed": ["wan"], "PoolRules": {{(first > 0 ? "true" : "false")}},
              "Routes": [{{string.Join(",", Enumerable.Range(first, 5000).Select(i => $"\"blackhole 10.{100 + i / 256}.{i % 256}.0/24 table wan\""))}}],
              "Rules": ["from 10.10.{{first % 256}}.0/24 lookup wan pref 2000", "-6 from fd00::/64 lookup wan pref 2010"] }
            """, $"p{first}.json");
        string[] policies = [PolicyOf(0), PolicyOf(2500)];
        (string Kernel, string Guard, string Record) State() =>
            (ns.Dump(), ns.NftList("table", "inet", "tunnel_router_guard"), File.ReadAllText(record));

        // The kernel changes of a switch to policies[to], in the order apply makes them (the guard is nftables': not one
        // of the counted kernel changes).
        var plans = new List<string>[2];
        List<string> PlanTo(int to) => Run(ns, ["plan", "--config", policies[to]]).Stdout.Split('\n').Where(l => l.StartsWith("ip ")).ToList();
        var clock = Stopwatch.StartNew();
        Run(ns, ["apply", "--quiet", "--config", policies[1]]).ShouldSucceed();
        var full = clock.ElapsedMilliseconds;
        var converged1 = State();
        plans[0] = PlanTo(0);
        Run(ns, ["apply", "--quiet", "--config", policies[0]]).ShouldSucceed();
        (string Kernel, string Guard, string Record)[] converged = [State(), converged1];
        Assert.NotEqual(converged[0], converged[1]);
        plans[1] = PlanTo(1);

        // A switch: the rule into the closed table (the kill switches' part), the guard, 2,500 adds, 2,500 deletes, and
        // the live tunnel's pool rule last.
        int FirstDelete(int to) => plans[to].FindIndex(l => l.Contains(" route del "));
        int LastRule(int to) => plans[to].FindLastIndex(l => l.Contains(" rule "));
        for (var to = 0; to < 2; to++)
            Assert.True(FirstDelete(to) > 2000 && LastRule(to) == plans[to].Count - 1 && plans[to][LastRule(to) - 1].Contains(" route del "),
                $"a switch adds 2,500 routes, deletes 2,500, then its last rule: {string.Join(" | ", plans[to].Where(l => !l.Contains(" route ")))}");
        // Kill points in turn: the first switches to policies[1], the next back to policies[0], and so on.
        var points = new (string Name, string At)[]
        {
            ("before the first change", "0"),
            ("before the guard (the rules into the closed table are in)", "guard"),
            ("amid the adds", (FirstDelete(1) / 2).ToString()),
            ("amid the deletes", ((FirstDelete(0) + LastRule(0)) / 2).ToString()),
            ("amid the rules (before the last)", LastRule(1).ToString()),
            ("before the records (every kernel change made)", "records"),
        };
        var repair = new List<long>();
        var from = 0;
        foreach (var (name, at) in points)
        {
            var to = 1 - from;
            ApplyAndKillAt(ns, policies[to], at);
            var killed = State();

            // The kill switches hold wherever the kill landed (fail-closed).
            foreach (var family in (string[])["-4", "-6"])
                Assert.Contains(Routes(ns), l => l.StartsWith($"{family} unreachable default ") && l.Contains(" table 100 proto 147 metric 4294967295"));
            // Each point left what it should: the proof that the kill landed there, mid-change.
            switch (at)
            {
                case "0": Assert.Equal(converged[from], killed); break;
                case "guard":
                    Assert.Equal(converged[from].Guard, killed.Guard);
                    Assert.Contains(Rules(ns), l => l.StartsWith($"-4 2000:\tfrom 10.10.{(to == 1 ? 196 : 0)}.0/24 lookup 100 proto 147"));
                    break;
                case "records":
                    Assert.Equal((converged[to].Kernel, converged[to].Guard, converged[from].Record), killed);
                    break;
                default:
                    Assert.Equal(converged[to].Guard, killed.Guard);
                    Assert.NotEqual(converged[from].Kernel, killed.Kernel);
                    Assert.NotEqual(converged[to].Kernel, killed.Kernel);
                    break;
            }

            clock.Restart();
            Run(ns, ["apply", "--quiet", "--config", policies[to]]).ShouldSucceed();
            repair.Add(clock.ElapsedMilliseconds);

            Assert.Equal(converged[to], State());
            NoDuplicates(Rules(ns));
            NoDuplicates(Routes(ns));
            Assert.Equal(0, Run(ns, ["plan", "--config", policies[to]]).ExitCode);
            from = to;
        }
        output.WriteLine($"figure: 5000-route FailClosed apply from empty {full} ms; SIGKILL at {points.Length} chosen points of a switch " +
                         $"({plans[0].Count} kernel changes, the guard and a live tunnel's record); each next apply converged in {repair.Min()}-{repair.Max()} ms " +
                         "with no duplicates and no leftovers");
    }

    [Fact]
    public void Foreign_routes_rules_and_links_survive_every_command()
    {
        using var ns = WithUplink();
        ns.AddTun("tun0", "10.10.10.1/24", "fd00:4242:4242:4242::1/64");
        AddVeth(ns, "foreign0", "172.16.0.1/24");
        ns.Ip("route", "add", "192.0.2.0/24", "dev", "tun0", "table", "200");
        ns.Ip("route", "add", "198.18.0.0/24", "via", "192.168.1.1", "table", "100");
        ns.Ip("route", "add", "203.0.113.0/24", "via", "172.16.0.2", "proto", "static");
        ns.Ip("-6", "route", "add", "2001:db8::/64", "dev", "tun0", "table", "200");
        // Inside the hook's band (1000) and apply's band (2000), with the very selectors ours use.
        ns.Ip("rule", "add", "from", "10.10.10.0/24", "lookup", "200", "pref", "1000");
        ns.Ip("rule", "add", "from", "10.10.10.0/24", "lookup", "100", "pref", "2000");
        ns.Ip("rule", "add", "fwmark", "0x1", "lookup", "100", "pref", "2010", "protocol", "static");
        ns.Ip("-6", "rule", "add", "from", "fd00:4242:4242:4242::/64", "lookup", "200", "pref", "1000");
        var foreign = Routes(ns).Concat(Rules(ns)).Concat(ns.Ip("-o", "link", "show").Split('\n')
            .Where(l => l.Contains(':')).Select(l => l.Split(':')[1].Trim())).ToList();
        var policy = WritePolicy(ns, PolicyA);
        var hook = SubnetEnv("tun0", "10.10.10.1", "255.255.255.0", "fd00:4242:4242:4242::1");
        hook["TUNNEL_ROUTER_POOLRULES"] = "true";
        hook["TUNNEL_ROUTER_CONFIG"] = policy;

        var commands = new (string Name, string[] Args, Dictionary<string, string>? Env)[]
        {
            ("up", ["up"], hook), ("apply", ["apply", "--config", policy], null), ("up again", ["up"], hook),
            ("down", ["down"], hook), ("apply again", ["apply", "--config", policy], null), ("flush", ["flush"], null),
            ("up after flush", ["up"], hook), ("flush --all", ["flush", "--all"], null),
        };
        foreach (var (name, args, env) in commands)
        {
            Run(ns, args, env).ShouldSucceed();
            var now = Routes(ns).Concat(Rules(ns)).Concat(ns.Ip("-o", "link", "show").Split('\n').Where(l => l.Contains(':')).Select(l => l.Split(':')[1].Trim())).ToHashSet();
            var lost = foreign.Where(f => !now.Contains(f)).ToList();
            Assert.True(lost.Count == 0, $"after {name}, lost: {string.Join(" | ", lost)}");
        }
        Assert.DoesNotContain(Routes(ns).Concat(Rules(ns)), l => l.Contains("proto 147") || l.Contains("proto 148"));
    }
}
