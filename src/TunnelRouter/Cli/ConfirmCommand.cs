using System.Diagnostics;
using System.Globalization;
using TunnelRouter.Config;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;

namespace TunnelRouter.Cli;

/// <summary>
/// <c>apply --confirm SECONDS</c>, <c>confirm</c> and <c>rollback</c> (docs/remote-changes.md): an apply that reverts to the
/// policy of before — its file, the kernel's owned state and the routing daemon's file — unless it is confirmed in time.
/// </summary>
/// <remarks>
/// The timer is the binary itself, started detached (<c>setsid -f</c>: its own session, no terminal, stdin and stdout on
/// /dev/null) before the apply changes anything: neither the admin's SSH session dying nor the applying process being
/// killed stops it. It wakes every second to see whether the pending apply (<see cref="PendingConfirm"/>) is still its own,
/// so a confirm ends it within a second. Not a transient systemd timer: the same mechanism on every host (a container or
/// a router without systemd, the test bed), and nothing outside the run directory to clean up.
/// </remarks>
public static class ConfirmCommand
{
    const string Setsid = "/usr/bin/setsid";
    const string Shell = "/bin/sh";
    const int MaxSeconds = 86_400;

    /// <summary>apply's --confirm SECONDS; null without it. Checked before anything is read.</summary>
    public static int? Seconds(Context ctx)
    {
        var i = ctx.Args.Extra.ToList().IndexOf("--confirm");
        if (i < 0) return null;
        if (i + 1 >= ctx.Args.Extra.Count || !int.TryParse(ctx.Args.Extra[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var s) || s < 1 || s > MaxSeconds)
            throw new InputException("--confirm", $"'{(i + 1 < ctx.Args.Extra.Count ? Core.Net.Printable(ctx.Args.Extra[i + 1]) : "")}' is not a number of seconds from 1 to {MaxSeconds}");
        if (ctx.Args.DryRun) throw new InputException("--confirm", "goes with an apply that changes something, not with -n");
        if (ctx.ConfigPath is null) throw new InputException("--confirm", "needs a policy file, which the revert puts back as it was");
        return s;
    }

    /// <summary>Before apply changes anything (under the lock): the pending apply written and its timer started. A second
    /// --confirm while one is pending is refused: its revert would have two "befores".</summary>
    public static PendingConfirm Begin(Context ctx, ParsedPolicy policy, int seconds)
    {
        var lockFile = ctx.Options.LockFile;
        if (PendingConfirm.Read(lockFile) is { } pending)
            throw new InputException("--confirm", $"an apply --confirm is pending until {Clock(pending.Due)}; 'tunnel-router confirm' keeps it or 'tunnel-router rollback' reverts it, then apply again");
        var previous = OwnedFile.Read(LastGoodPolicy.ForLock(lockFile).Path, (int)StrictModes.MaxPolicyBytes)
            ?? throw new InputException("--confirm", "there is no earlier policy to return to (no last good policy yet): apply once without --confirm");
        var routingFile = policy.Routing?.ConfigFile;
        var now = DateTimeOffset.UtcNow;
        var begun = new PendingConfirm(Guid.NewGuid().ToString("N"), now.AddSeconds(seconds).ToUnixTimeMilliseconds(), now.ToUnixTimeMilliseconds(),
            Path.GetFullPath(ctx.ConfigPath!), previous, routingFile, routingFile is null ? null : OwnedFile.Read(routingFile));
        begun.Write(lockFile);
        try { StartTimer(ctx, begun); }
        catch
        {
            PendingConfirm.Delete(lockFile);
            throw;
        }
        ctx.Log.Information("tunnel-router: the policy goes back to the one before at {Due} unless 'tunnel-router confirm' arrives first", Clock(begun.Due));
        return begun;
    }

    /// <summary>The apply failed and rolled itself back: nothing waits for a confirm.</summary>
    public static void Abandon(Context ctx, PendingConfirm pending)
    {
        if (PendingConfirm.Read(ctx.Options.LockFile)?.Id == pending.Id) PendingConfirm.Delete(ctx.Options.LockFile);
    }

    /// <summary>What plan says while an apply waits for its confirm.</summary>
    public static string? PlanNote(Context ctx) =>
        PendingConfirm.Read(ctx.Options.LockFile) is { } p
            ? $"an apply --confirm is pending: unless 'tunnel-router confirm' arrives by {Clock(p.Due)}, the policy of before goes back"
            : null;

    public static int Confirm(Context ctx)
    {
        using (ctx.Lock())
        {
            if (PendingConfirm.Read(ctx.Options.LockFile) is not { } pending)
                throw new InputException("confirm", "nothing to confirm: no apply --confirm is pending");
            PendingConfirm.Delete(ctx.Options.LockFile);
            ctx.Log.Information("tunnel-router: confirmed: the policy applied at {Started} stays", Clock(DateTimeOffset.FromUnixTimeMilliseconds(pending.Started)));
        }
        return App.Ok;
    }

    /// <summary><c>rollback</c>: the revert now; <c>rollback --due ID</c> is the timer, which waits for the deadline first.</summary>
    public static int Rollback(Context ctx)
    {
        var lockFile = ctx.Options.LockFile;
        var due = ctx.Args.Extra.ToList().IndexOf("--due") is var i and >= 0 && i + 1 < ctx.Args.Extra.Count ? ctx.Args.Extra[i + 1] : null;
        if (due is null)
        {
            var pending = PendingConfirm.Read(lockFile) ?? throw new InputException("rollback", "nothing to roll back: no apply --confirm is pending");
            Revert(ctx, pending, "rollback", null);
            return App.Ok;
        }
        while (true)
        {
            // A confirm, a rollback or a newer apply --confirm ends this timer: the pending apply is no longer its own.
            if (PendingConfirm.Read(lockFile) is not { } pending || pending.Id != due) return App.Ok;
            var left = pending.Due - DateTimeOffset.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                Revert(ctx, pending, $"no 'tunnel-router confirm' by {Clock(pending.Due)}", pending.Due);
                return App.Ok;
            }
            Thread.Sleep(left < TimeSpan.FromSeconds(1) ? left : TimeSpan.FromSeconds(1));
        }
    }

