using System.Net;
using System.Net.Sockets;
using TunnelRouter.Core;

namespace TunnelRouter.Policy;

/// <summary>What a reconciliation does: make the kernel match the policy and the live tunnels; remove the
/// policy's objects (<c>flush</c>: the live tunnels' stay, their clients stay routed); or remove everything owned,
/// the hook's objects included (<c>flush --all</c>).</summary>
public enum ReconcileMode { Converge, Flush, FlushAll }

/// <summary>
/// The one pure function from (parsed policy, live tunnel records, kernel snapshot, mode) to ordered changes. The
/// policy's parts in apply order: kill switches first, GRE links before the addresses and routes that use them,
/// then routes and rules, the live tunnels' routes and rules, then marks and sysctls; flush removes in the reverse order. No I/O: everything it needs is in the
/// snapshot, so plan, apply, status and doctor see one and the same kernel.
/// </summary>
public static class Reconciler
{
    /// <summary>What the snapshot must hold for this policy.</summary>
    public static SnapshotQuery QueryFor(ParsedPolicy policy) => new(
        Nft: true,
        NftRequired: policy.Marks is not null,
        AddressesOf: policy.Uplinks.Where(u => u.Address is null || u.PrefixLength is null).Select(u => u.Device).Distinct().ToList(),
        RouteGets: policy.Tunnels.Where(t => t.Link.Mtu == 0 && t.Link.Underlay is null).Select(t => t.Link.Remote).ToList(),
        Sysctls: policy.Sysctls.Select(kv => kv.Key).ToList(),
        Files: policy.Routing is { } r ? [r.ConfigFile] : null);

    /// <param name="adopt">take over foreign routes and rules identical to the policy's (apply --adopt).</param>
    public static PolicyPlan Plan(ParsedPolicy policy, KernelSnapshot snapshot, ReconcileMode mode, bool adopt = false) => Plan(policy, [], snapshot, mode, adopt);

    /// <param name="partial">a route whose gateway the kernel would refuse leaves the plan instead of failing it, and the plan
    /// carries the error (<see cref="PolicyPlan.Refused"/>): what apply and watch make, so that one family's gateway gone
    /// with a link flap never keeps the other family's routes, the kill switches or the guard out (docs/lifecycle.md).
    /// Without it (plan, doctor, --dry-run) the error is thrown, and nothing is planned.</param>
    public static PolicyPlan Plan(ParsedPolicy policy, IReadOnlyList<TunnelRecord> live, KernelSnapshot snapshot, ReconcileMode mode, bool adopt = false,
        bool partial = false)
    {
        if (mode is ReconcileMode.Flush or ReconcileMode.FlushAll)
        {
            var flushNotes = new List<PlanNote>();
            var owned = mode == ReconcileMode.FlushAll ? policy.Owned : FlushOwnership(policy, snapshot, flushNotes);
            if (mode == ReconcileMode.FlushAll) FlushAllNote(policy, snapshot, flushNotes);
            // The daemon lets go of the tunnels before they go; it learns of new ones after they are there.
            // Plain flush keeps the guard with the kill switches; flush --all removes it with them.
            IReadOnlyList<Change> unguard = mode == ReconcileMode.FlushAll && snapshot.Guard is { } g ? [new ReplaceNftTable(g.Definition, null) { Table = NftGuard.QualifiedName }] : [];
            return new PolicyPlan(ChangeList.Concat(Daemon(policy, snapshot, ReconcileMode.Flush), Marks(null, snapshot), unguard, Planner.Remove(snapshot.State, owned),
                TunnelPlanner.Remove(snapshot.Links)), flushNotes)
            {
                Forgotten = mode == ReconcileMode.FlushAll ? [.. live.Select(r => r.Device)] : [],
            };
        }
        var notes = new List<PlanNote>();
        var waiting = new Dictionary<string, (int Routes, int Uplinks)>(StringComparer.Ordinal);
        var forgotten = new List<string>();
        // The live tunnels as the policy wants them now, not as it was at their up (invariant 8): a changed PoolRules.
        var recorded = live;
        live = [.. live.Select(r => r.Follow(policy.PoolRules, policy.PoolRulePriority, policy.HookProtocol))];
        var pooled = live;
        // ... and a changed Table: the tunnel's networks and pool rules move to it, its Instances lines keep the tables they name.
        if (policy.HookTable is { } hookTable) live = [.. live.Select(r => r.FollowTable(hookTable))];
        var followed = live.Where((r, i) => !ReferenceEquals(r, recorded[i])).ToList();
        for (var i = 0; i < live.Count; i++)
        {
            var (r, was) = (live[i], recorded[i]);
            if (!ReferenceEquals(pooled[i], was))
                notes.Add(new($"{r.Device}: a live tunnel follows the policy's PoolRules ({(r.PoolRules ? $"on, priority {r.PoolRulePriority}" : "off")}); its record is rewritten", Stated: true));
            if (r.Table != was.Table)
                notes.Add(new($"{r.Device}: a live tunnel follows the policy's Table {policy.HookTableName} ({was.Table} -> {r.Table}): its networks and pool rules move, its Instances lines keep the tables they name; its record is rewritten", Stated: true));
        }
        // A Table only the next up will register: the running tunnels cannot follow it yet, and plan says so rather than "nothing to change".
        var restart = policy.HookTable is null && policy.HookTableName.Length > 0
            ? live.Where(r => r.TableFromPolicy).Select(r => $"{r.Device}: the policy's Table {policy.HookTableName} is a new name that the next up registers; this live tunnel stays in table {r.Table} until it reconnects (restart its OpenVPN to move it now)").ToList()
            : [];
        foreach (var text in restart) notes.Add(new(text, Stated: true));
        var routing = Routing(policy, snapshot, notes, waiting, adopt);
        // Joined, not copied: the routing part may be a million routes made only as they are read.
        var tunnels = Tunnels(policy, snapshot, notes);
        var changes = ChangeList.Concat(tunnels, routing, Live(live, snapshot, forgotten, recorded), Marks(policy.Marks, snapshot),
            Sysctls(policy, snapshot), Daemon(policy, snapshot, mode, tunnels));
        EnvironmentException? refused = null;
        if (Reachable(policy, live, snapshot, changes) is { } failed)
        {
            refused = new EnvironmentException(failed.Why);
            if (!partial) throw refused;
            var routes = failed.Routes.ToHashSet();
            changes = changes.Where(c => c switch { AddRoute a => !routes.Contains(a.Route), ReplaceRoute r => !routes.Contains(r.New), _ => true }).ToList();
        }
        var guard = Guard(policy, live, snapshot, notes);
        if (guard is not null) changes = ChangeList.Concat(new Change[] { guard }, changes);
        var failClosed = new List<Change>();
        if (policy.FailClosed.Count > 0 || policy.FailClosedTables.Count > 0)
        {
            var kill = policy.FailClosed.ToHashSet();
            var selectors = policy.Rules.Where(r => Lifecycle.Selects(r, policy.FailClosedTables)).ToHashSet();
            var packed = changes as IPackedChanges;
            var at = new List<int>();
            var closingRules = new List<Change>();
            for (var i = 0; i < changes.Count; i++)
            {
                // Only an unreachable route can be a kill switch: a prefix file's packed routes are passed over unmade.
                if (packed is not null && packed.TryPacked(i, out var p, out var delete) && (delete || p.Tail.Type != RouteType.Unreachable)) continue;
                var c = changes[i];
                if (c is AddRoute a && kill.Contains(a.Route) || c is ReplaceRoute r && kill.Contains(r.New))
                {
                    failClosed.Add(c);
                    at.Add(i);
                }
                else if (c is AddRule u && selectors.Contains(u.Rule))
                {
                    closingRules.Add(c);
                    at.Add(i);
                }
            }
            // The kill switches before the rules into their tables: a rule never sends packets to a table still open.
            failClosed.AddRange(closingRules);
            if (failClosed.Count > 0)
            {
                // The kill switches first, then the rest in its order: cut around them, not copied.
                var parts = new List<IReadOnlyList<Change>> { failClosed };
                var from = 0;
                foreach (var i in at)
                {
                    parts.Add(ChangeList.Slice(changes, from, i - from));
                    from = i + 1;
                }
                parts.Add(ChangeList.Slice(changes, from, changes.Count - from));
                changes = ChangeList.Concat([.. parts]);
            }
        }
        return new PolicyPlan(changes, notes)
        {
            Waiting = [.. waiting.OrderBy(w => w.Key, StringComparer.Ordinal).Select(w => new Waiting(w.Key, w.Value.Routes, w.Value.Uplinks))],
            Forgotten = forgotten,
            FailClosed = failClosed,
            Guard = guard,
            Refused = refused,
            Followed = [.. followed.Where(r => !forgotten.Contains(r.Device))],
            NeedRestart = restart,
        };
    }

