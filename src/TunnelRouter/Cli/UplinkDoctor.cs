using System.Net.Sockets;
using TunnelRouter.Core;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;

namespace TunnelRouter.Cli;

/// <summary>
/// doctor's uplink check (docs/uplinks.md): for each tracked uplink and family, whether watch's probes can leave by it
/// — the kernel's own route lookup for a probe from the uplink's address (its rule into its own table must send it out of
/// its own device), and whether a raw ICMP socket bound to that address and device opens here (root or CAP_NET_RAW).
/// One line each.
/// </summary>
internal static class UplinkDoctor
{
    const string Check = "uplink probes";

    public static void Add(List<Finding> findings, ParsedPolicy policy, KernelSnapshot snapshot, RouteLookup lookup)
    {
        foreach (var (spec, uplink) in Reconciler.ResolvedUplinks(policy, snapshot))
        {
            if (spec.Track is not { } track) continue;
            foreach (var family in (ReadOnlySpan<AddressFamily>)[AddressFamily.InterNetwork, AddressFamily.InterNetworkV6])
            {
                if (uplink.Addresses.FirstOrDefault(a => a.Family == family) is not { } address) continue;
                var fam = family.IsV6() ? "IPv6" : "IPv4";
                var gateway = uplink.Gateways.FirstOrDefault(g => g.AddressFamily == family);
                var targets = track.TargetsOf(family, gateway).ToList();
                if (targets.Count == 0) continue;
                findings.Add(Probe(spec.Name, fam, uplink.Device, address.Address, targets[0], lookup));
            }
        }
    }

    static Finding Probe(string name, string fam, string device, System.Net.IPAddress source, System.Net.IPAddress target, RouteLookup lookup)
    {
        var what = $"{name} {fam}: a probe from {source} to {target}";
        // Equivalent to: ip route get TARGET from SOURCE (what the probe's socket, bound to SOURCE, gets)
        var (_, hop) = lookup.Get(new Packet(source.AddressFamily, source, target, Packet.LocalIif));
        if (!hop.Routed)
            return new Finding(Check, FindingLevel.Problem, $"{what} has no route: {hop.Error}",
                $"apply the policy (its rule 'from {source} lookup' the uplink's table and that table's default route), then run doctor again");
        if (hop.Device != device)
            return new Finding(Check, FindingLevel.Problem, $"{what} leaves by {hop.Device}, not by {device}: it would test another path",
                $"apply the policy: the uplink's rule 'from {source}' and its table send its probes out of {device}");
        try
        {
            using var socket = IcmpProbe.Open(device, source, 0);
        }
        catch (EnvironmentException e)
        {
            return new Finding(Check, FindingLevel.Problem, $"{what} cannot be sent: {e.Message}",
                "run watch as root, or with CAP_NET_RAW (AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW in its unit)");
        }
        return new Finding(Check, FindingLevel.Ok, $"{what} leaves by {device}{(hop.Gateway is { } g ? $" via {g}" : "")}{(hop.Table is { } t ? $" (table {t})" : "")}; a raw ICMP socket opens");
    }
}
