using TunnelRouter.Core;

namespace TunnelRouter.Kernel;

/// <summary>
/// Applies <see cref="WriteRoutingConfig"/>: writes the daemon's file tunnel-router owns (atomically, in a
/// directory nobody else can write) and has the daemon read it again. A daemon that is not running is no
/// failure — the file is in place for its next start, and one warning says so; a daemon that refuses the
/// configuration is, and the applier's rollback then writes the old file back and reloads again.
/// </summary>
public sealed class RoutingConfigHandler(Action<string> warn) : IChangeHandler
{
    // Made on first use: the hook's path registers this handler but never writes a daemon's file.
    ProcessRunner? _runner;
    ProcessRunner Runner => _runner ??= new ProcessRunner();

    public bool Handles(Change change) => change is WriteRoutingConfig;

    public void Apply(Change change)
    {
        var c = (WriteRoutingConfig)change;
        var dir = Path.GetDirectoryName(c.Path)!;
        if (!Directory.Exists(dir))
            throw new KernelException($"{dir} does not exist: is {(c.Daemon == RoutingDaemonKind.Bird ? "bird2" : "frr")} installed? (Routing.ConfigFile names {c.Path})");
        OwnedFile.CheckDirectory(dir, "the routing daemon's configuration");
        // vtysh -f only adds: what the old file had and the new one lacks is taken back first.
        if (c.Daemon == RoutingDaemonKind.Frr && OspfConfig.FrrWithdraw(c.Old, c.Text) is { } withdraw)
            Reload(c, Vtysh(c, ["-c", "configure terminal", .. withdraw.TrimEnd('\n').Split('\n').SelectMany(l => (string[])["-c", l.Trim()])]));
        OwnedFile.Replace(c.Path, c.Text);
        try
        {
            Reload(c, c.Daemon == RoutingDaemonKind.Bird ? Birdc(c) : Vtysh(c, ["-f", c.Path]));
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
    ProcessResult Vtysh(WriteRoutingConfig c, string[] args) =>
        Runner.Run(Tools.Vtysh, [.. c.Control is null ? [] : (string[])["--vty_socket", c.Control], .. args], check: false);

    void Reload(WriteRoutingConfig c, ProcessResult r)
    {
        var said = (r.StandardOutput + r.StandardError).Trim();
        if (NotRunning(said))
        {
            warn($"{(c.Daemon == RoutingDaemonKind.Bird ? "BIRD" : "FRR")} is not running ({c.Reload}: {OneLine(said)}); {c.Path} is in place for its next start");
            return;
        }
        // birdc answers 0 even when the configuration is refused; it says "Reconfigured" (or "Reconfiguration
        // in progress") when it took it.
        var ok = c.Daemon == RoutingDaemonKind.Bird
            ? r.ExitCode == 0 && said.Contains("Reconfigur", StringComparison.Ordinal) && !said.Contains("error", StringComparison.OrdinalIgnoreCase)
            : r.ExitCode == 0;
        if (!ok) throw new KernelException($"{c.Reload} refused the configuration in {c.Path}: {OneLine(said)}");
    }

    /// <summary>What birdc and vtysh say when no daemon answers on the control socket.</summary>
    internal static bool NotRunning(string said) =>
        said.Contains("Unable to connect to server control socket", StringComparison.Ordinal)
        || said.Contains("failed to connect to any daemons", StringComparison.Ordinal);

    static string OneLine(string text) => string.Join("; ", text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