    /// <summary>The fail-closed guard's table as the policy, the live tunnels and the kernel want it, when it differs from
    /// the kernel's; removed when the policy closes no table. Without nft there is none, and the plan says so.</summary>
    static Change? Guard(ParsedPolicy policy, IReadOnlyList<TunnelRecord> live, KernelSnapshot snapshot, List<PlanNote> notes)
    {
        NftTable? desired = null;
        if (Lifecycle.Guard(policy, live, snapshot) is { } spec)
        {
            if (!snapshot.NftInstalled)
            {
                notes.Add(new("nft is not installed, so the fail-closed guard (docs/lifecycle.md) is left out and the kill switches hold alone; apt-get install nftables",
                    Stated: true, Always: true));
                return null;
            }
            desired = NftGuard.Render(spec, out var unguarded);
            foreach (var u in unguarded) notes.Add(new(u, Stated: true));
        }
        var current = snapshot.Guard;
        if (desired is null) return current is null ? null : new ReplaceNftTable(current.Definition, null) { Table = NftGuard.QualifiedName };
        return current is not null && NftGuard.Same(current, desired)
            ? null : new ReplaceNftTable(current?.Definition, desired.Definition) { Table = NftGuard.QualifiedName };
    }

    /// <summary>
    /// The changes that close the fail-closed tables, alone: the kill switches and the policy's rules into them that are
    /// missing, added and nothing removed. What apply and watch install when the rest of the plan cannot be made (a
    /// missing GRE module, a gateway the kernel would refuse): independent of devices and gateways, they never wait on
    /// the part that failed.
    /// </summary>
    public static IReadOnlyList<Change> Closing(ParsedPolicy policy, KernelSnapshot snapshot)
    {
        var plan = Planner.Plan(new KernelState(policy.FailClosed, [.. policy.Rules.Where(r => Lifecycle.Selects(r, policy.FailClosedTables))]),
            snapshot.State, Ownership.Nothing);
        // The kill switches before the rules into their tables.
        return [.. plan.Where(c => c is not AddRule), .. plan.Where(c => c is AddRule)];
    }

    /// <summary>
    /// What plain flush removes: the policy's objects (its protocol), except every kill switch (an owned <c>unreachable
    /// default</c> at the highest metric, FailClosed's or written by hand) and every rule of the policy's that selects
    /// traffic into a table with one (docs/lifecycle.md): flush is the unit's stop, and a stop or a restart must send
    /// nothing in clear — not when the policy that follows it is broken either. The hook's objects stay anyway. flush --all
    /// removes them too. Read from the kernel alone: flush does not parse the policy.
    /// </summary>
    static Ownership FlushOwnership(ParsedPolicy policy, KernelSnapshot snapshot, List<PlanNote> notes)
    {
        var (removed, switches, selectors) = Lifecycle.FlushKeeps(snapshot.State, policy.Protocol);
        if (switches.Count == 0) return removed;
        var names = string.Join(", ", switches.Select(r => r.Table).Distinct().Order().Select(policy.TableNames.Format));
        notes.Add(new PlanNote($"kept the kill switch of table {names}{(selectors.Count == 0 ? "" : selectors.Count == 1 ? " and the rule into it" : $" and the {selectors.Count} rules into it")}: " +
                               "flush never opens a kill switch (the traffic it selects is refused, not sent by main); 'flush --all' removes them", Stated: true, Always: true));
        return removed;
    }

