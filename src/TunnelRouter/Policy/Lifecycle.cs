using TunnelRouter.Core;

namespace TunnelRouter.Policy;

/// <summary>How long an owned object lives (docs/lifecycle.md).</summary>
public enum Lifetime
{
    /// <summary>Installed by apply from boot, whatever tunnel is up: the policy's routes and rules, a FailClosed table's
    /// kill switches and the rules that select traffic into such a table. Carries apply's protocol. down, a dead tunnel
    /// and plain flush never remove a kill switch or a rule into its table; only flush --all does.</summary>
    Steady,

    /// <summary>Belongs to one live tunnel: installed by its up, removed by its down or when its record is forgotten
    /// (the device went without a down). Carries the hook's protocol and is listed in the tunnel's record.</summary>
    Tunnel,
}

/// <summary>A way traffic can leave in clear that the policy allows, and how to write the policy so it cannot.</summary>
public sealed record Leak(string Message, string Fix)
{
    public override string ToString() => $"{Message}; {Fix}";
}

/// <summary>
/// The lifecycle model in code: which objects are steady and which belong to one live tunnel, and how a kill switch
/// and the rules that select traffic into it are recognised — from the policy, and from the kernel alone (flush does
/// not need a policy that parses to keep them). Pure.
/// </summary>
public static class Lifecycle
{
    /// <summary>A kill switch: an unreachable default of <paramref name="protocol"/> at the table's highest metric, as
    /// FailClosed installs it (or a Routes line written the same way).</summary>
    public static bool IsKillSwitch(Route r, byte protocol) =>
        r.Protocol == protocol && r.Type == RouteType.Unreachable && r.Destination.PrefixLength == 0 && r.Metric == PolicyParser.FailClosedMetric;

    /// <summary>A table's kill switches: an unreachable default in both families at its highest metric.</summary>
    public static Route[] KillSwitches(uint table, byte protocol) =>
    [
        new(new System.Net.IPNetwork(System.Net.IPAddress.Any, 0), table, protocol, metric: PolicyParser.FailClosedMetric, type: RouteType.Unreachable),
        new(new System.Net.IPNetwork(System.Net.IPAddress.IPv6Any, 0), table, protocol, metric: PolicyParser.FailClosedMetric, type: RouteType.Unreachable),
    ];

    /// <summary>
    /// A table the tunnel's rules send traffic into that has no default route of that family in the kernel and is not
    /// closed by the policy (a second instance's table, named by <c>setenv TUNNEL_ROUTER_TABLE vpn2</c>, which no line of
    /// the policy routes): where the policy fails closed at all, the tunnel closes it itself — an unreachable default at
    /// the table's highest metric, the tunnel's object (its protocol, its record), going with the rules at down. Without
    /// it the pool's packets would fall through to main and leave by the plain uplink.
    /// </summary>
    public static KernelState CloseUnserved(KernelState tunnel, KernelState current, IReadOnlySet<uint> closed)
    {
        var add = new List<Route>();
        foreach (var rule in tunnel.Rules)
        {
            if (rule.Action != RuleAction.Lookup || closed.Contains(rule.Table)) continue;
            foreach (var k in KillSwitches(rule.Table, rule.Protocol))
                if (k.Family == rule.Family && !add.Contains(k)
                    && !current.Routes.Concat(tunnel.Routes).Any(r => r.Table == rule.Table && r.Family == k.Family && r.Destination.PrefixLength == 0))
                    add.Add(k);
        }
        return add.Count == 0 ? tunnel : tunnel with { Routes = [.. add, .. tunnel.Routes] };
    }

