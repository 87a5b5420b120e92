using TunnelRouter.Core;
using TunnelRouter.Host;

namespace TunnelRouter.Kernel;

/// <summary>Asks a running routing daemon what it does: its OSPF neighbours (doctor), and which interfaces it runs OSPF on
/// (the apply's <see cref="SettleOspf"/>, doctor). Null where it does not answer.</summary>
public static class RoutingDaemonProbe
{
    /// <summary>The daemon's answer to a show command; null when it does not answer.</summary>
    // Equivalent to: birdc [-s CONTROL] ARGS...   /   vtysh [--vty_socket CONTROL] ARGS...
    public static string? Show(ProcessRunner runner, RoutingDaemonKind daemon, string? control, params string[] args)
    {
        var result = daemon == RoutingDaemonKind.Bird
            ? runner.Run(Tools.Birdc, [.. control is null ? [] : (string[])["-s", control], .. args], check: false)
            : runner.Run(Tools.Vtysh, [.. control is null ? [] : (string[])["--vty_socket", control], .. args], check: false);
        var said = result.StandardOutput + result.StandardError;
        return result.ExitCode != 0 || RoutingConfigHandler.NotRunning(said) ? null : said;
    }

    // Equivalent to: birdc [-s CONTROL] show ospf neighbors tunnel_router   /   vtysh [--vty_socket CONTROL] -c 'show ip ospf neighbor'
    public static IReadOnlyList<OspfNeighbour>? Neighbours(RoutingDaemonKind daemon, string? control)
    {
        var runner = new ProcessRunner(TimeSpan.FromSeconds(10));
        var said = daemon == RoutingDaemonKind.Bird
            ? Show(runner, daemon, control, "show", "ospf", "neighbors", OspfConfig.BirdProtocol)
            : Show(runner, daemon, control, "-c", "show ip ospf neighbor");
        if (said is null) return null;
        return daemon == RoutingDaemonKind.Bird ? OspfNeighbours.ParseBird(said) : OspfNeighbours.ParseFrr(said);
    }

    /// <summary>
    /// One look: the interfaces the daemon runs OSPF on, and what <see cref="OspfTakeUp.Step"/> makes of them beside the
    /// kernel's <paramref name="links"/>. Null when the daemon does not answer.
    /// Equivalent to: vtysh -c 'show ip ospf interface' (and 'show interface NAME' for each one missing) /
    /// birdc show ospf interface tunnel_router (and show interfaces)
    /// </summary>
    public static (IReadOnlySet<string> Running, OspfTakeUpStep Step)? Look(ProcessRunner runner, SettleOspf s, IReadOnlyList<Link> links, bool nudge)
    {
        var listed = s.Daemon == RoutingDaemonKind.Bird
            ? Show(runner, s.Daemon, s.Control, "show", "ospf", "interface", OspfConfig.BirdProtocol)
            : Show(runner, s.Daemon, s.Control, "-c", "show ip ospf interface");
        if (listed is null) return null;
        var running = s.Daemon == RoutingDaemonKind.Bird ? OspfTakeUp.ParseBirdOspfInterfaces(listed) : OspfTakeUp.ParseFrrOspfInterfaces(listed);
        var names = s.Ospf.Interfaces.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        var kernel = links.Where(l => names.Contains(l.Name)).ToDictionary(l => l.Name,
            l => (IReadOnlyList<InterfaceAddress>)l.Addresses.Where(a => a.Family == System.Net.Sockets.AddressFamily.InterNetwork).ToList(), StringComparer.Ordinal);
        IReadOnlyDictionary<string, DaemonLink>? bird = null;
        DaemonLink? Link(string name) => s.Daemon == RoutingDaemonKind.Bird
            ? ((bird ??= OspfTakeUp.ParseBirdInterfaces(Show(runner, s.Daemon, s.Control, "show", "interfaces") ?? "")).TryGetValue(name, out var l) ? l : null)
            : OspfTakeUp.ParseZebraInterface(name, Show(runner, s.Daemon, s.Control, "-c", $"show interface {name}") ?? "");
        return (running, OspfTakeUp.Step(s, kernel, running, Link, nudge));
    }
}
