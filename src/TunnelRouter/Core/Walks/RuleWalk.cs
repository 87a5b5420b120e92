using System.Net;
using System.Net.Sockets;

namespace TunnelRouter.Core;

/// <summary>The flow <c>explain</c> asks about: what the kernel's policy routing matches a packet on.</summary>
public sealed record Packet(
    AddressFamily Family,
    IPAddress? From,
    IPAddress To,
    string Iif,
    uint Mark = 0,
    byte? IpProto = null,
    ushort? SourcePort = null,
    ushort? DestinationPort = null,
    uint Uid = 0)
{
    /// <summary>What the kernel puts in the flow's input interface for a packet this host sends.</summary>
    public const string LocalIif = "lo";

    public bool IsLocal => Iif == LocalIif;
}

/// <summary>A rule as the kernel lists it, with the two actions <see cref="Rule"/> does not model.</summary>
public sealed record RuleEntry(Rule Rule, uint? GotoPriority = null, bool Nop = false);

/// <summary>One rule the walk looked at, and what became of the packet there.</summary>
public sealed record RuleStep(RuleEntry Entry, RuleOutcome Outcome, Route? Route = null, string? Why = null);

public enum RuleOutcome
{
    /// <summary>A selector did not match.</summary>
    NoMatch,
    /// <summary>Matched, but its table had no route (or only a throw route, or one suppressed): next rule.</summary>
    PassedOver,
    /// <summary>Matched and jumped (goto) or did nothing (nop).</summary>
    Continued,
    /// <summary>Matched and decided: a route was found, or the rule itself drops the packet.</summary>
    Decided,
}

/// <summary>
/// The kernel's policy routing, evaluated: rules in priority order against a packet (fib_rule_match and
/// fib4/fib6_rule_match), then the longest-prefix route of each table a matching rule looks up. Pure. It
/// is a prediction: <c>explain</c> always confirms it with the kernel's own lookup (ip route get).
/// </summary>
public static class RuleWalk
{
    /// <param name="tableLookup">the best route in a table for the destination, or null; the local table
    /// (255) is the caller's to answer, since its routes are the kernel's own.</param>
    public static List<RuleStep> Walk(IReadOnlyList<RuleEntry> rules, Packet packet, Func<uint, Route?> tableLookup)
    {
        var steps = new List<RuleStep>();
        var ordered = rules.Where(r => r.Rule.Family == packet.Family).OrderBy(r => r.Rule.Priority).ToList();
        for (var i = 0; i < ordered.Count; i++)
        {
            var entry = ordered[i];
            var why = Mismatch(entry.Rule, packet);
            if (why is not null) { steps.Add(new RuleStep(entry, RuleOutcome.NoMatch, Why: why)); continue; }
            if (entry.Nop) { steps.Add(new RuleStep(entry, RuleOutcome.Continued, Why: "nop")); continue; }
            if (entry.GotoPriority is { } target)
            {
                steps.Add(new RuleStep(entry, RuleOutcome.Continued, Why: $"goto {target}"));
                var next = ordered.FindIndex(r => r.Rule.Priority >= target);
                if (next < 0) break;
                i = next - 1;
                continue;
            }
            if (entry.Rule.Action != RuleAction.Lookup)
            {
                steps.Add(new RuleStep(entry, RuleOutcome.Decided, Why: entry.Rule.Action.ToString().ToLowerInvariant()));
                break;
            }
            var route = tableLookup(entry.Rule.Table);
            if (route is null) { steps.Add(new RuleStep(entry, RuleOutcome.PassedOver, Why: "no route for the destination in that table")); continue; }
            if (route.Type == RouteType.Throw) { steps.Add(new RuleStep(entry, RuleOutcome.PassedOver, route, "a throw route sends it on to the next rule")); continue; }
            if (entry.Rule.SuppressPrefixLength is { } spl && route.Destination.PrefixLength <= spl)
            {
                steps.Add(new RuleStep(entry, RuleOutcome.PassedOver, route, $"suppress_prefixlength {spl} rejects a /{route.Destination.PrefixLength} route"));
                continue;
            }
            steps.Add(new RuleStep(entry, RuleOutcome.Decided, route));
            break;
        }
        return steps;
    }

    /// <summary>Null when every selector of the rule matches the packet, else the first that does not.</summary>
    public static string? Mismatch(Rule r, Packet p)
    {
        var why = SelectorMismatch(r, p);
        // "not" inverts the whole selector match, as in fib_rule_match.
        return r.Not ? why is null ? "matches, and the rule says 'not'" : null : why;
    }

    static string? SelectorMismatch(Rule r, Packet p)
    {
        if (r.Iif is not null && r.Iif != p.Iif) return $"iif {r.Iif}";
        // A flow looked up for a packet has no output interface yet.
        if (r.Oif is not null) return $"oif {r.Oif}";
        if (r.FwMark is { } mark && ((p.Mark ^ mark) & (r.FwMask ?? uint.MaxValue)) != 0) return $"fwmark 0x{mark:x}";
        if (r.UidRange is { } uid && (p.Uid < uid.Start || p.Uid > uid.End)) return $"uidrange {uid}";
        if (r.IpProto is { } proto && p.IpProto != proto) return $"ipproto {IpProtocols.Format(proto)}";
        if (r.SourcePort is { } sp && (p.SourcePort is not { } s || s < sp.Start || s > sp.End)) return $"sport {sp}";
        if (r.DestinationPort is { } dp && (p.DestinationPort is not { } d || d < dp.Start || d > dp.End)) return $"dport {dp}";
        var from = p.From ?? (p.Family.IsV6() ? IPAddress.IPv6Any : IPAddress.Any);
        if (r.From is { } f && !f.Contains(from)) return $"from {Net.Format(f)}";
        if (r.To is { } t && !t.Contains(p.To)) return $"to {Net.Format(t)}";
        // Packets are asked about with tos 0; a rule with a tos matches only that tos.
        if (r.Tos != 0) return $"tos 0x{r.Tos:x2}";
        return null;
    }

    /// <summary>The route the kernel's FIB would pick in one table: longest prefix, then lowest metric.</summary>
    public static Route? Longest(IEnumerable<Route> routes, IPAddress destination) =>
        routes.Where(r => r.Destination.Contains(destination))
            .OrderByDescending(r => r.Destination.PrefixLength)
            .ThenBy(r => r.Metric)
            .FirstOrDefault();
}