    /// <summary>What flush --all says it removed of the fail-closed guard: from then on the traffic goes by main.</summary>
    static void FlushAllNote(ParsedPolicy policy, KernelSnapshot snapshot, List<PlanNote> notes)
    {
        var (_, switches, selectors) = Lifecycle.FlushKeeps(snapshot.State, policy.Protocol);
        if (switches.Count == 0) return;
        var names = string.Join(", ", switches.Select(r => r.Table).Distinct().Order().Select(policy.TableNames.Format));
        notes.Add(new PlanNote($"removed the kill switch of table {names}{(selectors.Count == 0 ? "" : " and the rules into it")}: " +
                               "its traffic is no longer refused while no tunnel carries it", Stated: true, Always: true));
    }

    /// <summary>The live tunnels alone: what status shows as their drift, whatever the policy file says.</summary>
    public static PolicyPlan PlanLive(IReadOnlyList<TunnelRecord> live, KernelSnapshot snapshot)
    {
        var forgotten = new List<string>();
        return new PolicyPlan(Live(live, snapshot, forgotten), []) { Forgotten = forgotten };
    }

    /// <summary>
    /// The live tunnels (the hook's records) as part of the desired state: while a record's tunnel lives, its routes
    /// and pool rules are restored when someone deleted them; a record whose device is gone without a down
    /// (OpenVPN killed) is forgotten and its leftover rules removed. Only the records' own objects are ever touched:
    /// another hook object of protocol 148 that no record names is left alone.
    /// </summary>
    /// <param name="recorded">the records as written, when <paramref name="live"/> follows a changed policy: what they hold
    /// is theirs to remove too (a pool rule the policy no longer wants).</param>
    static IReadOnlyList<Change> Live(IReadOnlyList<TunnelRecord> live, KernelSnapshot snapshot, List<string> forgotten, IReadOnlyList<TunnelRecord>? recorded = null)
    {
        if (live.Count == 0) return [];
        var routes = new List<Route>();
        var rules = new List<Rule>();
        foreach (var record in live)
        {
            if (!record.LivesOn(snapshot.Links)) { forgotten.Add(record.Device); continue; }
            routes.AddRange(record.Routes);
            foreach (var rule in record.Rules)
                if (!rules.Contains(rule)) rules.Add(rule);
        }
        var all = recorded is null ? live : [.. live, .. recorded];
        var scope = TunnelRecord.ScopeOf(all.SelectMany(r => r.Routes), all.SelectMany(r => r.Rules));
        // A route up wrote without dev (an Instances line) reads back with the device the kernel chose: the same route.
        return Planner.Plan(PolicyState.Settle(new KernelState(routes, rules), snapshot.State), snapshot.State, scope);
    }

    /// <summary>GRE tunnels: links TunnelRouter creates, marks with its alias, brings up and addresses, and
    /// the routes over them. Only links carrying the alias are ever changed or deleted.</summary>
    static IReadOnlyList<Change> Tunnels(ParsedPolicy policy, KernelSnapshot snapshot, List<PlanNote> notes)
    {
        var links = snapshot.Links;
        if (policy.Tunnels.Count == 0 && !links.Any(TunnelPlanner.IsOwned)) return [];
        var specs = policy.Tunnels.Select(e => new TunnelSpec(WithMtu(e, snapshot, notes), e.Addresses, e.Routes)).ToList();
        return TunnelPlanner.Plan(specs, links, snapshot.State.Routes, policy.Protocol);
    }

    /// <summary>The tunnel's link as apply makes it: the MTU worked out from the underlay when the policy gives none
    /// (what export writes); the policy's own link when the underlay is unknown.</summary>
    public static GreTunnel LinkAsApplied(TunnelConfigEntry e, KernelSnapshot snapshot)
    {
        try { return WithMtu(e, snapshot, []); }
        catch (EnvironmentException) { return e.Link; }
    }

    /// <summary>The policy's MTU, or the underlay's minus the encapsulation (stated in the notes).</summary>
    static GreTunnel WithMtu(TunnelConfigEntry e, KernelSnapshot snapshot, List<PlanNote> notes)
    {
        var t = e.Link;
        if (t.Mtu != 0) return t;
        var underlay = t.Underlay ?? (snapshot.RouteDevices.TryGetValue(t.Remote, out var d) ? d : null)
            ?? throw new EnvironmentException(
                $"{e.Field}.Remote: no route to {t.Remote}, so the tunnel's underlay and MTU are unknown; add that route first, or set Underlay or Mtu");
        if (underlay == t.Name)
            throw new EnvironmentException($"{e.Field}.Remote: the route to {t.Remote} goes over the tunnel itself; set Underlay or Mtu");
        var link = snapshot.Links.FirstOrDefault(l => l.Name == underlay)
            ?? throw new EnvironmentException($"{e.Field}.Underlay: link '{underlay}' does not exist");
        var overhead = t.Mode.Overhead(t.OKey is not null);
        var mtu = (uint)Math.Max(68, (int)link.Mtu - overhead);
        notes.Add(new($"{t.Name}: mtu {mtu} = {underlay} mtu {link.Mtu} - {overhead} ({t.Mode.Kind()}{(t.OKey is null ? "" : " with key")})", Stated: true));
        return t with { Mtu = mtu };
    }

