using System.Diagnostics;
using TunnelRouter.Core;
using TunnelRouter.Host;

namespace TunnelRouter.Kernel;

/// <summary>
/// Applies <see cref="WriteRoutingConfig"/>: writes the daemon's file tunnel-router owns (atomically, in a
/// directory nobody else can write) and has the daemon read it again. A daemon that is not running is no
/// failure — the file is in place for its next start, and one warning says so; a daemon that refuses the
/// configuration is, and the applier's rollback then writes the old file back and reloads again.
/// <see cref="SettleOspf"/> then waits until the daemon runs OSPF on every interface it was given.
/// </summary>
/// <param name="kernel">the run's kernel: the settle check reads the links' addresses and announces a missed one again.</param>
public sealed class RoutingConfigHandler(Serilog.ILogger log, Func<IKernel> kernel) : IChangeHandler
{
    // Made on first use: the hook's path registers this handler but never writes a daemon's file.
    ProcessRunner? _runner;
    ProcessRunner Runner => _runner ??= new ProcessRunner();

    /// <summary>Daemons (and their control sockets) this run found not running: nothing to wait for.</summary>
    readonly HashSet<(RoutingDaemonKind, string?)> _notRunning = [];

    public bool Handles(Change change) => change is WriteRoutingConfig or SettleOspf;

    public void Apply(Change change)
    {
        if (change is SettleOspf settle)
        {
            Settle(settle);
            return;
        }
        var c = (WriteRoutingConfig)change;
        var dir = Path.GetDirectoryName(c.Path)!;
        if (!Directory.Exists(dir))
            throw new KernelException($"{dir} does not exist: is {(c.Daemon == RoutingDaemonKind.Bird ? "bird2" : "frr")} installed? (Routing.ConfigFile names {c.Path})");
        Host.SafeDirectory.Check(dir, "the routing daemon's configuration");
        // vtysh -f only adds: what the old file had and the new one lacks is taken back first.
        if (c.Daemon == RoutingDaemonKind.Frr && OspfConfig.FrrWithdraw(c.Old, c.Text) is { } withdraw)
            Reload(c, Vtysh(c.Control, ["-c", "configure terminal", .. withdraw.TrimEnd('\n').Split('\n').SelectMany(l => (string[])["-c", l.Trim()])]));
        OwnedFile.Replace(c.Path, c.Text);
        try
        {
            Reload(c, c.Daemon == RoutingDaemonKind.Bird ? Birdc(c) : Vtysh(c.Control, ["-f", c.Path]));
        }
        catch (KernelException)
        {
            // A change that fails is not undone by the applier (only those that took effect are): the file is
            // put back here, so the daemon's next start or reload finds what it ran before.
            if (c.Old is null) File.Delete(c.Path);
            else OwnedFile.Replace(c.Path, c.Old);
            throw;
        }
    }

    // Equivalent to: birdc [-s CONTROL] configure
    ProcessResult Birdc(WriteRoutingConfig c) =>
        Runner.Run(Tools.Birdc, [.. c.Control is null ? [] : (string[])["-s", c.Control], "configure"], check: false);

    // Equivalent to: vtysh [--vty_socket CONTROL] ARGS...
    ProcessResult Vtysh(string? control, string[] args) =>
        Runner.Run(Tools.Vtysh, [.. control is null ? [] : (string[])["--vty_socket", control], .. args], check: false);

    void Reload(WriteRoutingConfig c, ProcessResult r)
    {
        var said = (r.StandardOutput + r.StandardError).Trim();
        if (NotRunning(said))
        {
            log.Warning("{Message}", $"{(c.Daemon == RoutingDaemonKind.Bird ? "BIRD" : "FRR")} is not running ({c.Reload}: {OneLine(said)}); {c.Path} is in place for its next start");
            _notRunning.Add((c.Daemon, c.Control));
            return;
        }
        // birdc answers 0 even when the configuration is refused; it says "Reconfigured" (or "Reconfiguration
        // in progress") when it took it.
        var ok = c.Daemon == RoutingDaemonKind.Bird
            ? r.ExitCode == 0 && said.Contains("Reconfigur", StringComparison.Ordinal) && !said.Contains("error", StringComparison.OrdinalIgnoreCase)
            : r.ExitCode == 0;
        if (!ok) throw new KernelException($"{c.Reload} refused the configuration in {c.Path}: {OneLine(said)}");
    }

    /// <summary>
    /// Looks at the daemon every 200 ms until it runs OSPF on every configured interface that has an IPv4 address in
    /// the kernel; from the second second on, at most every two seconds, announces a missed address of an owned
    /// tunnel again (FRR) or sends a stanza ospfd has not acted on once more. Past the bound: one line naming each
    /// interface and why.
    /// </summary>
    void Settle(SettleOspf s)
    {
        if (_notRunning.Contains((s.Daemon, s.Control))) return;
        var k = kernel();
        var clock = Stopwatch.StartNew();
        var nudged = TimeSpan.Zero;
        for (var looks = 1; ; looks++)
        {
            var nudge = clock.Elapsed >= TimeSpan.FromSeconds(1) && clock.Elapsed - nudged >= TimeSpan.FromSeconds(2);
            if (RoutingDaemonProbe.Look(Runner, s, k.ReadLinks(), nudge) is not var (running, step)) return; // not running: the reload said so
            if (step.Done)
            {
                if (looks > 1) log.Information("{Daemon} runs OSPF on {Interfaces} after {Seconds} s", s.DaemonName,
                    string.Join(", ", running.Order(StringComparer.Ordinal)), Seconds(clock));
                return;
            }
            if (clock.Elapsed > s.Bound) throw new KernelException(OspfTakeUp.Failure(s, step, running));
            if (step.Reannounce.Count > 0 || step.Resend.Count > 0)
            {
                nudged = clock.Elapsed;
                foreach (var name in step.Reannounce.Select(r => r.Device).Concat(step.Resend).Distinct())
                    log.Warning("{Daemon} has not taken {Name} into OSPF after {Seconds} s: {Why}", s.DaemonName, name, Seconds(clock), step.Why[name]);
                foreach (var (device, address) in step.Reannounce)
                {
                    var replace = new ReplaceAddress(device, address);
                    log.Warning("[#] {Command}", replace.ToString());
                    k.Apply([replace]);
                }
                foreach (var name in step.Resend)
                {
                    log.Warning("[#] vtysh -c 'interface {Name}' -c 'no ip ospf area {Area}' and its stanza again", name, s.Ospf.Area);
                    var r = Vtysh(s.Control, [.. OspfTakeUp.FrrResend(s, name).SelectMany(l => (string[])["-c", l])]);
                    if (r.ExitCode != 0) throw new KernelException($"vtysh refused the stanza of {name} sent again: {OneLine(r.StandardOutput + r.StandardError)}");
                }
            }
            Thread.Sleep(200);
        }
    }

    static string Seconds(Stopwatch clock) => clock.Elapsed.TotalSeconds.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>What birdc and vtysh say when no daemon answers on the control socket.</summary>
    internal static bool NotRunning(string said) =>
        said.Contains("Unable to connect to server control socket", StringComparison.Ordinal)
        || said.Contains("failed to connect to any daemons", StringComparison.Ordinal);

    static string OneLine(string text) => string.Join("; ", text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