    /// <summary>
    /// What the hook installs apart from its tunnel, before it (docs/lifecycle.md, "kill switches first"): the kill switch
    /// of every closed table the tunnel's objects route into, and its instance's steady rules — apply's objects, with
    /// apply's <paramref name="protocol"/>, added when missing and never removed by the hook, so that OpenVPN starting
    /// before the unit's apply never leaves a closed table open. Not in the tunnel's record.
    /// </summary>
    public static KernelState SteadyAtUp(KernelState tunnel, InstanceSpec? instance, IReadOnlySet<uint> closed, byte protocol)
    {
        if (closed.Count == 0) return KernelState.Empty;
        var rules = instance?.SteadyRules(protocol).ToList() ?? [];
        var tables = new SortedSet<uint>();
        foreach (var r in tunnel.Routes)
            if (closed.Contains(r.Table)) tables.Add(r.Table);
        foreach (var r in tunnel.Rules.Concat(rules))
            if (Selects(r, closed)) tables.Add(r.Table);
        return new KernelState([.. tables.SelectMany(t => KillSwitches(t, protocol))], rules);
    }

    /// <summary>The tables that hold a kill switch of <paramref name="protocol"/>: closed tables, read from the kernel.</summary>
    public static HashSet<uint> ClosedTables(IEnumerable<Route> routes, byte protocol)
    {
        var tables = new HashSet<uint>();
        foreach (var r in routes)
            if (IsKillSwitch(r, protocol)) tables.Add(r.Table);
        return tables;
    }

    /// <summary>A rule that sends the traffic it selects into one of the closed tables: a fail-closed selector.</summary>
    public static bool Selects(Rule rule, IReadOnlySet<uint> closed) => rule.Action == RuleAction.Lookup && closed.Contains(rule.Table);

    /// <summary>The lifetime of an Instances rule: steady when it has no placeholder and looks up a closed table (apply
    /// installs it at boot, with apply's protocol), else the tunnel's.</summary>
    public static Lifetime Of(InstanceLine line, Rule sample, IReadOnlySet<uint> closed) =>
        line.Placeholders.Count == 0 && Selects(sample, closed) ? Lifetime.Steady : Lifetime.Tunnel;

    /// <summary>
    /// What plain flush (the unit's stop) keeps of apply's objects: every kill switch, and every rule of apply's that
    /// selects traffic into a table with one. Read from the kernel alone. The rest of apply's objects are removed.
    /// </summary>
    public static (Ownership Removed, IReadOnlyList<Route> KillSwitches, IReadOnlyList<Rule> Selectors) FlushKeeps(KernelState kernel, byte protocol)
    {
        var closed = ClosedTables(kernel.Routes, protocol);
        if (closed.Count == 0) return (Ownership.ByProtocol(protocol), [], []);
        var switches = kernel.Routes.Where(r => IsKillSwitch(r, protocol)).ToList();
        var selectors = kernel.Rules.Where(r => r.Protocol == protocol && Selects(r, closed)).ToList();
        var keptRoutes = switches.ToHashSet();
        var keptRules = selectors.ToHashSet();
        return (new Ownership(r => r.Protocol == protocol && !keptRoutes.Contains(r), r => r.Protocol == protocol && !keptRules.Contains(r))
                { Nexthop = n => n.Protocol == protocol },
            switches, selectors);
    }

    /// <summary>
    /// A change that closes a fail-closed table again: a kill switch put back, or a rule into a closed table (any owner's:
    /// the policy's selector, a live tunnel's pool rule). watch never rate-limits nor backs off from these: while one is
    /// missing the table's traffic is refused (the switch) or sent by main (the rule).
    /// </summary>
    public static bool Closes(Change c, IReadOnlySet<uint> closed, byte protocol) => c switch
    {
        AddRoute a => IsKillSwitch(a.Route, protocol),
        ReplaceRoute r => IsKillSwitch(r.New, protocol),
        AddRule a => Selects(a.Rule, closed),
        ReplaceNftTable { Table: NftGuard.QualifiedName, New: not null } => true,
        _ => false,
    };

