using System.Net;

namespace TunnelRouter.Core;

/// <summary>
/// Dependency order of routes: a route via a gateway (not onlink) needs a route that makes the gateway
/// reachable, or the kernel refuses it ("Nexthop has invalid gateway"). With topology net30 the connected
/// route of the peer comes in the same run as "default via PEER"; whatever the order of the file, the route
/// that holds the gateway goes in first, and comes out last. Pure.
/// </summary>
public static class RouteOrder
{
    /// <summary>How many routes of the set must go in before each route: 0 for a route with no gateway or with
    /// onlink, else one more than the deepest route of the set (same table and family, not a default route)
    /// whose destination holds its gateway. A cycle counts as 0 where it closes.</summary>
    public static Dictionary<Route, int> Depths(IReadOnlyCollection<Route> routes)
    {
        var depths = new Dictionary<Route, int>(ReferenceEqualityComparer.Instance);
        var viaDepth = new Dictionary<(uint, IPAddress), int>();
        // Only gateways of this set are looked up, and each once: 100,000 prefix-file routes via one gateway cost one scan.
        var providers = new Dictionary<(uint, IPAddress), List<Route>>();
        List<Route> ProvidersOf(uint table, IPAddress gateway)
        {
            if (providers.TryGetValue((table, gateway), out var list)) return list;
            list = [.. routes.Where(p => p.Table == table && p.Destination.PrefixLength > 0 && p.Family == gateway.AddressFamily
                                         && p.Destination.Contains(gateway) && !gateway.Equals(p.Gateway))];
            return providers[(table, gateway)] = list;
        }
        int Via(uint table, IPAddress gateway)
        {
            if (viaDepth.TryGetValue((table, gateway), out var d)) return d;
            viaDepth[(table, gateway)] = 0;  // a cycle closes here
            var deepest = -1;
            foreach (var p in ProvidersOf(table, gateway)) deepest = Math.Max(deepest, Depth(p));
            return viaDepth[(table, gateway)] = deepest + 1;
        }
        int Depth(Route r)
        {
            if (depths.TryGetValue(r, out var d)) return d;
            return depths[r] = r.Gateway is { } g && !r.OnLink ? Via(r.Table, g) : 0;
        }
        foreach (var r in routes) Depth(r);
        return depths;
    }

    /// <summary>Adds: what holds a gateway before what goes via it. Deletes: the other way round. Otherwise the
    /// order given is kept.</summary>
    public static IEnumerable<Change> Sort(IEnumerable<Change> changes, bool deletes)
    {
        var list = changes.ToList();
        var routes = list.Select(RouteOf).OfType<Route>().ToList();
        if (!routes.Any(r => r.Gateway is not null && !r.OnLink)) return list;
        var depths = Depths(routes);
        int DepthOf(Change c) => RouteOf(c) is { } r ? depths[r] : 0;
        return deletes ? list.OrderByDescending(DepthOf) : list.OrderBy(DepthOf);
    }

    static Route? RouteOf(Change c) => c switch
    {
        AddRoute a => a.Route,
        ReplaceRoute r => r.New,
        DeleteRoute d => d.Route,
        _ => null,
    };
}
