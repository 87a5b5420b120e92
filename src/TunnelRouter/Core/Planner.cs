namespace TunnelRouter.Core;

/// <summary>
/// desired + current → ordered changes. Pure. Adds come before deletes, so a route that moves never
/// leaves a moment with nothing (tailscale's router does the same); a route whose key is taken by one
/// of ours with other attributes is replaced in place.
/// </summary>
public static class Planner
{
    /// <param name="desired">everything that should exist, all carrying an owner's protocol.</param>
    /// <param name="current">what the kernel holds, any owner.</param>
    /// <param name="owns">which current objects are ours to delete or replace (the scope of this run).</param>
    public static IReadOnlyList<Change> Plan(KernelState desired, KernelState current, Ownership owns)
    {
        var adds = new List<Change>();
        var deletes = new List<Change>();

        var currentByKey = new Dictionary<RouteKey, List<Route>>();
        foreach (var r in current.Routes)
        {
            if (!currentByKey.TryGetValue(r.Key, out var list)) currentByKey[r.Key] = list = [];
            list.Add(r);
        }

        var desiredRoutes = new HashSet<Route>(desired.Routes);
        var replaced = new HashSet<Route>();
        foreach (var want in desiredRoutes)
        {
            if (!currentByKey.TryGetValue(want.Key, out var present)) { adds.Add(new AddRoute(want)); continue; }
            if (present.Contains(want)) continue;
            var mine = present.FirstOrDefault(owns.Route);
            if (mine is not null && !desiredRoutes.Contains(mine))
            {
                adds.Add(new ReplaceRoute(mine, want));
                replaced.Add(mine);
            }
            else if (mine is null && present.Count > 0 && !want.Family.IsV6())
            {
                // IPv4 keeps one route per key: adding ours would fail, replacing would take theirs.
                throw new ConflictException(
                    $"route '{present[0]}' is in the way of '{want}' and is not owned by tunnel-router; remove it or change the policy");
            }
            else adds.Add(new AddRoute(want));
        }
        foreach (var have in current.Routes)
            if (owns.Route(have) && !desiredRoutes.Contains(have) && !replaced.Contains(have))
                deletes.Add(new DeleteRoute(have));

        var desiredRules = new HashSet<Rule>(desired.Rules);
        var currentRules = new HashSet<Rule>(current.Rules);
        foreach (var want in desired.Rules)
            if (!currentRules.Contains(want)) adds.Add(new AddRule(want));
        foreach (var have in current.Rules)
            if (owns.Rule(have) && !desiredRules.Contains(have)) deletes.Add(new DeleteRule(have));

        // Rules after routes on the way in (a rule never points at a table still empty), and before
        // routes on the way out.
        // Within routes, what makes a gateway reachable goes in first and out last (RouteOrder).
        return [.. Order(adds, ruleFirst: false, deletes: false), .. Order(deletes, ruleFirst: true, deletes: true)];
    }

    /// <summary>Removes everything owned: what <c>flush</c> and <c>down</c> do.</summary>
    public static IReadOnlyList<Change> Remove(KernelState current, Ownership owns) =>
        Plan(KernelState.Empty, current, owns);

    static IEnumerable<Change> Order(List<Change> changes, bool ruleFirst, bool deletes) =>
        RouteOrder.Sort(changes.OrderBy(c => c.IsRule == ruleFirst ? 0 : 1)
            .ThenBy(c => c.Family == System.Net.Sockets.AddressFamily.InterNetwork ? 0 : 1), deletes)
            .OrderBy(c => c.IsRule == ruleFirst ? 0 : 1);
}

/// <summary>Which objects a run may delete or replace. Anything else it leaves alone.</summary>
public sealed record Ownership(Func<Route, bool> Route, Func<Rule, bool> Rule)
{
    public static Ownership ByProtocol(params byte[] protocols) =>
        new(r => protocols.Contains(r.Protocol), r => protocols.Contains(r.Protocol));
}