    /// <summary>
    /// What the fail-closed guard (<see cref="NftGuard"/>) is rendered from, or null when the policy closes no table. A closed
    /// table's traffic may leave by: the devices of its routes (a route's <c>dev</c>; for a route via a gateway, the device
    /// of main's connected network holding the gateway), its uplinks' and GRE tunnels' devices, and the live tunnels
    /// (records) with routes in it; the live tunnels' pool rules into it add their pools to what it guards.
    /// </summary>
    public static GuardSpec? Guard(ParsedPolicy policy, IReadOnlyList<TunnelRecord> live, KernelSnapshot snapshot)
    {
        var closed = policy.FailClosedTables;
        if (closed.Count == 0) return null;
        var devices = closed.ToDictionary(t => t, _ => new HashSet<string>(StringComparer.Ordinal));
        var pools = closed.ToDictionary(t => t, _ => new List<System.Net.IPNetwork>());
        List<Route>? connected = null;
        void Allow(Route r)
        {
            if (!devices.TryGetValue(r.Table, out var set) || r.Type != RouteType.Unicast) return;
            if (r.Device is { } dev) { set.Add(dev); return; }
            if (r.Gateway is not { } g) return;
            connected ??= [.. snapshot.State.Routes.Where(c => c.Table == TableNames.Main && c.Gateway is null && c.Type == RouteType.Unicast && c.Device is not null)];
            foreach (var c in connected)
                if (c.Family == r.Family && c.Destination.Contains(g)) { set.Add(c.Device!); return; }
        }
        // The Routes lines, and one route of each prefix file (its routes share table, device and gateway).
        var listed = policy.PrefixLists.Sum(l => l.Routes.Count);
        for (var i = 0; i < policy.Routes.Count - listed; i++) Allow(policy.Routes[i]);
        foreach (var l in policy.PrefixLists)
            if (l.Routes.Count > 0) Allow(l.Routes[0]);
        foreach (var u in policy.Uplinks)
            if (devices.TryGetValue(u.Table, out var set)) set.Add(u.Device);
        // A table that fails over may leave by each of its uplinks, whichever is up: the guard does not change with health.
        foreach (var f in policy.Failover)
            if (devices.TryGetValue(f.Table, out var set))
                foreach (var name in f.Via)
                    if (policy.Uplinks.FirstOrDefault(u => u.Name == name) is { } u) set.Add(u.Device);
        foreach (var t in policy.Tunnels)
            foreach (var r in t.Routes)
                if (devices.TryGetValue(r.Table, out var set)) set.Add(t.Link.Name);
        foreach (var record in live)
        {
            if (snapshot.Links.Count > 0 && !record.LivesOn(snapshot.Links)) continue;
            foreach (var r in record.Routes)
                if (devices.TryGetValue(r.Table, out var set) && r.Type == RouteType.Unicast) set.Add(r.Device ?? record.Device);
            foreach (var rule in record.Rules)
                if (Selects(rule, closed) && rule.From is { } pool)
                {
                    pools[rule.Table].Add(pool);
                    devices[rule.Table].Add(record.Device);
                }
        }
        return new GuardSpec(policy.Rules,
            [.. closed.Order().Select(t => new GuardedTable(t, [.. devices[t]], pools[t]))], policy.PoolRulePriority);
    }

    /// <summary>What the hook adds to the guard at up and removes at down: for each closed table its tunnel routes into or
    /// its pool rules look up, its device, and its pools whose rules look the table up.</summary>
    public static List<(uint Table, string Device, IReadOnlyList<System.Net.IPNetwork> Pools)> GuardElements(string device, KernelState tunnel, IReadOnlySet<uint> closed)
    {
        var tables = new SortedSet<uint>();
        foreach (var r in tunnel.Routes)
            if (closed.Contains(r.Table) && r.Type == RouteType.Unicast) tables.Add(r.Table);
        foreach (var rule in tunnel.Rules)
            if (Selects(rule, closed)) tables.Add(rule.Table);
        return [.. tables.Select(t => (t, device, (IReadOnlyList<System.Net.IPNetwork>)[.. tunnel.Rules.Where(r => Selects(r, closed) && r.Table == t && r.From is not null).Select(r => r.From!.Value).Distinct()]))];
    }

