using Serilog;
using TunnelRouter.Core;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;

namespace TunnelRouter.Cli;

/// <summary>
/// watch's hook for uplink health (docs/uplinks.md): a tracker runs while the policy has a Failover line or a Track; each
/// re-plan tells it the uplinks as they resolve now and takes their health into the snapshot
/// (<see cref="KernelSnapshot.UplinkStates"/>), so the one pure plan moves a table's default route.
/// </summary>
internal static class WatchUplinks
{
    /// <summary>Where watch writes the uplinks' states for <c>status</c>: beside its lock, one per network namespace.</summary>
    public static string StatusPath(string lockFile) => Path.ChangeExtension(WatchCommand.LockPath(lockFile), ".uplinks");

    /// <summary>The snapshot with the uplinks' health; starts, reconfigures or stops <paramref name="tracker"/> to match
    /// the policy.</summary>
    public static KernelSnapshot WithHealth(ref UplinkTracker? tracker, ParsedPolicy policy, KernelSnapshot snapshot, ILogger log, string lockFile)
    {
        var wanted = policy.Failover.Count > 0 || policy.Uplinks.Any(u => u.Track is not null);
        if (!wanted)
        {
            tracker?.Dispose();
            tracker = null;
            return snapshot;
        }
        tracker ??= new UplinkTracker(log, StatusPath(lockFile));
        tracker.Configure(Targets(policy, snapshot));
        return snapshot with { UplinkStates = tracker.States() };
    }

    /// <summary>Each resolved uplink's families: its address, gateway and the track's targets of that family.</summary>
    public static List<UplinkTracker.Target> Targets(ParsedPolicy policy, KernelSnapshot snapshot)
    {
        var targets = new List<UplinkTracker.Target>();
        foreach (var (spec, uplink) in Reconciler.ResolvedUplinks(policy, snapshot))
            foreach (var g in uplink.Gateways)
                if (uplink.Addresses.FirstOrDefault(a => a.Family == g.AddressFamily) is { } source)
                    targets.Add(new UplinkTracker.Target(new UplinkPath(spec.Name, g.AddressFamily), uplink.Device, source.Address, g,
                        [.. spec.Track?.TargetsOf(g.AddressFamily, g) ?? []], spec.Track));
        return targets;
    }
}
