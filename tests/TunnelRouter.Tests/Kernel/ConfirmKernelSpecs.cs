using System.Diagnostics;
using System.Text.Json;
using TunnelRouter.Tests.Support;
using Xunit;
using Xunit.Abstractions;
using static TunnelRouter.Tests.Support.Hardening;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary>apply --confirm SECONDS, confirm and rollback with real processes and timers: the policy of before (file and
/// kernel) comes back unless confirmed, whatever happens to the applying process, and no revert opens a kill switch.</summary>
public class ConfirmKernelSpecs(ITestOutputHelper output)
{
    // Before: a default route of table wan. After (the change to confirm): that route gone, another one there. Both keep
    // table vpn fail-closed: its kill switches must hold through every apply and revert.
    static readonly string Before = Hardening.Policy(["default via 192.168.1.1 table wan"], [], "\"wan\": 100, \"vpn\": 200").Replace("\"Rules\"", "\"FailClosed\": [ \"vpn\" ], \"Rules\"");
    static readonly string After = Hardening.Policy(["10.9.0.0/16 via 192.168.1.1 table wan"], [], "\"wan\": 100, \"vpn\": 200").Replace("\"Rules\"", "\"FailClosed\": [ \"vpn\" ], \"Rules\"");

    static (NetNs Ns, string Policy) Host(bool edited = true)
    {
        var ns = new NetNs();
        AddVeth(ns, "wan", "192.168.1.2/24");
        var policy = WritePolicy(ns, Before);
        Run(ns, ["apply", "--config", policy]).ShouldSucceed();
        if (edited) WritePolicy(ns, After);
        return (ns, policy);
    }

    static string Pending(NetNs ns) => Path.Combine(ns.StateDir, "confirm.json");

    static bool HasBefore(NetNs ns) =>
        ns.Ip("route", "show", "table", "100").Contains("default via 192.168.1.1") && !ns.Ip("route", "show", "table", "100").Contains("10.9.0.0/16");

    static bool HasAfter(NetNs ns) =>
        ns.Ip("route", "show", "table", "100").Contains("10.9.0.0/16") && !ns.Ip("route", "show", "table", "100").Contains("default");

    static bool KillSwitchesHold(NetNs ns) =>
        ns.Ip("-4", "route", "show", "table", "200").Contains("unreachable default") && ns.Ip("-6", "route", "show", "table", "200").Contains("unreachable default");

    /// <summary>The timers still running for this namespace's policy (a confirm or a rollback ends them within a second).</summary>
    static int Timers(string policy) =>
        Directory.EnumerateDirectories("/proc").Count(d =>
        {
            try { return File.ReadAllText(Path.Combine(d, "cmdline")).Split('\0') is var a && a.Contains("--due") && a.Contains(policy); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
        });

    static void Reverted(NetNs ns, string policy)
    {
        Assert.True(HasBefore(ns));
        Assert.Equal(Before, File.ReadAllText(policy));
        Assert.Equal(After, File.ReadAllText(policy + ".rolled-back"));
        Assert.False(File.Exists(Pending(ns)));
        Assert.Equal(0, Run(ns, ["plan", "--config", policy]).ExitCode);
    }

    [Fact]
    public void A_confirm_in_time_keeps_the_change_and_ends_the_timer()
    {
        var (ns, policy) = Host();
        using var _ = ns;

        var apply = Run(ns, ["apply", "--confirm", "30", "--config", policy]);
        var plan = Run(ns, ["plan", "--config", policy]);
        var confirm = Run(ns, ["confirm"]);

        Assert.Equal(0, apply.ExitCode);
        Assert.Contains("unless 'tunnel-router confirm' arrives first", apply.Stderr);
        Assert.Contains("an apply --confirm is pending", plan.Stderr);
        Assert.Equal(0, confirm.ExitCode);
        Assert.Contains("confirmed", confirm.Stderr);
        Assert.False(File.Exists(Pending(ns)));
        Eventually.True(() => Timers(policy) == 0, () => "the timer did not end after the confirm", 5_000);
        Assert.True(HasAfter(ns));
        Assert.Equal(After, File.ReadAllText(policy));
        Assert.Equal(1, Run(ns, ["confirm"]).ExitCode);
    }

    [Fact]
    public void Without_a_confirm_the_policy_and_the_kernel_of_before_come_back_and_the_kill_switch_never_opens()
    {
        var (ns, policy) = Host();
        using var _ = ns;

        var apply = Run(ns, ["apply", "--confirm", "2", "--config", policy]);
        Assert.Equal(0, apply.ExitCode);
        Assert.True(HasAfter(ns));
        var deadline = DateTimeOffset.FromUnixTimeMilliseconds(JsonDocument.Parse(File.ReadAllText(Pending(ns))).RootElement.GetProperty("deadline").GetInt64());
        var samples = 0;
        var open = 0;
        Eventually.True(() =>
        {
            samples++;
            if (!KillSwitchesHold(ns)) open++;
            return HasBefore(ns);
        }, () => $"the kernel was not reverted; confirm.log: {File.ReadAllText(Path.Combine(ns.StateDir, "confirm.log"))}");
        var restored = DateTimeOffset.UtcNow;

        Assert.Equal(0, open);
        output.WriteLine($"revert: kernel restored {(restored - deadline).TotalMilliseconds:0} ms after the deadline (polled every 20 ms, {samples} samples, kill switch held in all)");
        Eventually.True(() => !File.Exists(Pending(ns)), () => "confirm.json stayed", 5_000);
        Reverted(ns, policy);
        Assert.True(KillSwitchesHold(ns));
    }

    [Fact]
    public void The_revert_comes_when_the_applying_process_and_its_session_are_killed()
    {
        var (ns, policy) = Host();
        using var _ = ns;
        // The admin's SSH session: the apply runs in a session of its own (its shell, the session leader, says its pid), which
        // dies with SIGKILL, every process of it, right after the apply went in.
        var psi = new ProcessStartInfo("/usr/bin/setsid") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])["/bin/sh", "-c", "echo $$; \"$@\"; exec sleep 60", "sh", "/usr/sbin/ip", "netns", "exec", ns.Name, Prerequisites.Binary, "apply", "--confirm", "2", "--config", policy])
            psi.ArgumentList.Add(a);
        psi.Environment.Clear();
        foreach (var (k, v) in Environment(ns)) psi.Environment[k] = v;
        using var session = Process.Start(psi)!;
        var leader = int.Parse(session.StandardOutput.ReadLine()!);
        Eventually.True(() => HasAfter(ns), () => "the apply did not go in", 15_000);

        // procps-ng's kill reads "-KILL -12345" as signal options and sends SIGKILL to group -1, i.e. every process on the
        // machine: the process group goes after "--", and only a group that is the session's own is ever signalled.
        Assert.True(leader > 1 && leader != System.Environment.ProcessId, $"the session said pid {leader}");
        Sh.Run("/bin/kill", ["-s", "KILL", "--", $"-{leader}"]);
        session.WaitForExit();

        Eventually.True(() => HasBefore(ns), () => "the kernel was not reverted after the session died");
        Eventually.True(() => !File.Exists(Pending(ns)), () => "confirm.json stayed", 5_000);
        Reverted(ns, policy);
        Assert.True(KillSwitchesHold(ns));
    }

    [Fact]
    public void Rollback_reverts_at_once_and_a_running_watch_follows_the_policy_of_before()
    {
        var (ns, policy) = Host(edited: false);
        using var _ = ns;
        using var watch = new WatchProcess(ns, ["-c", policy]);
        WritePolicy(ns, After);
        Assert.Equal(0, Run(ns, ["apply", "--confirm", "60", "--config", policy]).ExitCode);

        var rollback = Run(ns, ["rollback"]);

        Assert.Equal(0, rollback.ExitCode);
        Assert.Contains("rolling back (rollback)", rollback.Stderr);
        Reverted(ns, policy);
        watch.WaitFor("re-read");
        // watch now keeps the policy of before: a deletion of its route is restored, the abandoned route never comes back.
        ns.Ip("route", "del", "default", "table", "100");
        Eventually.True(() => HasBefore(ns), () => $"watch did not restore the route of before; it said:\n{watch.Output}");
        Assert.Equal(0, Run(ns, ["plan", "--config", policy]).ExitCode);
        Eventually.True(() => Timers(policy) == 0, () => "the timer did not end after the rollback", 5_000);
        Assert.Equal(1, Run(ns, ["rollback"]).ExitCode);
    }

    [Fact]
    public void A_second_confirm_while_one_is_pending_is_refused_and_changes_nothing()
    {
        var (ns, policy) = Host();
        using var _ = ns;
        Assert.Equal(0, Run(ns, ["apply", "--confirm", "60", "--config", policy]).ExitCode);
        var pending = File.ReadAllText(Pending(ns));
        WritePolicy(ns, Before.Replace("default via", "default via 192.168.1.1 metric 5 table wan\", \"default via"));
        var before = ns.Dump();

        var second = Run(ns, ["apply", "--confirm", "60", "--config", policy]);

        Assert.Equal(1, second.ExitCode);
        Assert.Contains("--confirm: an apply --confirm is pending until", second.Stderr);
        Assert.Equal(before, ns.Dump());
        Assert.Equal(pending, File.ReadAllText(Pending(ns)));
        Run(ns, ["rollback"]).ShouldSucceed();
        Eventually.True(() => Timers(policy) == 0, () => "the timer did not end after the rollback", 5_000);
    }

    [Fact]
    public void A_confirm_with_no_policy_of_before_is_refused()
    {
        using var ns = new NetNs();
        AddVeth(ns, "wan", "192.168.1.2/24");
        var policy = WritePolicy(ns, After);

        var apply = Run(ns, ["apply", "--confirm", "30", "--config", policy]);

        Assert.Equal(1, apply.ExitCode);
        Assert.Contains("--confirm: there is no earlier policy to return to", apply.Stderr);
        Assert.False(File.Exists(Pending(ns)));
        Assert.DoesNotContain("10.9.0.0/16", ns.Ip("route", "show", "table", "all"));
    }
}
