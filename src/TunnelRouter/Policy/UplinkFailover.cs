using System.Globalization;
using System.Net;
using System.Net.Sockets;
using TunnelRouter.Core;

namespace TunnelRouter.Policy;

/// <summary>
/// The Failover section: "table vpn via wan1 wan2 [metric N]". The table's default route of each family follows the
/// first uplink of the list that is up and has that family (<see cref="UplinkHealth.Choose"/>); with none up the route
/// goes, and a FailClosed table's kill switch refuses the traffic. Health comes from the snapshot
/// (<see cref="KernelSnapshot.UplinkStates"/>, which watch fills from its probes); a path it says nothing of is up while
/// its device is up. Pure: parse and plan, no I/O.
/// </summary>
public static class UplinkFailover
{
    const string Syntax = "table TABLE via UPLINK [weight W]... [metric N], the uplinks by their Name, e.g. \"table vpn via wan1 wan2\" " +
                          "or \"table vpn via wan1 weight 3 wan2 weight 1\"";

    /// <summary>The kernel's range of a nexthop group member's weight.</summary>
    const int MaxWeight = 256;

    // Nexthop numbers (Nexthop.IdOf): an uplink's gateway of a family 1 + 2 × its place in Uplinks (+1 for IPv6); a
    // balancing line's group GroupBase + 2 × its place in Failover (+1 for IPv6).
    const uint GroupBase = 0x80000;

    /// <param name="given">every uplink's name as written, the ones with a mistake too: a line naming one of those is not
    /// blamed for it (one mistake, one message).</param>
    public static List<FailoverSpec> Parse(IReadOnlyList<string> lines, IReadOnlyList<UplinkSpec> uplinks, IEnumerable<string?> given, PolicyTables tables,
        string src, List<InputException> errors)
    {
        var broken = given.Where(n => n is not null && !uplinks.Any(u => u.Name == n)).ToHashSet(StringComparer.Ordinal);
        var specs = new List<FailoverSpec>();
        for (var i = 0; i < lines.Count; i++)
            if (InputErrors.Collect(errors, () => ParseLine($"{src}: Failover[{i}]", lines[i] ?? "", uplinks, broken, tables)) is { } spec)
            {
                if (specs.FirstOrDefault(s => s.Table == spec.Table && s.Metric == spec.Metric) is { } twin)
                    errors.Add(new InputException(spec.Field, $"table {lines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries).SkipWhile(w => w != "table").Skip(1).FirstOrDefault()} " +
                                                              $"already follows its uplinks in {twin.Field[(twin.Field.LastIndexOf(": ", StringComparison.Ordinal) + 2)..]}; one line a table (or give each its own metric)"));
                else specs.Add(spec);
            }
        return specs;
    }

