using System.Globalization;
using System.Text;

namespace TunnelRouter.Core;

/// <summary>The nftables table TunnelRouter owns, as rendered: its definition and the fingerprint in its comment.</summary>
public sealed record NftTable(string Definition, string Fingerprint);

/// <summary>
/// Renders mark rules as TunnelRouter's own nftables table. Pure. iptables semantics are kept: rules run in
/// order and MARK does not stop evaluation, so a later matching rule overrides an earlier one (nft's
/// "meta mark set" does not stop either). The output chain is <c>type route</c>: when it changes a mark, the
/// kernel routes the packet again, which is what makes "fwmark 0xf2 lookup vpn" see it (iptables' mangle
/// OUTPUT does the same). Prerouting marks before the routing decision, so a plain filter chain suffices.
/// Both hook at priority mangle (-150), where iptables' mangle table runs.
/// </summary>
public static partial class NftMarks
{
    public const string Family = "inet";
    public const string Name = "tunnel_router";
    public const string QualifiedName = Family + " " + Name;

    /// <summary>The comment carries the fingerprint so a read-back needs only one line of nft's listing to
    /// tell "already as desired" from "replace".</summary>
    public const string CommentPrefix = "managed by tunnel-router; fingerprint ";

    /// <summary>Null when there are no rules: then TunnelRouter keeps no table at all.</summary>
    public static NftTable? Render(IReadOnlyList<MarkRule> rules)
    {
        if (rules.Count == 0) return null;
        var chains = new StringBuilder();
        foreach (var (chain, hook) in new[] { (MarkChain.Output, "type route hook output"), (MarkChain.Prerouting, "type filter hook prerouting") })
        {
            var lines = rules.Where(r => r.Chain == chain).Select(RuleLine).ToList();
            if (lines.Count == 0) continue;
            chains.Append('\t').Append("chain ").Append(chain == MarkChain.Output ? "output" : "prerouting").Append(" {\n");
            chains.Append("\t\t").Append(hook).Append(" priority mangle; policy accept;\n");
            foreach (var line in lines) chains.Append("\t\t").Append(line).Append('\n');
            chains.Append("\t}\n");
        }
        var body = chains.ToString();
        var fingerprint = Fingerprint(body);
        return new NftTable($"table {QualifiedName} {{\n\tcomment \"{CommentPrefix}{fingerprint}\"\n{body}}}\n", fingerprint);
    }

    /// <summary>One nft rule line, matches in iptables' order of thought: interfaces, addresses, protocol
    /// and ports, then the mark.</summary>
    public static string RuleLine(MarkRule r)
    {
        var parts = new List<string>();
        if (r.InputInterface is not null) parts.Add($"iifname \"{Wildcard(r.InputInterface)}\"");
        if (r.OutputInterface is not null) parts.Add($"oifname \"{Wildcard(r.OutputInterface)}\"");
        // An address match implies its family; a rule without addresses is restricted only when asked.
        if (r.Family is { } f && r.Source is null && r.Destination is null) parts.Add(f.IsV6() ? "meta nfproto ipv6" : "meta nfproto ipv4");
        if (r.Source is { } s) parts.Add(Address(s, "saddr"));
        if (r.Destination is { } d) parts.Add(Address(d, "daddr"));
        if (r.Protocol is { } p)
        {
            var name = IpProtocols.Format(p);
            if (r.SourcePorts is null && r.DestinationPorts is null) parts.Add($"meta l4proto {name}");
            if (r.SourcePorts is not null) parts.Add($"{name} sport {Ports(r.SourcePorts)}");
            if (r.DestinationPorts is not null) parts.Add($"{name} dport {Ports(r.DestinationPorts)}");
        }
        parts.Add(SetMark(r));
        return string.Join(' ', parts);
    }

    static string Address(AddressMatch m, string field) =>
        $"{(m.Family.IsV6() ? "ip6" : "ip")} {field} {(m.Negated ? "!= " : "")}{AddressMatch.NftText(m.Network)}";

    static string Ports(string ports) => ports.Contains(',') ? $"{{ {ports.Replace(",", ", ")} }}" : ports;

    /// <summary>iptables writes "eth+" for every name starting with "eth"; nft writes "eth*".</summary>
    internal static string Wildcard(string name) => name.EndsWith('+') ? name[..^1] + "*" : name;