    /// <summary>
    /// Instances rules that select traffic into a closed table but cannot be steady (a placeholder makes them exist only
    /// between up and down): before up and after down their traffic is not selected at all and leaves by main. One
    /// sentence each, with the fix; plan, apply and doctor say them.
    /// </summary>
    public static IEnumerable<Leak> Findings(ParsedPolicy policy)
    {
        var closed = policy.FailClosedTables;
        if (closed.Count == 0) yield break;
        foreach (var spec in policy.Instances)
            for (var j = 0; j < spec.Rules.Count; j++)
            {
                var line = spec.Rules[j];
                if (line.Placeholders.Count == 0 || !Selects(spec.Samples[j], closed)) continue;
                var table = spec.Samples[j].Table;
                var names = string.Join(", ", line.Placeholders.Select(p => "${" + p.Variable + "}").Distinct());
                yield return new Leak($"{line.Field}: '{line.Text}' selects traffic into the fail-closed table {policy.TableNames.Format(table)}, but {names} " +
                             "makes it exist only while the tunnel is up: before up and after down its traffic is not selected and leaves by main",
                             "write it without placeholders (the LAN's own prefix, the server's address) so that apply installs it at boot and it stays");
            }
    }

    /// <summary>
    /// Rules whose table has neither a route for what they select nor a kill switch: their traffic falls through to the
    /// rules after them, to main, and leaves by the plain uplink — a second instance's table (TUNNEL_ROUTER_TABLE) with
    /// pool rules and no default route, a table whose only default came from a skipped optional line. Judged per family
    /// over what the policy installs, what the live tunnels' records hold and what the kernel has now. One finding per
    /// table and family, naming the first rule, with the fix.
    /// </summary>
    public static IEnumerable<Leak> FallThrough(ParsedPolicy policy, IReadOnlyList<TunnelRecord> live, KernelSnapshot snapshot)
    {
        // Who wrote each rule is said only for the one named: no string is made for the thousands that are fine.
        var rules = new List<(Rule Rule, string? Device)>();
        foreach (var r in policy.Rules) rules.Add((r, null));
        foreach (var t in live)
            foreach (var r in t.Rules) rules.Add((r, t.Device));
        rules.RemoveAll(x => x.Rule.Action != RuleAction.Lookup || x.Rule.Table is 0 or TableNames.Main or TableNames.Local or TableNames.Default
                             || x.Rule.SuppressPrefixLength is not null);
        if (rules.Count == 0) yield break;

        var tables = rules.Select(x => x.Rule.Table).ToHashSet();
        // Only what can cover a rule's traffic: a table's destinations (a prefix file's routes are specific: not read
        // here), by table and family; a table with a default route of a family covers every rule of it. The policy's
        // packed routes are read in place, never made into Route objects (10,000 of them per apply otherwise).
        var destinations = new Dictionary<(uint Table, bool V6), List<System.Net.IPNetwork>>();
        var defaulted = new HashSet<(uint Table, bool V6)>();
        void One(uint table, System.Net.IPNetwork destination, RouteType type)
        {
            if (!tables.Contains(table) || type == RouteType.Throw) return;
            var key = (table, destination.BaseAddress.AddressFamily.IsV6());
            if (destination.PrefixLength == 0) defaulted.Add(key);
            else if (!defaulted.Contains(key)) (destinations.TryGetValue(key, out var list) ? list : destinations[key] = []).Add(destination);
        }
        void Add(IEnumerable<Route> some)
        {
            foreach (var r in some) One(r.Table, r.Destination, r.Type);
        }
        void AddList(IReadOnlyList<Route> list, int count)
        {
            if (list is not PackedRoutes packed)
            {
                Add(list.Take(count));
                return;
            }
            for (var k = 0; k < count; k++)
            {
                // The key's table, length and family first: its destination is made only for a route that can count.
                ref readonly var p = ref packed.At(k);
                if (!tables.Contains(p.Key.Table) || p.Tail.Type == RouteType.Throw) continue;
                var key = (p.Key.Table, p.Key.IsV6);
                if (p.Key.PrefixLength == 0) defaulted.Add(key);
                else if (!defaulted.Contains(key)) One(p.Key.Table, p.Key.Destination, p.Tail.Type);
            }
        }
        AddList(policy.Routes, policy.Routes.Count - policy.PrefixLists.Sum(l => l.Routes.Count));
        Add(policy.FailClosed);
        Add(policy.Tunnels.SelectMany(t => t.Routes));
        Add(live.SelectMany(t => t.Routes));
        AddList(snapshot.State.Routes, snapshot.State.Routes.Count);
        // An uplink's table gets its default route via the uplink's gateway.
        var uplinkTables = policy.Uplinks.Select(u => u.Table).ToHashSet();

        var said = new HashSet<(uint, bool)>();
        foreach (var (rule, device) in rules)
        {
            var v6 = rule.Family.IsV6();
            if (uplinkTables.Contains(rule.Table) || said.Contains((rule.Table, v6))) continue;
            if (defaulted.Contains((rule.Table, v6))) continue;
            var wanted = rule.To ?? new System.Net.IPNetwork(v6 ? System.Net.IPAddress.IPv6Any : System.Net.IPAddress.Any, 0);
            if (destinations.TryGetValue((rule.Table, v6), out var some)
                && some.Any(d => d.PrefixLength <= wanted.PrefixLength && d.Contains(wanted.BaseAddress))) continue;
            var where = device is null ? $"{policy.Source}: rule '{Show(rule, policy)}'" : $"{device}'s rule '{Show(rule, policy)}'";
            said.Add((rule.Table, v6));
            var table = policy.TableNames.Format(rule.Table);
            yield return new Leak($"{where}: table {table} has no {(v6 ? "IPv6" : "IPv4")} route for its traffic and no kill switch: its traffic falls through to main",
                $"give table {table} a default route (Routes, an Instances line) or put it in FailClosed");
        }
    }