    /// <summary>
    /// The policy's own routes and rules (Rules, Routes, PrefixLists, Uplinks). Apply owns its protocol
    /// only: the hook's and every foreign object, including ones in the same tables and the same priority
    /// band, are never touched; routes over GRE tunnels carry the same protocol but belong to the tunnels.
    /// </summary>
    static IReadOnlyList<Change> Routing(ParsedPolicy policy, KernelSnapshot snapshot, List<PlanNote> notes,
        Dictionary<string, (int Routes, int Uplinks)> waiting, bool adopt)
    {
        var current = snapshot.State;
        var protocol = policy.Protocol;
        var desired = Desired(policy, snapshot, notes, waiting);
        var names = (policy.TableNames, policy.ProtocolNames);
        string R(Route r) => IpCommand.RouteArgs(r, names.TableNames, names.ProtocolNames);
        string U(Rule r) => IpCommand.RuleArgs(r, names.TableNames, names.ProtocolNames);

        var tunnels = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in policy.Tunnels) tunnels.Add(t.Link.Name);
        foreach (var l in snapshot.Links)
            if (TunnelPlanner.IsOwned(l)) tunnels.Add(l.Name);

        // The kernel keeps one route per key in IPv6 too: an add beside someone else's answers EEXIST, which
        // would read as "already there" while our route is not. A foreign route identical to the policy's (a
        // how-to's hand-typed line) is taken over with --adopt; every other conflict is listed, all at once.
        var conflicts = new List<string>();
        var adoptedRoutes = new HashSet<Route>();
        var adoptedRules = new Dictionary<Rule, Rule>();
        // Read packed: routes are made only for a foreign route with a key the policy wants.
        var held = PackedRoutes.Of(current.Routes);
        var foreign = new Dictionary<PackedRouteKey, int>();
        for (var i = 0; i < held.Count; i++)
            if (held.At(i).Tail.Protocol != protocol) foreign.TryAdd(held.At(i).Key, i);
        var wanted = foreign.Count > 0 ? PackedRoutes.Of(desired.Routes) : null;
        for (var i = 0; i < (wanted?.Count ?? 0); i++)
            {
                if (!foreign.TryGetValue(wanted!.At(i).Key, out var at)) continue;
                var theirs = held[at];
                var want = wanted[i];
                if (!want.SameButOwner(theirs) || theirs.Protocol == policy.HookProtocol)
                    conflicts.Add($"route '{R(theirs)}' is in the way of the policy's '{R(want)}' (same table, destination and metric) and is not tunnel-router's: " +
                                  $"remove it (ip {Net.FamilyFlag(theirs.Family)} route del {System.Text.RegularExpressions.Regex.Replace(R(theirs), " proto \\S+", "")}) and apply again");
                else if (adopt)
                {
                    adoptedRoutes.Add(theirs);
                    notes.Add(new($"adopting route '{R(theirs)}': re-created as tunnel-router's", Stated: true, Always: true));
                }
                else conflicts.Add($"route '{R(theirs)}' is the policy's '{R(want)}' made by someone else: 'tunnel-router apply --adopt' takes it over");
            }
        var desiredRules = desired.Rules.ToHashSet();
        foreach (var have in current.Rules)
        {
            if (have.Protocol == protocol || have.Protocol == policy.HookProtocol || desiredRules.Contains(have)) continue;
            // The same rule, or the same selectors and action at another priority: a how-to's "ip rule add ... lookup vpn"
            // typed without pref, which the kernel put at a priority of its own choosing (32765, 32764, ...).
            var twin = desired.Rules.FirstOrDefault(want => want.SameButOwner(have))
                       ?? desired.Rules.FirstOrDefault(want => want.SameSelectorsAndAction(have));
            if (twin is null) continue;
            var moved = twin.Priority != have.Priority;
            if (adopt)
            {
                adoptedRules[have] = twin;
                notes.Add(new(moved
                    ? $"adopting rule '{U(have)}': the same rule at priority {have.Priority} (the kernel's choice when a rule is added without pref); re-created as tunnel-router's at the policy's {twin.Priority}"
                    : $"adopting rule '{U(have)}': re-created as tunnel-router's", Stated: true, Always: true));
            }
            // The kernel keeps both (they differ in protocol, or in priority), so this is no conflict: say so, and how to take it over.
            else notes.Add(new(moved
                ? $"rule '{U(have)}' is the policy's '{U(twin)}' made by someone else at priority {have.Priority} (the kernel's choice when a rule is added without pref); both stay: 'tunnel-router apply --adopt' takes it over"
                : $"rule '{U(have)}' is the policy's '{U(twin)}' made by someone else; both stay: 'tunnel-router apply --adopt' takes it over", Stated: true, Always: true));
        }
        if (conflicts.Count > 0) throw new ConflictException(conflicts);