    /// <summary>--set-mark V/M is mark = (mark AND NOT M) OR V; without a mask the whole mark is replaced.</summary>
    static string SetMark(MarkRule r)
    {
        if (r.Mask == uint.MaxValue) return $"meta mark set {Hex(r.Mark)}";
        var keep = Hex(~r.Mask);
        return r.Clears ? $"meta mark set meta mark & {keep}" : $"meta mark set meta mark & {keep} | {Hex(r.Mark)}";
    }

    static string Hex(uint value) => "0x" + value.ToString("x8", CultureInfo.InvariantCulture);

    /// <summary>The one <c>nft -f -</c> transaction that makes the table exactly <paramref name="definition"/>
    /// (or absent, when null): declaring the table first makes the delete succeed when it did not exist, and
    /// nft applies the whole file atomically, so no packet ever sees a half-built table.</summary>
    public static string Transaction(string? definition, string table = QualifiedName) =>
        $"table {table}\ndelete table {table}\n{definition}";

    /// <summary>Whether a table as nft lists it has the chains and rules of <paramref name="definition"/>, line by
    /// line in order: what tells a flushed chain, a deleted or edited rule from the table apply loaded, whose comment
    /// stays the same. nft lists a rule in its own words where they differ from ours (it folds the value into
    /// the mask of "meta mark & K | V", and leaves out "meta nfproto" where the protocol implies the family); both
    /// sides are brought to those words first.</summary>
    public static bool SameRules(string listing, string definition)
    {
        var have = Chains(listing);
        var want = Chains(definition);
        return have.Count == want.Count && want.All(kv => have.TryGetValue(kv.Key, out var lines) && lines.SequenceEqual(kv.Value, StringComparer.Ordinal));
    }

    static Dictionary<string, List<string>> Chains(string text)
    {
        var chains = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        List<string>? current = null;
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0) continue;
            if (line.StartsWith("chain ", StringComparison.Ordinal) && line.EndsWith('{'))
            {
                chains[line[6..^1].Trim()] = current = [];
                continue;
            }
            if (line == "}") { current = null; continue; }
            if (current is null) continue;
            var handle = line.IndexOf(" # handle ", StringComparison.Ordinal);
            if (handle >= 0) line = line[..handle];
            current.Add(Canonical(line));
        }
        return chains;
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"meta mark & 0x([0-9a-f]{1,8}) \| 0x([0-9a-f]{1,8})", System.Text.RegularExpressions.RegexOptions.CultureInvariant)]
    private static partial System.Text.RegularExpressions.Regex MaskedSet();

    [System.Text.RegularExpressions.GeneratedRegex(@"\bcounter packets \d+ bytes \d+", System.Text.RegularExpressions.RegexOptions.CultureInvariant)]
    private static partial System.Text.RegularExpressions.Regex Counted();

    static string Canonical(string line)
    {
        line = Counted().Replace(string.Join(' ', line.Split(' ', StringSplitOptions.RemoveEmptyEntries)), "counter")
            .Replace("meta nfproto ipv4 ", "", StringComparison.Ordinal).Replace("meta nfproto ipv6 ", "", StringComparison.Ordinal);
        return MaskedSet().Replace(line, m =>
        {
            var keep = uint.Parse(m.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            var value = uint.Parse(m.Groups[2].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            return $"meta mark & {Hex(keep | value)} | {Hex(value)}";
        });
    }

    /// <summary>16 hex digits that change when the text does (FNV-1a, 64 bits): change detection, not security, so no
    /// OpenSSL is loaded for it (a gateway without libssl runs every command).</summary>
    public static string Fingerprint(string text)
    {
        var hash = 14695981039346656037UL;
        foreach (var b in Encoding.UTF8.GetBytes(text)) hash = (hash ^ b) * 1099511628211UL;
        return hash.ToString("x16", CultureInfo.InvariantCulture);
    }

    /// <summary>The fingerprint in a table listing's comment, or null when it has none of ours.</summary>
    public static string? FingerprintOf(string listing)
    {
        foreach (var raw in listing.Split('\n'))
        {
            var line = raw.Trim();
            if (line.StartsWith("chain ", StringComparison.Ordinal)) break;
            if (!line.StartsWith("comment \"" + CommentPrefix, StringComparison.Ordinal) || !line.EndsWith('"')) continue;
            var fp = line[("comment \"" + CommentPrefix).Length..^1];
            return fp.Length == 16 && fp.All(char.IsAsciiHexDigitLower) ? fp : null;
        }
        return null;
    }
}