    /// <summary>
    /// A fail-closed table an up tunnel's Instances entry routes into, holding nothing but its kill switches: the tunnel is
    /// up and its traffic is refused — an optional line was skipped (the server pushed no route_vpn_gateway) or a route was
    /// deleted. Closed, not leaking, but cut off while OpenVPN reports a healthy connection.
    /// </summary>
    public static IEnumerable<Leak> ClosedWhileUp(ParsedPolicy policy, IReadOnlyList<TunnelRecord> live, KernelSnapshot snapshot)
    {
        if (policy.FailClosedTables.Count == 0) yield break;
        foreach (var record in live)
        {
            if (!record.LivesOn(snapshot.Links) || InstanceConfig.Match(policy.Instances, record.Device) is not { } spec) continue;
            foreach (var table in spec.Routes.Select(l => TableOf(l, policy.TableNames)).OfType<uint>().Distinct())
            {
                if (!policy.FailClosedTables.Contains(table)
                    || snapshot.State.Routes.Any(r => r.Table == table && !IsKillSwitch(r, policy.Protocol))) continue;
                var name = policy.TableNames.Format(table);
                yield return new Leak($"{spec.Field}: {record.Device} is up, but the fail-closed table {name} has no route but its kill switch: " +
                                      "its traffic is refused (an optional line skipped? the server pushed no route_vpn_gateway?)",
                    $"route the tunnel's device itself, 'default dev ${{dev}} table {name}' (a tun device needs no gateway), then restart the tunnel or run apply");
            }
        }
    }

    /// <summary>The table an Instances route line names ("... table nyet"), or null (main).</summary>
    static uint? TableOf(InstanceLine line, TableNames names)
    {
        var words = line.Text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var at = Array.IndexOf(words, "table");
        return at >= 0 && at + 1 < words.Length && names.TryGetId(words[at + 1], out var id) ? id : null;
    }

    static string Show(Rule r, ParsedPolicy policy) =>
        (r.Family.IsV6() ? "-6 " : "") + IpCommand.RuleArgs(r, policy.TableNames, policy.ProtocolNames)
            .Replace($" protocol {policy.ProtocolNames.Format(r.Protocol)}", "", StringComparison.Ordinal);
}