    static FailoverSpec? ParseLine(string field, string line, IReadOnlyList<UplinkSpec> uplinks, HashSet<string?> broken, PolicyTables tables)
    {
        var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        uint? table = null, metric = null;
        var via = new List<string>();
        var weights = new Dictionary<string, ushort>(StringComparer.Ordinal);
        var viaSeen = false;
        for (var i = 0; i < words.Length; i++)
        {
            switch (words[i])
            {
                case "table" when table is null:
                    if (i + 1 >= words.Length) throw new InputException(field, $"'table' needs a table; expected {Syntax}");
                    var name = words[++i];
                    var id = tables.Resolve(field, name)
                             ?? throw new InputException(field, $"'{Net.Printable(name)}' is not a table defined in rt_tables or the policy's Tables; " +
                                                                (Suggest.Closest(name, tables.Names) is { } meant ? $"did you mean '{meant}'?" : "add it to Tables"));
                    if (id is 0 or TableNames.Local or TableNames.Default)
                        throw new InputException(field, $"table {Net.Printable(name)} cannot follow uplinks; name main or a policy table");
                    if (uplinks.FirstOrDefault(u => u.Table == id) is { } own)
                        throw new InputException(field, $"table {Net.Printable(name)} is the uplink {own.Name}'s own (its replies' table, whose default is always its own); name another table");
                    table = id;
                    continue;
                case "metric" when metric is null:
                    if (i + 1 >= words.Length || !uint.TryParse(words[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var m) || m == uint.MaxValue)
                        throw new InputException(field, $"'metric' needs a number from 0 to {uint.MaxValue - 1} (the highest is the kill switch's)");
                    metric = m;
                    i++;
                    continue;
                case "via" when !viaSeen:
                    viaSeen = true;
                    while (i + 1 < words.Length && words[i + 1] is not ("table" or "metric" or "via"))
                    {
                        var u = words[++i];
                        if (u == "weight")
                        {
                            if (via.Count == 0) throw new InputException(field, $"'weight' follows the uplink it weighs; expected {Syntax}");
                            if (weights.ContainsKey(via[^1])) throw new InputException(field, $"uplink {via[^1]} has two weights");
                            if (i + 1 >= words.Length || !ushort.TryParse(words[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var w) || w is 0 or > MaxWeight)
                                throw new InputException(field, $"'weight' of {via[^1]} needs a number from 1 to {MaxWeight} (the kernel's range)");
                            weights[via[^1]] = w;
                            i++;
                            continue;
                        }
                        // An uplink with a mistake of its own: that error refuses the policy; this line is not blamed too.
                        if (broken.Contains(u)) return null;
                        if (!uplinks.Any(x => x.Name == u))
                            throw new InputException(field, $"'{Net.Printable(u)}' is not the Name of an uplink in Uplinks; " +
                                                            (Suggest.Closest(u, uplinks.Select(x => x.Name)) is { } close ? $"did you mean '{close}'?" : $"expected {Syntax}"));
                        if (via.Contains(u)) throw new InputException(field, $"uplink {u} is named twice after via");
                        via.Add(u);
                    }
                    continue;
                default:
                    throw new InputException(field, $"'{Net.Printable(words[i])}' is not expected here; expected {Syntax}");
            }
        }
        if (table is null) throw new InputException(field, $"names no table; expected {Syntax}");
        if (via.Count == 0) throw new InputException(field, $"names no uplink after via; expected {Syntax}");
        // One weight makes a balancing line: an uplink written without one weighs 1.
        return new FailoverSpec(field, table.Value, via, metric,
            weights.Count == 0 ? null : [.. via.Select(u => weights.TryGetValue(u, out var w) ? w : (ushort)1)]);
    }

    /// <summary>The state of an uplink's family for a plan: the snapshot's (watch's probes), else down when its device is
    /// down or gone, else up. Null: the uplink has no gateway of that family now (or is not resolved): passed over.</summary>
    public static PathState? StateOf(string name, AddressFamily family, IReadOnlyDictionary<string, Uplink> resolved, KernelSnapshot snapshot)
    {
        if (!resolved.TryGetValue(name, out var u) || !u.Gateways.Any(g => g.AddressFamily == family)) return null;
        if (snapshot.UplinkStates.TryGetValue(new UplinkPath(name, family), out var s)) return s;
        var link = snapshot.Links.FirstOrDefault(l => l.Name == u.Device);
        return link is null || !link.Up && snapshot.Links.Count > 0 ? PathState.Down : PathState.Up;
    }

    /// <summary>The default routes the Failover lines want now, and one note each saying which uplink and why.</summary>
    /// <param name="resolved">the uplinks resolved against the snapshot, by name (a waiting one is absent: down).</param>
    /// <param name="order">every uplink's name in the policy's order: it numbers their nexthops.</param>
    /// <param name="nexthops">gets the nexthops the balancing lines' routes go by: a gateway per uplink and family, a group per line and family.</param>
    public static List<Route> Routes(IReadOnlyList<FailoverSpec> lines, IReadOnlyDictionary<string, Uplink> resolved, KernelSnapshot snapshot, byte protocol,
        TableNames names, IReadOnlySet<uint> closed, List<PlanNote> notes, IReadOnlyList<string>? order = null, List<Nexthop>? nexthops = null)
    {
        var routes = new List<Route>();
        for (var l = 0; l < lines.Count; l++)
        {
            var f = lines[l];
            foreach (var family in (ReadOnlySpan<AddressFamily>)[AddressFamily.InterNetwork, AddressFamily.InterNetworkV6])
            {
                // No uplink of the list has this family (now): nothing to follow, nothing to say.
                if (!f.Via.Any(n => resolved.TryGetValue(n, out var u) && u.Gateways.Any(g => g.AddressFamily == family))) continue;
                if (f.Balances)
                {
                    Balance(f, l, family, resolved, snapshot, protocol, names, closed, notes, order ?? [.. resolved.Keys], routes, nexthops ??= []);
                    continue;
                }
                var chosen = UplinkHealth.Choose(f.Via, n => StateOf(n, family, resolved, snapshot));
                var fam = family.IsV6() ? "IPv6" : "IPv4";
                var others = string.Join(", ", f.Via.TakeWhile(n => n != chosen).Select(n => $"{n} {Describe(StateOf(n, family, resolved, snapshot))}"));
                var line = f.Field[(f.Field.LastIndexOf(": ", StringComparison.Ordinal) + 2)..];
                if (chosen is null)
                {
                    notes.Add(new($"{line}: table {names.Format(f.Table)} {fam}: no uplink is up ({others}): " +
                                  (closed.Contains(f.Table) ? "its kill switch refuses the traffic" : "no default route of its own, so the next rules decide"), Stated: true));
                    continue;
                }
                var uplink = resolved[chosen];
                var gateway = uplink.Gateways.First(g => g.AddressFamily == family);
                routes.Add(uplink.DefaultRoute(gateway, f.Table, protocol, f.Metric));
                // What a failure of the chosen uplink would change, as the health known now calls for it.
                var next = UplinkHealth.Choose([.. f.Via.Where(n => n != chosen)], n => StateOf(n, family, resolved, snapshot));
                var ifFails = next is not null ? $"via {next}"
                    : closed.Contains(f.Table) ? "its kill switch refuses the traffic" : "no default route of its own";
                notes.Add(new($"{line}: table {names.Format(f.Table)} {fam} via {chosen} ({gateway} dev {uplink.Device})" +
                              (others.Length == 0 ? ", the first of its uplinks" : $": {others}") + $"; if {chosen} fails: {ifFails}", Stated: others.Length > 0));
            }
        }
        return routes;
    }

    /// <summary>
    /// A balancing line's route of one family: <c>default nhid G table T</c>, where group G holds the gateway nexthop of
    /// every healthy uplink with its weight. A failover replaces G (one change), never the route; with no uplink healthy
    /// the route and G go, and a FailClosed table's kill switch refuses the traffic.
    /// </summary>
    static void Balance(FailoverSpec f, int index, AddressFamily family, IReadOnlyDictionary<string, Uplink> resolved, KernelSnapshot snapshot, byte protocol,
        TableNames names, IReadOnlySet<uint> closed, List<PlanNote> notes, IReadOnlyList<string> order, List<Route> routes, List<Nexthop> nexthops)
    {
        var v6 = family.IsV6();
        var fam = v6 ? "IPv6" : "IPv4";
        var line = f.Field[(f.Field.LastIndexOf(": ", StringComparison.Ordinal) + 2)..];
        var chosen = UplinkHealth.ChooseAll(f.Via, n => StateOf(n, family, resolved, snapshot));
        var left = string.Join(", ", f.Via.Where(n => !chosen.Contains(n)).Select(n => $"{n} {Describe(StateOf(n, family, resolved, snapshot))}"));
        // Every uplink of the line whose device is up keeps its gateway's nexthop, healthy or not: a failover then changes
        // the group alone (one change). A device that goes down takes its nexthops with it (the kernel's doing).
        var members = new List<NexthopMember>();
        foreach (var name in f.Via)
        {
            if (StateOf(name, family, resolved, snapshot) is null || !resolved.TryGetValue(name, out var uplink)) continue;
            var link = snapshot.Links.FirstOrDefault(x => x.Name == uplink.Device);
            if (link is null ? snapshot.Links.Count > 0 : !link.Up) continue;
            var gateway = uplink.Gateways.First(g => g.AddressFamily == family);
            var place = (uint)Math.Max(0, IndexOf(order, name));
            var single = new Nexthop(Nexthop.IdOf(protocol, 1 + 2 * place + (v6 ? 1u : 0)), protocol, uplink.Device, gateway,
                uplink.DefaultRoute(gateway, f.Table, protocol).OnLink);
            if (!nexthops.Contains(single)) nexthops.Add(single);
            if (chosen.Contains(name)) members.Add(new NexthopMember(single.Id, f.Weights![IndexOf(f.Via, name)]));
        }
        if (members.Count == 0)
        {
            notes.Add(new($"{line}: table {names.Format(f.Table)} {fam}: no uplink is up ({left}): " +
                          (closed.Contains(f.Table) ? "its kill switch refuses the traffic" : "no default route of its own, so the next rules decide"), Stated: true));
            return;
        }
        var group = new Nexthop(Nexthop.IdOf(protocol, GroupBase + 2 * (uint)index + (v6 ? 1u : 0)), protocol, Group: members);
        nexthops.Add(group);
        routes.Add(new Route(new IPNetwork(v6 ? IPAddress.IPv6Any : IPAddress.Any, 0), f.Table, protocol, metric: f.Metric, nexthop: group.Id));
        var spread = string.Join(", ", chosen.Select(n => $"{n} weight {f.Weights![IndexOf(f.Via, n)]}"));
        notes.Add(new($"{line}: table {names.Format(f.Table)} {fam} balanced over {spread} (nexthop group {group.Id})" + (left.Length == 0 ? "" : $": {left}"),
            Stated: left.Length > 0));
    }

    static int IndexOf(IReadOnlyList<string> list, string name)
    {
        for (var i = 0; i < list.Count; i++)
            if (list[i] == name) return i;
        return -1;
    }

    static string Describe(PathState? s) => s switch
    {
        PathState.Down => "is down",
        PathState.Holding => "is back but within its hold time",
        null => "has no gateway of this family or waits for its device",
        _ => "is up",
    };
}