    /// <summary>
    /// The policy file (and, set aside, its conf.d fragments) back to the text of before, the routing daemon's file back
    /// as it was, a running watch told to re-read the policy (SIGHUP), then the old policy applied by the binary itself.
    /// Applying the old policy never opens a kill switch it keeps: apply removes only what the old policy does not want.
    /// </summary>
    static void Revert(Context ctx, PendingConfirm pending, string why, DateTimeOffset? deadline)
    {
        var lockFile = ctx.Options.LockFile;
        var path = pending.PolicyPath;
        using (ctx.Lock())
        {
            if (PendingConfirm.Read(lockFile)?.Id != pending.Id) return;
            // The abandoned policy stays beside, for the admin to mend and apply again.
            if (OwnedFile.Read(path, (int)StrictModes.MaxPolicyBytes) is { } abandoned)
                OwnedFile.Replace(path + ".rolled-back", abandoned, (UnixFileMode)0b110_000_000);
            OwnedFile.Replace(path, pending.Previous, File.Exists(path) ? File.GetUnixFileMode(path) & (UnixFileMode)0b111_101_101 : OwnedFile.FileMode644);
            // The policy of before is one document (the last good policy: fragments merged in): fragments stay out of it.
            foreach (var fragment in PolicyFragments.Find(path)) File.Move(fragment, fragment + ".rolled-back", overwrite: true);
            if (pending.RoutingFile is { } routing)
            {
                if (pending.RoutingText is { } text) OwnedFile.Replace(routing, text);
                else File.Delete(routing);
            }
            PendingConfirm.Delete(lockFile);
            ctx.Log.Warning("tunnel-router: warning: rolling back ({Why}): {Path} is the policy of before again (the abandoned one is {Path}.rolled-back)",
                why, path, path);
        }
        if (WatchPid(lockFile) is { } watch)
        {
            ctx.Log.Information("tunnel-router: telling watch (pid {Pid}) to re-read the policy", watch);
            Interop.Libc.kill(watch, 1); // SIGHUP: watch re-reads the policy and follows it
        }
        var run = new ProcessRunner(TimeSpan.FromMinutes(5)).Run(Environment.ProcessPath!, ["apply", .. CommonArgs(ctx, path)], check: false,
            environment: OwnEnvironment(ctx));
        foreach (var line in run.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries)) ctx.Log.Information("{Line}", line);
        if (run.ExitCode != 0) throw new EnvironmentException($"the revert's apply of {path} failed (exit {run.ExitCode}); run 'tunnel-router apply' and read its errors");
        if (deadline is { } d)
            ctx.Log.Information("tunnel-router: rolled back: the kernel holds the policy of before, {Ms} ms after the deadline",
                (long)(DateTimeOffset.UtcNow - d).TotalMilliseconds);
        else ctx.Log.Information("tunnel-router: rolled back: the kernel holds the policy of before");
    }

    /// <summary>The timer: this binary, detached from the terminal and the applying process, its messages appended to
    /// confirm.log in the run directory.</summary>
    static void StartTimer(Context ctx, PendingConfirm pending)
    {
        var log = Path.Combine(Path.GetDirectoryName(PendingConfirm.PathFor(ctx.Options.LockFile))!, "confirm.log");
        new ProcessRunner().Run(Shell,
            ["-c", "log=$1; shift; exec " + Setsid + " -f \"$@\" </dev/null >/dev/null 2>>\"$log\"", "sh", log,
             Environment.ProcessPath!, "rollback", "--due", pending.Id, .. CommonArgs(ctx, pending.PolicyPath)],
            environment: OwnEnvironment(ctx));
    }

    /// <summary>The policy file and the command line's Key=Value settings, as the applying run had them.</summary>
    static IEnumerable<string> CommonArgs(Context ctx, string policy) =>
        ["-c", policy, .. ctx.Args.Overrides.SelectMany(kv => new[] { "--set", $"{kv.Key}={kv.Value}" })];

    /// <summary>The TUNNEL_ROUTER_* settings of the environment the command was run with (the tools it runs get nothing else).</summary>
    static Dictionary<string, string> OwnEnvironment(Context ctx) =>
        ctx.Environment.Where(kv => kv.Key.StartsWith(ConfigLoader.EnvPrefix, StringComparison.Ordinal)).ToDictionary(kv => kv.Key, kv => kv.Value);

    /// <summary>The running watch's process: the one holding its lock file open.</summary>
    static int? WatchPid(string lockFile)
    {
        if (!WatchCommand.Running(lockFile)) return null;
        var target = WatchCommand.LockPath(lockFile);
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || pid == Environment.ProcessId) continue;
            try
            {
                foreach (var fd in Directory.EnumerateFileSystemEntries(Path.Combine(dir, "fd")))
                    if (new FileInfo(fd).LinkTarget == target) return pid;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        return null;
    }

    static string Clock(DateTimeOffset t) => t.ToLocalTime().ToString("HH:mm:ss", CultureInfo.InvariantCulture);
}
