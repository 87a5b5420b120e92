using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;

namespace TunnelRouter.Cli;

/// <summary>doctor's checks of the Routing section: the daemon answers, every tunnel OSPF runs over has a
/// Full adjacency, and a neighbour stuck exchanging databases is named as the MTU mismatch it usually is.</summary>
public static class RoutingDaemonCheck
{
    public static void Add(List<Finding> findings, RoutingSpec routing, KernelSnapshot snapshot, IReadOnlyList<TunnelConfigEntry> tunnels)
    {
        var name = routing.Daemon == RoutingDaemonKind.Bird ? "BIRD" : "FRR";
        // An interface configured for OSPF that the daemon does not run OSPF on (FRR 8.4's zebra drops an address made
        // an instant after its link): no adjacency can ever form there, whatever the other end does.
        var notRunning = new HashSet<string>(StringComparer.Ordinal);
        if (RoutingDaemonProbe.Look(new ProcessRunner(TimeSpan.FromSeconds(10)), routing.Settler(tunnels), snapshot.Links, nudge: false) is var (_, step))
            foreach (var missing in step.Missing)
            {
                notRunning.Add(missing);
                findings.Add(new Finding("routing", FindingLevel.Problem, $"{missing}: configured for OSPF, but {name} does not run OSPF on it: {step.Why[missing]}",
                    step.Fix[missing]));
            }
        IReadOnlyList<OspfNeighbour>? neighbours;
        try { neighbours = RoutingDaemonProbe.Neighbours(routing.Daemon, routing.Control); }
        catch (TunnelRouterException e) { neighbours = null; findings.Add(new Finding("routing", FindingLevel.Problem, e.Message)); return; }
        if (neighbours is null)
        {
            findings.Add(new Finding("routing", FindingLevel.Problem, $"{name} does not answer on {routing.Control ?? "its default control socket"}",
                routing.Daemon == RoutingDaemonKind.Bird
                    ? $"start it (systemctl start bird); its bird.conf must include {routing.ConfigFile}, e.g. include \"{Path.GetDirectoryName(routing.ConfigFile)}/tunnel-router*.conf\";"
                    : "start it (systemctl start frr) with ospfd enabled in /etc/frr/daemons"));
            return;
        }
        foreach (var i in routing.Ospf.Interfaces.Where(i => !i.Stub && !notRunning.Contains(i.Name)))
        {
            var mtu = snapshot.Links.FirstOrDefault(l => l.Name == i.Name)?.Mtu;
            var on = neighbours.Where(n => n.Interface == i.Name).ToList();
            if (on.Any(n => n.IsFull))
                findings.Add(new Finding("routing", FindingLevel.Ok,
                    $"{i.Name}: OSPF adjacency Full with {string.Join(", ", on.Where(n => n.IsFull).Select(n => n.RouterId))}{(mtu is null ? "" : $" (mtu {mtu})")}"));
            else if (on.FirstOrDefault(n => n.IsStuckOnMtu) is { } stuck)
                findings.Add(new Finding("routing", FindingLevel.Problem,
                    $"{i.Name}: neighbour {stuck.RouterId} stays in {stuck.State}: the two ends' MTUs most likely differ (ours is {mtu?.ToString() ?? "unknown"})",
                    "give the tunnel the same Mtu on both sites (tunnel-router computes it from the underlay: compare 'ip link show' on each end)"));
            else if (mtu is null)
                findings.Add(new Finding("routing", FindingLevel.Problem, $"{i.Name}: no such link, so OSPF cannot run over it", "apply the policy, or remove it from Routing.Interfaces"));
            else
                findings.Add(new Finding("routing", FindingLevel.Problem, $"{i.Name}: no OSPF neighbour{(on.Count == 0 ? "" : $" past {on[0].State}")} (mtu {mtu})",
                    "check the other end runs OSPF on its side of the tunnel with the same area, hello and dead intervals, and that GRE passes the underlay's firewall"));
        }
    }
}
