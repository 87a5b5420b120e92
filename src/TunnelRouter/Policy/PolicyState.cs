using TunnelRouter.Core;

namespace TunnelRouter.Policy;

/// <summary>Pure helpers between the parsed policy and the planner.</summary>
public static class PolicyState
{
    /// <summary>
    /// A route written without "dev" ("default via 192.168.1.1 table vpn") reads back from the kernel
    /// with the device the kernel chose. Where an owned route differs from a desired one only by that
    /// device, the desired route is the one in the kernel, so a second apply changes nothing.
    /// </summary>
    public static KernelState Settle(KernelState desired, KernelState current)
    {
        var unsettled = false;
        var packed = PackedRoutes.Of(desired.Routes);
        for (var i = 0; i < packed.Count && !unsettled; i++)
            unsettled = packed.At(i).Tail is { Device: null, Gateway: not null };
        if (!unsettled) return desired;
        // Indexed by key, built only when a route needs it: 10,000 routes must not scan 10,000 each.
        Dictionary<RouteKey, List<Route>>? byKey = null;
        Route Settled(Route want)
        {
            if (want.Device is not null || want.Gateway is null) return want;
            if (byKey is null)
            {
                byKey = [];
                foreach (var have in current.Routes)
                    if (have.Device is not null)
                    {
                        if (!byKey.TryGetValue(have.Key, out var list)) byKey[have.Key] = list = [];
                        list.Add(have);
                    }
            }
            return byKey.TryGetValue(want.Key, out var candidates)
                ? candidates.FirstOrDefault(have => have.Protocol == want.Protocol && (have with { Device = null }) == want) ?? want
                : want;
        }
        var routes = desired.Routes.Select(Settled).ToList();
        return new KernelState(routes, desired.Rules) { Nexthops = desired.Nexthops };
    }
}