        var owns = new Ownership(
            r => r.Protocol == protocol && !(r.Device is { } dev && tunnels.Contains(dev)) || adoptedRoutes.Contains(r),
            r => r.Protocol == protocol || adoptedRules.ContainsKey(r)) { Nexthop = n => n.Protocol == protocol };
        var planned = Planner.Plan(desired, current, owns);
        if (adoptedRules.Count == 0) return planned;
        // A rule at the same priority is taken over by deleting theirs before adding ours: the kernel refuses a second
        // rule it counts as the same one (EEXIST), whoever owns it. One at another priority is not the kernel's same
        // rule: ours goes in first and theirs comes out after (the planner's order), so no packet finds neither.
        var changes = planned.ToList();
        foreach (var (theirs, ours) in adoptedRules)
        {
            if (theirs.Priority != ours.Priority) continue;
            changes.RemoveAll(c => c is DeleteRule d && d.Rule == theirs || c is AddRule a && a.Rule == ours);
            changes.AddRange([new DeleteRule(theirs), new AddRule(ours)]);
        }
        return changes;
    }

    /// <summary>
    /// What the kernel checks on add, checked in the plan for every route with a gateway the plan adds, wherever the
    /// gateway comes from (Routes, PrefixLists' Route, Uplinks' Gateway/Gateway6, Tunnels' Routes, the resolved Instances
    /// lines of live tunnels): a gateway without onlink must lie in a connected network (a route without a gateway) of the
    /// route's device, in main or the route's own table — the kernel's or one this plan adds — or in one of the policy's
    /// tunnel addresses; the kernel answers "Nexthop has invalid gateway" otherwise. The device must be up ("Nexthop
    /// device is not up"), and the gateway not an address of this host (IPv6 refuses it, "Gateway can not be a local
    /// address"; IPv4 would route the packets back to this host). A route on a device that does not exist yet is not
    /// judged here (it waits for its device), nor is a snapshot without links (no kernel was read). Returns the refused
    /// routes and one message naming each by where it comes from; null when none is. Each distinct
    /// (table, device, gateway) is judged once: a prefix file of a million routes via one gateway costs one look.
    /// </summary>
    static (IReadOnlyList<Route> Routes, string Why)? Reachable(ParsedPolicy policy, IReadOnlyList<TunnelRecord> live, KernelSnapshot snapshot, IReadOnlyList<Change> changes)
    {
        if (snapshot.Links.Count == 0) return null;
        var tunnels = new Dictionary<string, TunnelConfigEntry>(StringComparer.Ordinal);
        foreach (var t in policy.Tunnels) tunnels[t.Link.Name] = t;
        var links = new Dictionary<string, Link>(StringComparer.Ordinal);
        foreach (var l in snapshot.Links) links[l.Name] = l;

        var judged = new Dictionary<(uint Table, string? Device, IPAddress Gateway), string?>();
        List<Route>? connected = null;
        HashSet<IPAddress>? own = null;
        var failed = new List<(Route Route, string Why)>();
        (uint, string?, IPAddress)? last = null;
        string? lastWhy = null;
        var packed = changes as IPackedChanges;
        for (var i = 0; i < changes.Count; i++)
        {
            // A packed route (a prefix file's) is judged by its shared tail: made into a Route only when it fails.
            if (packed is not null && packed.TryPacked(i, out var p, out var delete))
            {
                if (delete || p.Tail.Gateway is not { } pg || p.Tail.Type != RouteType.Unicast || pg.IsIPv6LinkLocal) continue;
                if (last is { } pk && pk.Item1 == p.Key.Table && ReferenceEquals(pk.Item3, pg) && pk.Item2 == p.Tail.Device)
                {
                    if (lastWhy is not null) failed.Add((p.ToRoute(), lastWhy));
                    continue;
                }
            }
            var r = changes[i] switch { AddRoute a => a.Route, ReplaceRoute x => x.New, _ => null };
            if (r?.Gateway is not { } g || r.Type != RouteType.Unicast || g.IsIPv6LinkLocal) continue;
            if (r.Device is { } dev && !links.ContainsKey(dev) && !tunnels.ContainsKey(dev)) continue;
            var key = (r.Table, r.Device, g);
            // A prefix file's routes share one gateway object and one table: judged once, looked up once.
            if (last is { } k && k.Item1 == r.Table && ReferenceEquals(k.Item3, g) && k.Item2 == r.Device) { if (lastWhy is not null) failed.Add((r, lastWhy)); continue; }
            if (!judged.TryGetValue(key, out var why))
            {
                connected ??= Connected(snapshot, changes);
                own ??= snapshot.Links.SelectMany(l => l.Addresses).Select(a => a.Address).ToHashSet();
                judged[key] = why = Judge(r, g, connected, own, links, tunnels);
            }
            last = key;
            lastWhy = why;
            if (why is not null) failed.Add((r, why));
        }
        if (failed.Count == 0) return null;
        return ([.. failed.Select(f => f.Route)], $"{policy.Source}: {string.Join("; ", Origins(policy, live, failed))}");
    }

    /// <summary>The routes without a gateway that a gateway can lie in: the kernel's, and the ones this plan adds.</summary>
    static List<Route> Connected(KernelSnapshot snapshot, IReadOnlyList<Change> changes)
    {
        var connected = new List<Route>();
        foreach (var c in snapshot.State.Routes)
            if (c.Gateway is null && c.Type == RouteType.Unicast) connected.Add(c);
        var packed = changes as IPackedChanges;
        for (var i = 0; i < changes.Count; i++)
        {
            if (packed is not null && packed.TryPacked(i, out var p, out var delete)
                && (delete || p.Tail.Gateway is not null || p.Tail.Type != RouteType.Unicast)) continue;
            if ((changes[i] switch { AddRoute a => a.Route, ReplaceRoute x => x.New, _ => null }) is { Gateway: null, Type: RouteType.Unicast } c)
                connected.Add(c);
        }
        return connected;
    }

    /// <summary>Why the kernel would refuse a route via <paramref name="g"/>, or null.</summary>
    static string? Judge(Route r, IPAddress g, List<Route> connected, HashSet<IPAddress> own,
        Dictionary<string, Link> links, Dictionary<string, TunnelConfigEntry> tunnels)
    {
        if (own.Contains(g))
            return $"gateway {g} is an address of this host, so the kernel would refuse it{(g.AddressFamily.IsV6() ? " (\"Gateway can not be a local address\")" : r.OnLink ? " (\"Nexthop has invalid gateway\")" : " or route the packets back to this host")}; give the next hop's address";
        if (r.Device is { } dev && links.TryGetValue(dev, out var link) && !link.Up && !tunnels.ContainsKey(dev))
            return $"{dev} is down, so the kernel would refuse it (\"Nexthop device is not up\"); bring it up (ip link set {dev} up) or let it come up first";
        if (r.OnLink) return null;
        var family = g.AddressFamily;
        foreach (var c in connected)
            if (c.Family == family && (c.Table == TableNames.Main || c.Table == r.Table) && (r.Device is null || c.Device == r.Device) && c.Destination.Contains(g))
                return null;
        foreach (var (name, t) in tunnels)
            if ((r.Device is null || r.Device == name) && t.Addresses.Any(a => a.Family == family && a.Network.Contains(g)))
                return null;
        return $"gateway {g} is not on a connected network{(r.Device is null ? "" : $" of {r.Device}")}, so the kernel would refuse it (\"Nexthop has invalid gateway\"); add the address or route that reaches it, or 'onlink' if it is on the link anyway";
    }

    /// <summary>Each refused route named by where its gateway comes from: a Routes line, a prefix file (once, with how
    /// many of its routes), an uplink, a tunnel's route, a live tunnel's Instances line.</summary>
    static List<string> Origins(ParsedPolicy policy, IReadOnlyList<TunnelRecord> live, List<(Route Route, string Why)> failed)
    {
        var names = (policy.TableNames, policy.ProtocolNames);
        string R(Route r) => IpCommand.RouteArgs(r, names.TableNames, names.ProtocolNames);
        var listed = policy.PrefixLists.Sum(l => l.Routes.Count);
        var lines = new Dictionary<RouteKey, int>();
        for (var i = 0; i < policy.Routes.Count - listed; i++) lines.TryAdd(policy.Routes[i].Key, i);
        var problems = new List<string>();
        var lists = new Dictionary<int, (Route First, int Count, string Why)>();
        foreach (var (r, why) in failed)
        {
            if (lines.TryGetValue(r.Key, out var i)) { problems.Add($"Routes[{i}]: route '{R(r)}': {why}"); continue; }
            var list = policy.PrefixLists.Select((l, n) => (l, n)).FirstOrDefault(x => x.l.Routes.Count > 0 && Same(x.l.Routes[0], r));
            if (list.l is not null)
            {
                lists[list.n] = lists.TryGetValue(list.n, out var seen) ? seen with { Count = seen.Count + 1 } : (r, 1, why);
                continue;
            }
            if (policy.Tunnels.Select(t => (t, j: t.Routes.ToList().FindIndex(x => x.Key == r.Key))).FirstOrDefault(x => x.j >= 0) is { t: not null } tr)
            {
                problems.Add($"{tr.t.Field}.Routes[{tr.j}]: route '{R(r)}': {why}");
                continue;
            }
            if (policy.Uplinks.FirstOrDefault(u => u.Table == r.Table && u.Device == r.Device) is { } uplink)
            {
                problems.Add($"{uplink.Field[(uplink.Field.LastIndexOf(": ", StringComparison.Ordinal) + 2)..]}.{(r.Family.IsV6() && uplink.Gateway6 is not null ? "Gateway6" : "Gateway")}: route '{R(r)}': {why}");
                continue;
            }
            if (live.FirstOrDefault(t => t.Routes.Contains(r)) is { } record)
            {
                problems.Add($"the live tunnel {record.Device}'s route '{R(r)}' (an Instances line, restored): {why}");
                continue;
            }
            problems.Add($"route '{R(r)}': {why}");
        }
        foreach (var (n, (first, count, why)) in lists.OrderBy(kv => kv.Key))
        {
            var l = policy.PrefixLists[n];
            problems.Add($"{l.Field[(l.Field.LastIndexOf(": ", StringComparison.Ordinal) + 2)..]}.Route ({l.File}): {(count == 1 ? "its route" : $"its {count:N0} routes")} like '{R(first)}': {why}");
        }
        return problems;
    }

    static bool Same(Route a, Route b) => a.Table == b.Table && a.Device == b.Device && Equals(a.Gateway, b.Gateway) && a.Family == b.Family;

    /// <summary>The policy's routes and rules with its uplinks resolved against the snapshot (what export renders).</summary>
    public static KernelState DesiredRouting(ParsedPolicy policy, KernelSnapshot snapshot, List<PlanNote> notes) =>
        Desired(policy, snapshot, notes, new Dictionary<string, (int Routes, int Uplinks)>(StringComparer.Ordinal));

    /// <summary>Everything the policy wants that can be there now, uplinks resolved against the snapshot's
    /// addresses and main table; what waits for a device that does not exist yet is counted in
    /// <paramref name="waiting"/> instead.</summary>
    static KernelState Desired(ParsedPolicy policy, KernelSnapshot snapshot, List<PlanNote> notes,
        Dictionary<string, (int Routes, int Uplinks)> waiting)
    {
        // Read packed (a prefix file's routes are never made here), and copied only when some route waits.
        var all = policy.Routes;
        var packed = all as PackedRoutes;
        string? DeviceAt(int i) => packed is null ? all[i].Device : packed.At(i).Tail.Device;
        HashSet<string>? devices = null;
        string? seen = null; // a list's routes share their device's string: one lookup, not a million
        bool Here(string? dev)
        {
            if (dev is null || ReferenceEquals(dev, seen)) return true;
            devices ??= new HashSet<string>(snapshot.Links.Select(l => l.Name), StringComparer.Ordinal);
            if (!devices.Contains(dev)) return false;
            seen = dev;
            return true;
        }
        var missing = 0;
        for (var i = 0; i < all.Count; i++)
            if (DeviceAt(i) is { } dev && !Here(dev))
            {
                missing++;
                waiting[dev] = waiting.TryGetValue(dev, out var w) ? (w.Routes + 1, w.Uplinks) : (1, 0);
            }
        var present = all;
        if (missing > 0 && packed is not null)
        {
            var kept = new PackedRoutes(all.Count - missing);
            for (var i = 0; i < all.Count; i++)
                if (Here(DeviceAt(i))) kept.Add(in packed.At(i));
            present = kept;
        }
        else if (missing > 0) present = all.Where(r => Here(r.Device)).ToList();
        var pins = Pins(policy, snapshot, notes);
        if (policy.Uplinks.Count == 0 && policy.FailClosed.Count == 0)
            return PolicyState.Settle(new KernelState(pins.Count == 0 ? present : [.. present, .. pins], policy.Rules), snapshot.State);
        var routes = new List<Route>(present);
        routes.AddRange(pins);
        routes.AddRange(policy.FailClosed);
        var rules = new List<Rule>(policy.Rules);
        var keys = new Dictionary<RouteKey, Route>();
        foreach (var r in routes) keys.TryAdd(r.Key, r);
        var resolved = new Dictionary<string, Uplink>(StringComparer.Ordinal);
        foreach (var spec in policy.Uplinks)
        {
            if (Resolve(spec, snapshot, notes, policy.Protocol) is not { } uplink)
            {
                waiting[spec.Device] = waiting.TryGetValue(spec.Device, out var w) ? (w.Routes, w.Uplinks + 1) : (0, 1);
                continue;
            }
            resolved[spec.Name] = uplink;
            var state = uplink.Desired(policy.Protocol);
            foreach (var r in state.Routes)
            {
                if (keys.TryGetValue(r.Key, out var other))
                    throw new InputException(spec.Field, $"its route '{r}' has the same table, destination and metric as '{other}'");
                keys.Add(r.Key, r);
                routes.Add(r);
            }
            rules.AddRange(state.Rules.Where(r => !rules.Contains(r)));
        }
        var nexthops = new List<Nexthop>();
        foreach (var r in UplinkFailover.Routes(policy.Failover, resolved, snapshot, policy.Protocol, policy.TableNames, policy.FailClosedTables, notes,
                     [.. policy.Uplinks.Select(u => u.Name)], nexthops))
        {
            if (keys.TryGetValue(r.Key, out var other))
                throw new InputException(policy.Failover.First(f => f.Table == r.Table).Field,
                    $"its route '{r}' has the same table, destination and metric as '{other}'; give the Failover line another metric");
            keys.Add(r.Key, r);
            routes.Add(r);
        }
        return PolicyState.Settle(new KernelState(routes, rules) { Nexthops = nexthops }, snapshot.State);
    }

    /// <summary>
    /// A host route to the remote end of every tunnel OSPF runs over, via the underlay the kernel uses for it
    /// now (outside the tunnels), in main: whatever the daemon learns, a tunnel's own packets never route into
    /// a tunnel (recursive routing would take the tunnel down as soon as its remote's network is learned
    /// through it). The underlay's route is the longest match in main that goes over none of the tunnels.
    /// </summary>
    static List<Route> Pins(ParsedPolicy policy, KernelSnapshot snapshot, List<PlanNote> notes)
    {
        if (policy.Routing is not { } routing) return [];
        var overlay = new HashSet<string>(routing.Ospf.Interfaces.Select(i => i.Name), StringComparer.Ordinal);
        foreach (var t in policy.Tunnels) overlay.Add(t.Link.Name);
        var pins = new List<Route>();
        foreach (var t in policy.Tunnels)
        {
            if (!routing.Ospf.Interfaces.Any(i => i.Name == t.Link.Name)) continue;
            var remote = t.Link.Remote;
            var host = new IPNetwork(remote, Net.MaxPrefix(remote.AddressFamily));
            Route? best = null;
            foreach (var r in snapshot.State.Routes)
            {
                if (r.Table != TableNames.Main || r.Type != RouteType.Unicast || r.Family != remote.AddressFamily) continue;
                if (r.Device is { } dev && overlay.Contains(dev)) continue;
                if (r.Protocol == policy.Protocol && r.Destination == host) continue; // our pin of an earlier run
                if (!r.Destination.Contains(remote)) continue;
                if (best is null || r.Destination.PrefixLength > best.Destination.PrefixLength
                    || (r.Destination.PrefixLength == best.Destination.PrefixLength && r.Metric < best.Metric))
                    best = r;
            }
            if (best is null)
            {
                notes.Add(new($"{t.Field}: no route to {remote} outside the tunnels in main; its remote is not pinned to an underlay", Stated: true));
                continue;
            }
            pins.Add(new Route(host, TableNames.Main, policy.Protocol, best.Device, best.Gateway, onLink: best.OnLink));
            notes.Add(new($"{t.Link.Name}: remote {remote} pinned to {(best.Gateway is null ? "" : $"via {best.Gateway} ")}dev {best.Device}, outside the tunnels", Stated: false));
        }
        return pins;
    }

    /// <summary>The routing daemon's file: rewritten (and the daemon reloaded) when its text differs from
    /// what the policy renders; flush leaves it with nothing configured. When the file changed or this run makes one
    /// of its interfaces or their addresses, the apply ends by waiting until the daemon runs OSPF on each
    /// (<see cref="SettleOspf"/>).</summary>
    /// <param name="tunnels">this run's changes to the owned tunnels.</param>
    static IReadOnlyList<Change> Daemon(ParsedPolicy policy, KernelSnapshot snapshot, ReconcileMode mode, IReadOnlyList<Change>? tunnels = null)
    {
        if (policy.Routing is not { } r) return [];
        var old = snapshot.Files.TryGetValue(r.ConfigFile, out var text) ? text : null;
        var next = mode == ReconcileMode.Flush ? null : r.Render(policy.Source);
        if (next is null && (old is null || old == WriteRoutingConfig.Empty(r.Daemon))) return [];
        var write = old == next ? null : new WriteRoutingConfig(r.Daemon, r.ConfigFile, r.Control, old, next);
        if (next is null) return [write!];
        var names = r.Ospf.Interfaces.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        var made = tunnels?.Any(c => c switch
        {
            AddLink a => names.Contains(a.Tunnel.Name),
            ChangeLink l => names.Contains(l.New.Name),
            AddAddress a => names.Contains(a.Device),
            _ => false,
        }) == true;
        if (write is null && !made) return [];
        var settle = r.Settler(policy.Tunnels);
        return write is null ? [settle] : [write, settle];
    }

    /// <summary>The uplinks that resolve against the snapshot now, by name, with the spec they came from: what watch probes.</summary>
    public static IReadOnlyList<(UplinkSpec Spec, Uplink Uplink)> ResolvedUplinks(ParsedPolicy policy, KernelSnapshot snapshot)
    {
        var list = new List<(UplinkSpec, Uplink)>();
        foreach (var spec in policy.Uplinks)
        {
            try
            {
                if (Resolve(spec, snapshot, [], policy.Protocol) is { } u) list.Add((spec, u));
            }
            catch (InputException) { } // the plan says it
        }
        return list;
    }

    /// <summary>Fills what the policy left out from the snapshot: the address and prefix of the interface,
    /// and the gateway of its default route in the main table. Null when the uplink waits: its device does not
    /// exist yet, or has no address yet (DHCP) and the policy gives none.</summary>
    static Uplink? Resolve(UplinkSpec s, KernelSnapshot snapshot, List<PlanNote> notes, byte protocol)
    {
        if (!snapshot.Links.Any(l => l.Name == s.Device)) return null;
        IReadOnlyList<InterfaceAddress> KernelAddresses() =>
            snapshot.GlobalAddresses.TryGetValue(s.Device, out var list) ? list : [];

        var addresses = new List<InterfaceAddress>();
        if (s.Address is { } a)
        {
            var prefix = s.PrefixLength ?? KernelAddresses().FirstOrDefault(k => k.Address.Equals(a))?.PrefixLength
                ?? throw new InputException($"{s.Field}.Address",
                    $"{a} is not on {s.Device}, so its prefix length cannot be read; write it with its prefix, e.g. {a}/{(a.AddressFamily.IsV6() ? 64 : 24)}");
            addresses.Add(new InterfaceAddress(a, prefix));
        }
        else
        {
            // The primary address of each family, as the kernel lists them.
            foreach (var family in (ReadOnlySpan<AddressFamily>)[AddressFamily.InterNetwork, AddressFamily.InterNetworkV6])
                if (KernelAddresses().FirstOrDefault(k => k.Family == family) is { } k) addresses.Add(k);
            if (addresses.Count == 0) return null;
        }

        var gateways = new List<IPAddress>();
        foreach (var address in addresses.ToList())
        {
            var gateway = s.GatewayOf(address.Family)
                ?? snapshot.State.Routes
                    .Where(r => r.Table == TableNames.Main && r.Destination.PrefixLength == 0 && r.Type == RouteType.Unicast
                                && r.Device == s.Device && r.Gateway is not null && r.Family == address.Family
                                // Not a Failover route of main: it comes and goes with the uplink's health.
                                && r.Protocol != protocol)
                    .OrderBy(r => r.Metric).FirstOrDefault()?.Gateway;
            if (gateway is not null) { gateways.Add(gateway); continue; }
            if (s.Address is not null)
                throw new InputException($"{s.Field}.Gateway",
                    $"is not set and table main has no default route via {s.Device} to read it from; set Gateway");
            // A family read from the kernel without a gateway: reply routing to the connected network only
            // would send the rest to main's default route, the very thing uplinks exist to avoid; leave it out.
            notes.Add(new(address.Family.IsV6()
                ? $"{s.Field}: IPv6 left out: {s.Device} has {address.Address}, but main has no IPv6 default route via {s.Device} and the uplink no Gateway6; set Gateway6 to route its replies too"
                : $"{s.Field}: IPv4 left out: {s.Device} has {address.Address}, but main has no IPv4 default route via {s.Device} and the uplink no IPv4 Gateway; set Gateway to route its replies too",
                Stated: true));
            addresses.Remove(address);
        }
        if (addresses.Count == 0)
            throw new InputException($"{s.Field}.Gateway", $"is not set and table main has no default route via {s.Device} to read it from; set Gateway");
        if (s.Gateway is { } given && !gateways.Contains(given))
            throw new InputException($"{s.Field}.Gateway", $"{given} is not of the family of the uplink's address {addresses[0].Address}");
        if (s.Gateway6 is { } given6 && !gateways.Contains(given6))
            throw new InputException($"{s.Field}.Gateway6", $"{s.Device} has no global IPv6 address to route replies from");
        return new Uplink(s.Device, s.Table, s.Priority, addresses, gateways);
    }

    /// <summary>TunnelRouter's own nftables table, replaced as a whole in one transaction whenever its
    /// fingerprint or its chains and rules differ from the policy's, removed when the policy has no marks. Other tables
    /// (firewalls, Docker, fail2ban) are never read or touched.</summary>
    static IReadOnlyList<Change> Marks(NftTable? desired, KernelSnapshot snapshot)
    {
        var current = snapshot.Nft;
        if (MarksInPlace(desired, current)) return [];
        return [new ReplaceNftTable(current?.Definition, desired?.Definition)];
    }

    /// <summary>Whether the kernel's table is the policy's (none when the policy has no marks): what the plan leaves
    /// alone, and what status and explain call "as in the policy". By content, not only by the comment: a flushed chain
    /// or a deleted rule keeps the comment.</summary>
    public static bool MarksInPlace(NftTable? desired, NftTableState? current) =>
        desired is null ? current is null
            : current is not null && current.Fingerprint == desired.Fingerprint && NftMarks.SameRules(current.Definition, desired.Definition);

    /// <summary>Sysctls set when they differ. They are not owned objects: flush leaves them as they are,
    /// because they are host settings an admin asked for (turning ip_forward off on flush would cut a router
    /// off its clients). Apply does roll them back if the same apply fails.</summary>
    static IReadOnlyList<Change> Sysctls(ParsedPolicy policy, KernelSnapshot snapshot)
    {
        var changes = new List<Change>();
        foreach (var s in SysctlStates(policy, snapshot))
        {
            var current = s.Have
                ?? throw new InputException($"{policy.Source}: Sysctls.{s.Key}", "no such setting in this kernel or network namespace (is the interface present, the module loaded?)");
            if (!s.InPlace) changes.Add(new SetSysctl(s.Key, current, s.Want));
        }
        return changes;
    }

    /// <summary>Each of the policy's sysctls against the kernel's value (null: no such setting here), in the policy's
    /// order: what the plan sets, and what status shows.</summary>
    public static IEnumerable<SysctlState> SysctlStates(ParsedPolicy policy, KernelSnapshot snapshot)
    {
        foreach (var (key, want) in policy.Sysctls)
        {
            var have = snapshot.Sysctls.TryGetValue(key, out var v) ? v : null;
            yield return new SysctlState(key, want, have, have is not null && Sysctl.SameValue(have, want));
        }
    }
}
