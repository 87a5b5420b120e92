using TunnelRouter.Core;

namespace TunnelRouter.Kernel;

/// <summary>Asks a running routing daemon about its OSPF neighbours (doctor); null when it does not answer.</summary>
public static class RoutingDaemonProbe
{
    // Equivalent to: birdc [-s CONTROL] show ospf neighbors tunnel_router   /   vtysh [--vty_socket CONTROL] -c 'show ip ospf neighbor'
    public static IReadOnlyList<OspfNeighbour>? Neighbours(RoutingDaemonKind daemon, string? control)
    {
        var runner = new ProcessRunner(TimeSpan.FromSeconds(10));
        var result = daemon == RoutingDaemonKind.Bird
            ? runner.Run(Tools.Birdc, [.. control is null ? [] : (string[])["-s", control], "show", "ospf", "neighbors", OspfConfig.BirdProtocol], check: false)
            : runner.Run(Tools.Vtysh, [.. control is null ? [] : (string[])["--vty_socket", control], "-c", "show ip ospf neighbor"], check: false);
        var said = result.StandardOutput + result.StandardError;
        if (result.ExitCode != 0 || RoutingConfigHandler.NotRunning(said)) return null;
        return daemon == RoutingDaemonKind.Bird ? OspfNeighbours.ParseBird(said) : OspfNeighbours.ParseFrr(said);
    }
}
