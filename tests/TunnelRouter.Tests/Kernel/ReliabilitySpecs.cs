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
            if (clock.ElapsedMilliseconds > 5000) throw new TimeoutException("the tunnels' IPv6 local routes did not appear");
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

    /// <summary>Runs apply and, with <paramref name="killAt"/>, SIGKILLs its whole process tree (the ip -batch child
    /// included, as systemd or the OOM killer would) once the first killAt kernel changes have taken effect: the test
    /// flavour's fault point stops the process there (TUNNEL_ROUTER_FAULT_AFTER=K:stop), so the kill lands mid-change
    /// however slow the loaded machine makes the run's start. Null: let it finish. Returns ms from the last change
    /// line to the end: the window of the kernel changes.</summary>
    static long ApplyAndKill(NetNs ns, string policy, int? killAt)
    {
        var changes = Run(ns, ["plan", "--config", policy]).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
        var printed = 0;
        var psi = new ProcessStartInfo("/usr/sbin/ip") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in (string[])["netns", "exec", ns.Name, Prerequisites.Binary, "apply", "--config", policy]) psi.ArgumentList.Add(a);
        psi.Environment.Clear();
        psi.Environment["TUNNEL_ROUTER_IPROUTE2DIR"] = Path.Combine(ns.StateDir, "iproute2");
        psi.Environment["TUNNEL_ROUTER_CONFIG"] = ""; // no policy file: the host's is never read
        psi.Environment["TUNNEL_ROUTER_LOCKFILE"] = Path.Combine(ns.StateDir, "lock");
        if (KernelBackend.Current is { } backend) psi.Environment["TUNNEL_ROUTER_BACKEND"] = backend;
        if (killAt is { } k) psi.Environment["TUNNEL_ROUTER_FAULT_AFTER"] = $"{k}:stop";
        using var firstChange = new ManualResetEventSlim();
        using var p = new Process { StartInfo = psi };
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data?.StartsWith("[#]") == true && Interlocked.Increment(ref printed) >= changes) firstChange.Set();
        };
        p.Start();
        p.BeginErrorReadLine();
        _ = p.StandardOutput.ReadToEndAsync();
        if (killAt is not null)
        {
            // Stopped (state T) at the fault point, or finished when the plan had fewer changes than that.
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (!p.HasExited && !Stopped(p.Id))
            {
                if (DateTime.UtcNow > deadline) throw new TimeoutException("apply neither stopped at its fault point nor finished");
                Thread.Sleep(5);
            }
            try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            p.WaitForExit();
            return 0;
        }
        if (!firstChange.Wait(60_000)) throw new TimeoutException($"apply printed {printed} of its {changes} changes");
        var clock = Stopwatch.StartNew();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new Xunit.Sdk.XunitException($"apply failed: exit {p.ExitCode}");
        return clock.ElapsedMilliseconds;
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
    public void SIGKILL_at_random_moments_of_a_5000_route_apply_is_repaired_by_the_next_apply()
    {
        using var ns = WithUplink();
        // Two policies that share half their routes: a run killed on the way from one to the other leaves
        // adds or deletes half done.
        string PolicyOf(int first) => WritePolicy(ns, Hardening.Policy(
            Enumerable.Range(first, 5000).Select(i => $"blackhole 10.{100 + i / 256}.{i % 256}.0/24 table wan"),
            [$"from 10.10.{first % 256}.0/24 lookup wan pref 2000", "-6 from fd00::/64 lookup wan pref 2010"]), $"p{first}.json");
        string[] policies = [PolicyOf(0), PolicyOf(2500)];

        var clock = Stopwatch.StartNew();
        ApplyAndKill(ns, policies[1], null);
        var full = clock.ElapsedMilliseconds;
        var converged1 = ns.Dump();
        // The kernel changes of one switch (2,500 adds, 2,500 deletes, two rules), timed: a figure.
        var window = ApplyAndKill(ns, policies[0], null);
        string[] converged = [ns.Dump(), converged1];
        Run(ns, ["flush"]).ShouldSucceed();

        var random = new Random(20260507);
        var present = new List<int>();
        var repair = new List<long>();
        var midway = 0;
        // 20 kills, each after a random number of the switch's 5,002 kernel changes (2,500 adds, 2,500 deletes, two rules).
        var kills = 0;
        for (var n = 0; n < 20; n++, kills++)
        {
            var policy = policies[n % 2];
            ApplyAndKill(ns, policy, random.Next(1, 5002));
            present.Add(ns.Ip("route", "show", "table", "100").Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
            var killed = ns.Dump();
            if (killed != converged[0] && killed != converged[1]) midway++;

            clock.Restart();
            Run(ns, ["apply", "--quiet", "--config", policy]).ShouldSucceed();
            repair.Add(clock.ElapsedMilliseconds);

            Assert.Equal(converged[n % 2], ns.Dump());
            NoDuplicates(Rules(ns));
            NoDuplicates(Routes(ns));
            Assert.Equal(0, Run(ns, ["plan", "--config", policy]).ExitCode);
        }
        output.WriteLine($"figure: 5000-route apply from empty {full} ms (kernel changes of a switch between the two policies: {window} ms); " +
                         $"{kills} SIGKILLs after a random number of its changes, {midway} of them mid-change, left {string.Join(",", present)} routes in the table; " +
                         $"each next apply converged in {repair.Min()}-{repair.Max()} ms with no duplicates and no leftovers");
        Assert.True(midway > 0, "no kill landed while the kernel was being changed; the test proved nothing");
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
