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
        return (new Ownership(r => r.Protocol == protocol && !keptRoutes.Contains(r), r => r.Protocol == protocol && !keptRules.Contains(r)),
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
        _ => false,
    };

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
}
