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
        // Both sides packed (bulk lists already are); routes are made only for what changes, and the routes
        // added or deleted stay positions in these lists until the plan is read.
        var held = PackedRoutes.Of(current.Routes);
        var wanted = PackedRoutes.Of(desired.Routes);
        var plan = new PlannedChanges(wanted, held);
        var adds = new List<PlanStep>();
        var deletes = new List<PlanStep>();

        var currentByKey = new RouteIndex(held);
        for (var i = 0; i < held.Count; i++) currentByKey.Insert(i);
        // Desired routes once each, in the policy's order.
        var desiredByKey = new RouteIndex(wanted);
        var once = new List<int>(wanted.Count);
        for (var i = 0; i < wanted.Count; i++)
            if (desiredByKey.Add(i)) once.Add(i);

        HashSet<PackedRoute>? replaced = null;
        // The kernel's routes found in the policy: not looked up again when deletes are sought.
        var kept = new bool[held.Count];
        foreach (var i in once)
        {
            ref readonly var w = ref wanted.At(i);
            var same = currentByKey.Find(w, out var first);
            if (same >= 0) { kept[same] = true; continue; }
            if (first < 0) { adds.Add(PlanStep.Add(i)); continue; }
            var mine = currentByKey.FirstOf(w.Key, owns.Route);
            if (mine >= 0 && !desiredByKey.Contains(held.At(mine)))
            {
                adds.Add(PlanStep.Of(new ReplaceRoute(held[mine], wanted[i])));
                (replaced ??= []).Add(held.At(mine));
            }
            else if (mine < 0 && !w.Key.IsV6)
            {
                // IPv4 keeps one route per key: adding ours would fail, replacing would take theirs.
                throw new ConflictException(
                    $"route '{held[first]}' is in the way of '{wanted[i]}' and is not owned by tunnel-router; remove it or change the policy");
            }
            else adds.Add(PlanStep.Add(i));
        }
        for (var i = 0; i < held.Count; i++)
            if (!kept[i] && !desiredByKey.Contains(held.At(i)) && replaced?.Contains(held.At(i)) != true && owns.Route(held[i]))
                deletes.Add(PlanStep.Remove(i));

        var desiredRules = new HashSet<Rule>(desired.Rules);
        var currentRules = new HashSet<Rule>(current.Rules);
        foreach (var want in desired.Rules)
            if (!currentRules.Contains(want)) adds.Add(PlanStep.Of(new AddRule(want)));
        foreach (var have in current.Rules)
            if (owns.Rule(have) && !desiredRules.Contains(have)) deletes.Add(PlanStep.Of(new DeleteRule(have)));

        plan.Steps.Capacity = adds.Count + deletes.Count;
        Order(plan, adds, adding: true);
        var added = plan.Count;
        Order(plan, deletes, adding: false);
        // Within routes, what makes a gateway reachable goes in first and out last.
        RouteOrder.Apply(plan, 0, added, deletes: false);
        RouteOrder.Apply(plan, added, plan.Count - added, deletes: true);
        if (desired.Nexthops.Count == 0 && current.Nexthops.Count == 0) return plan;
        var (nexthopsIn, nexthopsOut) = PlanNexthops(desired.Nexthops, current.Nexthops, owns);
        // Nexthops go in before the routes that name them and come out after them (deleting one deletes its routes).
        return ChangeList.Concat(nexthopsIn, plan, nexthopsOut);
    }

    /// <summary>Nexthops by id: a changed one is replaced in place (one change, whatever uses it follows); members go
    /// in before their groups and come out after them.</summary>
    static (List<Change> In, List<Change> Out) PlanNexthops(IReadOnlyList<Nexthop> desired, IReadOnlyList<Nexthop> current, Ownership owns)
    {
        var have = new Dictionary<uint, Nexthop>();
        foreach (var n in current) have.TryAdd(n.Id, n);
        var wanted = new HashSet<uint>();
        var adds = new List<Change>();
        foreach (var want in desired.OrderBy(n => n.IsGroup))
        {
            if (!wanted.Add(want.Id)) continue;
            if (!have.TryGetValue(want.Id, out var old)) adds.Add(new AddNexthop(want));
            else if (old == want) continue;
            else if (owns.Nexthop(old) && old.IsGroup == want.IsGroup) adds.Add(new ReplaceNexthop(old, want));
            else
                throw new ConflictException(owns.Nexthop(old)
                    ? $"nexthop '{old}' cannot become '{want}' in place (a group and a gateway are different kinds); delete it with 'ip nexthop del id {old.Id}'"
                    : $"nexthop '{old}' is in the way of '{want}' and is not owned by tunnel-router; remove it or change the policy");
        }
        var deletes = current.Where(n => !wanted.Contains(n.Id) && owns.Nexthop(n)).OrderBy(n => !n.IsGroup)
            .Select(n => (Change)new DeleteNexthop(n)).ToList();
        return (adds, deletes);
    }

    /// <summary>Removes everything owned: what <c>flush</c> and <c>down</c> do.</summary>
    public static IReadOnlyList<Change> Remove(KernelState current, Ownership owns) =>
        Plan(KernelState.Empty, current, owns);

    /// <summary>
    /// Appends <paramref name="steps"/> in five stable groups, IPv4 first. IPv4 rules go in after the routes (a rule
    /// never points at a table still being filled) and come out before them. IPv6 rules go in before the routes and
    /// come out after them: every IPv6 rule added or deleted makes the kernel walk every IPv6 route of every table
    /// (rt_genid_bump_ipv6, fib6_flush_trees), so 200 rules added after 2,000 routes walked 400,000 nodes, 8 ms of
    /// an 85 ms apply. A rule whose table is not filled yet falls through to the rules after it, where its packets
    /// went before the run — except past a table's unreachable, blackhole, prohibit or throw routes (a kill switch
    /// written as a Routes line): those go in before the IPv6 rules and come out after them, few as they are. A pass
    /// per group rather than a sort: a million changes are ordered in linear time.
    /// </summary>
    static void Order(PlannedChanges plan, List<PlanStep> steps, bool adding)
    {
        // Each step classified once, then a pass per group over the classes.
        var groups = new byte[steps.Count];
        for (var i = 0; i < steps.Count; i++) groups[i] = Group(plan, steps[i], adding);
        for (var group = 0; group < 5; group++)
            for (var i = 0; i < steps.Count; i++)
                if (groups[i] == group) plan.Steps.Add(steps[i]);
    }

    static byte Group(PlannedChanges plan, in PlanStep step, bool adding)
    {
        var rule = plan.IsRule(step);
        if (plan.IsV4(step)) return (byte)(rule == adding ? 1 : 0);
        if (rule) return 3;
        return (byte)(plan.IsBlocking(step) == adding ? 2 : 4);
    }
}

/// <summary>Which objects a run may delete or replace. Anything else it leaves alone.</summary>
public sealed record Ownership(Func<Route, bool> Route, Func<Rule, bool> Rule)
{
    /// <summary>Which nexthop objects are ours: none unless said (a hook's run never touches them).</summary>
    public Func<Nexthop, bool> Nexthop { get; init; } = _ => false;

    /// <summary>Nothing: a run that only adds what is missing.</summary>
    public static readonly Ownership Nothing = new(_ => false, _ => false);

    public static Ownership ByProtocol(params byte[] protocols) =>
        new(r => protocols.Contains(r.Protocol), r => protocols.Contains(r.Protocol)) { Nexthop = n => protocols.Contains(n.Protocol) };
}
