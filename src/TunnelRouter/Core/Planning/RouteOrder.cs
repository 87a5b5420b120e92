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
    /// <summary>
    /// Reorders the route changes of <paramref name="plan"/>[start..start+count) among their own places (rules
    /// keep theirs): adds by depth, deletes by depth reversed; otherwise the order given is kept. The depth of a
    /// route with no gateway or with onlink is 0; of a route via G, one more than the deepest route of the range
    /// (same table and family, not a default route, not itself via G) whose destination holds G. A cycle counts as
    /// 0 where it closes. Only the distinct gateways are looked up, each with one pass: a prefix file of a million
    /// routes via one gateway that nothing in the run holds costs two passes and no reordering.
    /// </summary>
    internal static void Apply(PlannedChanges plan, int start, int count, bool deletes)
    {
        var steps = plan.Steps;
        var gateways = new HashSet<(uint, IPAddress)>();
        (uint, IPAddress?) last = default;
        for (var i = start; i < start + count; i++)
            // A prefix file's routes share one gateway object: hashed once, not a million times.
            if (plan.Via(steps[i]) is var (table, g) && !(last.Item1 == table && ReferenceEquals(last.Item2, g)))
            {
                gateways.Add((table, g));
                last = (table, g);
            }
        if (gateways.Count == 0) return;

        var places = new List<int>();
        var providers = new Dictionary<(uint, IPAddress), List<Route>>();
        for (var i = start; i < start + count; i++)
        {
            if (plan.RouteOf(steps[i]) is not { } p) continue;
            places.Add(i);
            if (p.Destination.PrefixLength == 0) continue;
            foreach (var (table, g) in gateways)
                if (p.Table == table && p.Family == g.AddressFamily && !g.Equals(p.Gateway) && p.Destination.Contains(g))
                {
                    if (!providers.TryGetValue((table, g), out var list)) providers[(table, g)] = list = [];
                    list.Add(p);
                }
        }
        if (providers.Count == 0) return;

        var viaDepth = new Dictionary<(uint, IPAddress), int>();
        int Via(uint table, IPAddress gateway)
        {
            if (viaDepth.TryGetValue((table, gateway), out var d)) return d;
            viaDepth[(table, gateway)] = 0;  // a cycle closes here
            var deepest = -1;
            if (providers.TryGetValue((table, gateway), out var list))
                foreach (var p in list) deepest = Math.Max(deepest, p.Gateway is { } g && !p.OnLink ? Via(p.Table, g) : 0);
            return viaDepth[(table, gateway)] = deepest + 1;
        }

        var ordered = places.Select(i => steps[i]).Select((s, n) => (s, n, d: plan.Via(s) is var (t, g) ? Via(t, g) : 0))
            .OrderBy(x => deletes ? -x.d : x.d).ThenBy(x => x.n).Select(x => x.s).ToList();
        for (var k = 0; k < places.Count; k++) steps[places[k]] = ordered[k];
    }
}
