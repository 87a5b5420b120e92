using System.Globalization;
using System.Net;

namespace TunnelRouter.Core;

/// <summary>One mark entry that matched a packet, with its position in the policy's Marks.</summary>
public sealed record MarkStep(int Index, MarkRule Rule, uint MarkBefore, uint MarkAfter);

/// <summary>
/// The policy's own mark rules, evaluated for one packet the way the kernel runs TunnelRouter's nft table:
/// the chain by hook (output for packets this host sends, prerouting for packets that arrive), the family,
/// addresses, protocol, ports and interfaces, in order; MARK does not stop evaluation, so a later match
/// overrides an earlier one. Pure; <c>explain</c> then asks the kernel with the resulting mark.
/// </summary>
public static class MarkWalk
{
    /// <param name="rules">the policy's Marks in order.</param>
    /// <param name="mark">the mark the packet carries when the chain sees it (--mark, else 0).</param>
    /// <param name="source">the packet's source; for a packet this host sends without --from, the source
    /// the kernel's first lookup chose (null when unknown: then no entry with a Source matches).</param>
    /// <param name="oif">for the output chain, the device of the first lookup (what "oifname" sees).</param>
    public static List<MarkStep> Evaluate(IReadOnlyList<MarkRule> rules, Packet packet, uint mark, IPAddress? source, string? oif)
    {
        var steps = new List<MarkStep>();
        var chain = packet.IsLocal ? MarkChain.Output : MarkChain.Prerouting;
        for (var i = 0; i < rules.Count; i++)
        {
            var r = rules[i];
            if (r.Chain != chain || !Matches(r, packet, source, oif)) continue;
            var after = (mark & ~r.Mask) | (r.Mark & r.Mask);
            steps.Add(new MarkStep(i, r, mark, after));
            mark = after;
        }
        return steps;
    }

    static bool Matches(MarkRule r, Packet p, IPAddress? source, string? oif)
    {
        if (r.Family is { } f && f != p.Family) return false;
        if (r.Source is { } s && (source is null || s.Network.Family() != source.AddressFamily || s.Network.Contains(source) == s.Negated)) return false;
        if (r.Destination is { } d && (d.Network.Family() != p.To.AddressFamily || d.Network.Contains(p.To) == d.Negated)) return false;
        if (r.Protocol is { } proto && p.IpProto != proto) return false;
        if (r.SourcePorts is { } sp && !InPorts(sp, p.SourcePort)) return false;
        if (r.DestinationPorts is { } dp && !InPorts(dp, p.DestinationPort)) return false;
        if (r.InputInterface is { } iif && !InterfaceMatches(iif, p.Iif)) return false;
        if (r.OutputInterface is { } o && (oif is null || !InterfaceMatches(o, oif))) return false;
        return true;
    }

    /// <summary>"80,443,1000-2000" (the normalised text of <see cref="MarkRule"/>) against one port.</summary>
    static bool InPorts(string ports, ushort? port)
    {
        if (port is not { } n) return false;
        foreach (var item in ports.Split(','))
        {
            var dash = item.IndexOf('-');
            var lo = int.Parse(dash < 0 ? item : item[..dash], CultureInfo.InvariantCulture);
            var hi = dash < 0 ? lo : int.Parse(item[(dash + 1)..], CultureInfo.InvariantCulture);
            if (n >= lo && n <= hi) return true;
        }
        return false;
    }

    /// <summary>iptables' "tun+" (nft "tun*"): every name with that prefix.</summary>
    static bool InterfaceMatches(string pattern, string name) =>
        pattern.EndsWith('+') ? name.StartsWith(pattern[..^1], StringComparison.Ordinal) : pattern == name;
}
