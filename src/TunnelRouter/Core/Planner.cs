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

        var currentByKey = new RoutesByKey(current.Routes.Count);
        foreach (var r in current.Routes) currentByKey.Add(r);
        // Desired routes once each, in the policy's order.
        var desiredByKey = new RoutesByKey(desired.Routes.Count);
        var wanted = new List<Route>(desired.Routes.Count);
        foreach (var r in desired.Routes)
            if (desiredByKey.Add(r)) wanted.Add(r);

        HashSet<Route>? replaced = null;
        foreach (var want in wanted)
        {
            if (!currentByKey.TryGetFirst(want, out var first)) { adds.Add(new AddRoute(want)); continue; }
            if (currentByKey.Contains(want)) continue;
            var mine = currentByKey.FirstOf(want, owns.Route);
            if (mine is not null && !desiredByKey.Contains(mine))
            {
                adds.Add(new ReplaceRoute(mine, want));
                (replaced ??= []).Add(mine);
            }
            else if (mine is null && !want.Family.IsV6())
            {
                // IPv4 keeps one route per key: adding ours would fail, replacing would take theirs.
                throw new ConflictException(
                    $"route '{first}' is in the way of '{want}' and is not owned by tunnel-router; remove it or change the policy");
            }
            else adds.Add(new AddRoute(want));
        }
        foreach (var have in current.Routes)
            if (!desiredByKey.Contains(have) && owns.Route(have) && replaced?.Contains(have) != true)
                deletes.Add(new DeleteRoute(have));

        var desiredRules = new HashSet<Rule>(desired.Rules);
        var currentRules = new HashSet<Rule>(current.Rules);
        foreach (var want in desired.Rules)
            if (!currentRules.Contains(want)) adds.Add(new AddRule(want));
        foreach (var have in current.Rules)
            if (owns.Rule(have) && !desiredRules.Contains(have)) deletes.Add(new DeleteRule(have));

        // Rules after routes on the way in (a rule never points at a table still empty), and before
        // routes on the way out.
        var plan = new List<Change>(adds.Count + deletes.Count);
        Order(adds, ruleFirst: false, plan);
        var added = plan.Count;
        Order(deletes, ruleFirst: true, plan);
        // Within routes, what makes a gateway reachable goes in first and out last.
        RouteOrder.Apply(plan, 0, added, deletes: false);
        RouteOrder.Apply(plan, added, plan.Count - added, deletes: true);
        return plan;
    }

    /// <summary>Removes everything owned: what <c>flush</c> and <c>down</c> do.</summary>
    public static IReadOnlyList<Change> Remove(KernelState current, Ownership owns) =>
        Plan(KernelState.Empty, current, owns);

    /// <summary>Appends <paramref name="changes"/> in four stable groups: rules first or last, IPv4 before the
    /// rest within each. A pass per group rather than a sort: a million changes are ordered in linear time.</summary>
    static void Order(List<Change> changes, bool ruleFirst, List<Change> into)
    {
        foreach (var rules in (ReadOnlySpan<bool>)[ruleFirst, !ruleFirst])
            foreach (var v4 in (ReadOnlySpan<bool>)[true, false])
                foreach (var c in changes)
                    if (c.IsRule == rules && (c.Family == System.Net.Sockets.AddressFamily.InterNetwork) == v4) into.Add(c);
    }

    /// <summary>Routes by their <see cref="Route.Key"/> (packed). The kernel keeps one route per key, so one slot
    /// each is the rule; the rare others (what a hand-made state may hold) wait in a side table. Sized once, up
    /// front: at a million routes a growing table of lists costs more than the diff itself.</summary>
    sealed class RoutesByKey(int capacity)
    {
        readonly Dictionary<PackedRouteKey, Route> _first = new(capacity);
        Dictionary<PackedRouteKey, List<Route>>? _more;

        /// <summary>False when an equal route is already there.</summary>
        public bool Add(Route route)
        {
            var key = new PackedRouteKey(route);
            if (_first.TryAdd(key, route)) return true;
            if (Contains(route)) return false;
            _more ??= [];
            if (!_more.TryGetValue(key, out var list)) _more[key] = list = [];
            list.Add(route);
            return true;
        }

        /// <summary>The first route added with the key of <paramref name="route"/>.</summary>
        public bool TryGetFirst(Route route, out Route first) => _first.TryGetValue(new PackedRouteKey(route), out first!);

        public bool Contains(Route route)
        {
            var key = new PackedRouteKey(route);
            if (!_first.TryGetValue(key, out var first)) return false;
            if (first.Equals(route)) return true;
            return _more is not null && _more.TryGetValue(key, out var list) && list.Contains(route);
        }

        /// <summary>The first route with the key of <paramref name="route"/>, in the order added, that
        /// <paramref name="match"/> accepts.</summary>
        public Route? FirstOf(Route route, Func<Route, bool> match)
        {
            var key = new PackedRouteKey(route);
            if (!_first.TryGetValue(key, out var first)) return null;
            if (match(first)) return first;
            if (_more is not null && _more.TryGetValue(key, out var list))
                foreach (var r in list)
                    if (match(r)) return r;
            return null;
        }
    }
}

/// <summary>Which objects a run may delete or replace. Anything else it leaves alone.</summary>
public sealed record Ownership(Func<Route, bool> Route, Func<Rule, bool> Rule)
{
    public static Ownership ByProtocol(params byte[] protocols) =>
        new(r => protocols.Contains(r.Protocol), r => protocols.Contains(r.Protocol));
}
