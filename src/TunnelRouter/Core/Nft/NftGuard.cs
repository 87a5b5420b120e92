using System.Globalization;
using System.Net;
using System.Text;

namespace TunnelRouter.Core;

/// <summary>One closed table as the guard sees it: the devices its traffic may leave by, and the pools (a live
/// tunnel's pool rules into it) whose traffic it guards besides the policy's rules.</summary>
public sealed record GuardedTable(uint Table, IReadOnlyList<string> Devices, IReadOnlyList<IPNetwork> Pools);

/// <summary>What the guard is rendered from: the policy's rules in priority order (the selectors into closed tables and
/// the rules before them that choose another table), the closed tables, and where the hook's pool rules stand.</summary>
public sealed record GuardSpec(IReadOnlyList<Rule> Rules, IReadOnlyList<GuardedTable> Tables, uint PoolPriority);

/// <summary>
/// The fail-closed guard (docs/lifecycle.md, invariant 11): a second, firewall-level kill switch in TunnelRouter's own
/// nftables table <c>inet tunnel_router_guard</c>. Traffic a rule selects into a closed table may leave only by that
/// table's devices (its tunnel, the gateway's link of its default route); in the moments before <c>watch</c> restores a
/// deleted rule or kill switch, that traffic goes to main — and is dropped at postrouting instead of leaving in clear.
/// networkd and NetworkManager delete foreign rules; they never touch nftables. Pure.
/// <para>The postrouting chain walks the policy's rules in the kernel's order: a selector jumps to its table's chain,
/// which returns for the table's devices and drops (and counts) the rest; a rule before it that chooses another table
/// returns first, so its traffic is not judged by a selector it never reaches. The live tunnels' devices and pools are
/// set elements: the hook adds its own at up and removes them at down, apply renders them from the records.</para>
/// </summary>
public static partial class NftGuard
{
    public const string Name = "tunnel_router_guard";
    public const string QualifiedName = NftMarks.Family + " " + Name;

    /// <summary>The guard's table, or null when nothing is closed. <paramref name="unguarded"/>: the selectors nft cannot
    /// express (the kill switch alone holds their traffic), and rules before them it cannot exempt, each said once.</summary>
    public static NftTable? Render(GuardSpec spec, out IReadOnlyList<string> unguarded)
    {
        var notes = new List<string>();
        unguarded = notes;
        if (spec.Tables.Count == 0) return null;
        var closed = spec.Tables.Select(t => t.Table).ToHashSet();
        // The host's own neighbour discovery first (hop limit 255: never a forwarded packet, whose limit the kernel has
        // already decremented): a gateway answers its LAN hosts' neighbour solicitations from its LAN address, which a
        // selector like "from fd50::/64" covers, onto the LAN device, which no closed table names. Dropping those
        // answers cuts the LAN off its gateway in IPv6 (IPv4's ARP is no IP packet and never meets the guard).
        var chain = new List<string> { NeighbourDiscovery };
        var poolsPlaced = false;
        foreach (var r in spec.Rules.OrderBy(r => r.Priority))
        {
            if (!poolsPlaced && r.Priority > spec.PoolPriority) { PoolJumps(); poolsPlaced = true; }
            if (r.Action != RuleAction.Lookup) continue;
            var match = Match(r);
            if (closed.Contains(r.Table))
            {
                if (match is null) notes.Add($"rule '{r}': nft cannot match its traffic; only its table's kill switch holds it");
                else chain.Add($"{match} jump {ChainOf(r.Table)}");
            }
            else if (match is not null && r.SuppressPrefixLength is null) chain.Add($"{match} return");
            else notes.Add($"rule '{r}' chooses another table before the guarded rules, and nft cannot match its traffic: the guard judges it as theirs");
        }
        if (!poolsPlaced) PoolJumps();

        var body = new StringBuilder();
        var bare = new StringBuilder();
        foreach (var t in spec.Tables.OrderBy(t => t.Table))
        {
            Set(body, bare, OifSet(t.Table), "ifname", false, t.Devices.Distinct().Order(StringComparer.Ordinal).Select(d => $"\"{d}\""));
            Set(body, bare, PoolSet(t.Table, v6: false), "ipv4_addr", true, Pools(t, v6: false));
            Set(body, bare, PoolSet(t.Table, v6: true), "ipv6_addr", true, Pools(t, v6: true));
        }
        var chains = new StringBuilder();
        chains.Append("\tchain postrouting {\n\t\ttype filter hook postrouting priority filter; policy accept;\n");
        foreach (var line in chain) chains.Append("\t\t").Append(line).Append('\n');
        chains.Append("\t}\n");
        foreach (var t in spec.Tables.OrderBy(t => t.Table))
            chains.Append("\tchain ").Append(ChainOf(t.Table)).Append(" {\n")
                .Append("\t\toifname @").Append(OifSet(t.Table)).Append(" return\n")
                .Append("\t\tcounter drop\n\t}\n");
        bare.Append(chains);
        body.Append(chains);
        // The fingerprint is the skeleton's: the hook's elements come and go without making the table another one.
        var fingerprint = NftMarks.Fingerprint(bare.ToString());
        return new NftTable($"table {QualifiedName} {{\n\tcomment \"{NftMarks.CommentPrefix}{fingerprint}\"\n{body}}}\n", fingerprint);

        void PoolJumps()
        {
            foreach (var t in spec.Tables.OrderBy(t => t.Table))
            {
                chain.Add($"ip saddr @{PoolSet(t.Table, v6: false)} jump {ChainOf(t.Table)}");
                chain.Add($"ip6 saddr @{PoolSet(t.Table, v6: true)} jump {ChainOf(t.Table)}");
            }
        }
    }

    /// <summary>The guard's first line: ICMPv6 router and neighbour discovery (types 133-137) the host itself sends.</summary>
    public const string NeighbourDiscovery = "ip6 hoplimit 255 icmpv6 type 133-137 return";

    static IEnumerable<string> Pools(GuardedTable t, bool v6) =>
        t.Pools.Where(p => p.Family().IsV6() == v6).Distinct().OrderBy(p => p.ToString(), StringComparer.Ordinal).Select(Net.Format);

    static void Set(StringBuilder body, StringBuilder bare, string name, string type, bool interval, IEnumerable<string> elements)
    {
        var head = $"\tset {name} {{\n\t\ttype {type}\n{(interval ? "\t\tflags interval\n" : "")}";
        bare.Append(head).Append("\t}\n");
        body.Append(head);
        var list = elements.ToList();
        if (list.Count > 0) body.Append("\t\telements = { ").Append(string.Join(", ", list)).Append(" }\n");
        body.Append("\t}\n");
    }

    public static string ChainOf(uint table) => "closed_" + table.ToString(CultureInfo.InvariantCulture);
    public static string OifSet(uint table) => "oif_" + table.ToString(CultureInfo.InvariantCulture);
    public static string PoolSet(uint table, bool v6) => (v6 ? "pool6_" : "pool4_") + table.ToString(CultureInfo.InvariantCulture);

    /// <summary>The rule's selectors as an nft match, or null when nft cannot say them at postrouting: <c>not</c>, an
    /// output interface (a socket's bound device), <c>iif lo</c> (the host's own traffic has no input device there),
    /// a TOS.</summary>
    public static string? Match(Rule r)
    {
        if (r.Not || r.Oif is not null || r.Tos != 0 || r.Iif == "lo") return null;
        var v6 = r.Family.IsV6();
        var ip = v6 ? "ip6" : "ip";
        var parts = new List<string>();
        if (r.Iif is { } iif) parts.Add($"iifname \"{NftMarks.Wildcard(iif)}\"");
        if (r.From is null && r.To is null) parts.Add(v6 ? "meta nfproto ipv6" : "meta nfproto ipv4");
        if (r.From is { } f) parts.Add($"{ip} saddr {AddressMatch.NftText(f)}");
        if (r.To is { } t) parts.Add($"{ip} daddr {AddressMatch.NftText(t)}");
        if (r.IpProto is { } p)
        {
            var name = IpProtocols.Format(p);
            var ports = p is 6 or 17 or 132;
            if (!ports && (r.SourcePort is not null || r.DestinationPort is not null)) return null;
            if (r.SourcePort is null && r.DestinationPort is null) parts.Add($"meta l4proto {name}");
            if (r.SourcePort is { } sp) parts.Add($"{name} sport {sp}");
            if (r.DestinationPort is { } dp) parts.Add($"{name} dport {dp}");
        }
        else if (r.SourcePort is not null || r.DestinationPort is not null) return null;
        if (r.FwMark is { } mark)
            parts.Add(r.FwMask is null or uint.MaxValue ? $"meta mark {Hex(mark)}" : $"meta mark & {Hex(r.FwMask.Value)} == {Hex(mark)}");
        if (r.UidRange is { } u) parts.Add(u.Start == u.End ? $"meta skuid {u.Start}" : $"meta skuid {u.Start}-{u.End}");
        return string.Join(' ', parts);
    }

    static string Hex(uint value) => "0x" + value.ToString("x8", CultureInfo.InvariantCulture);

    /// <summary>Whether the guard as nft lists it is <paramref name="desired"/>: the same skeleton (fingerprint, chains and
    /// rules) and the same set elements.</summary>
    public static bool Same(NftTableState current, NftTable desired) =>
        current.Fingerprint == desired.Fingerprint && NftMarks.SameRules(current.Definition, desired.Definition)
        && SameElements(Elements(current.Definition), Elements(desired.Definition));

    static bool SameElements(Dictionary<string, SortedSet<string>> a, Dictionary<string, SortedSet<string>> b)
    {
        foreach (var key in a.Keys.Union(b.Keys))
        {
            var x = a.TryGetValue(key, out var xa) ? xa : [];
            var y = b.TryGetValue(key, out var yb) ? yb : [];
            if (!x.SetEquals(y)) return false;
        }
        return true;
    }

    /// <summary>Each set's elements in a table's text (ours or nft's listing, which may wrap a long list).</summary>
    public static Dictionary<string, SortedSet<string>> Elements(string text)
    {
        var sets = new Dictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        string? set = null;
        StringBuilder? list = null;
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (list is not null)
            {
                var end = line.IndexOf('}');
                list.Append(' ').Append(end >= 0 ? line[..end] : line);
                if (end >= 0) { Add(); }
                continue;
            }
            if (line.StartsWith("set ", StringComparison.Ordinal) && line.EndsWith('{')) { set = line[4..^1].Trim(); sets[set] = new(StringComparer.Ordinal); continue; }
            if (line == "}") { set = null; continue; }
            if (set is null || !line.StartsWith("elements = {", StringComparison.Ordinal)) continue;
            list = new StringBuilder();
            var rest = line["elements = {".Length..];
            var close = rest.IndexOf('}');
            list.Append(close >= 0 ? rest[..close] : rest);
            if (close >= 0) Add();
        }
        return sets;

        void Add()
        {
            foreach (var e in list!.ToString().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                sets[set!].Add(e.Trim('"'));
            list = null;
        }
    }

    /// <summary>What the hook adds at up (its device, and its pools when its pool rules look up the table), as one
    /// <c>nft -f -</c> transaction; adding an element that is there already is no error.</summary>
    public static string AddElements(IEnumerable<(uint Table, string Device, IReadOnlyList<IPNetwork> Pools)> tables) =>
        Elements("add", tables.Select(t => (t.Table, (string?)t.Device, t.Pools)));

    /// <summary>What the hook removes at down; nft refuses the whole transaction when one element is not there, so the
    /// caller runs it element by element when the whole fails.</summary>
    public static IReadOnlyList<string> DeleteElements(IEnumerable<(uint Table, string Device, IReadOnlyList<IPNetwork> Pools)> tables)
    {
        var scripts = new List<string>();
        foreach (var (table, device, pools) in tables)
        {
            scripts.Add(Elements("delete", [(table, device, [])]));
            foreach (var pool in pools) scripts.Add(Elements("delete", [(table, null, [pool])]));
        }
        return scripts;
    }

    static string Elements(string verb, IEnumerable<(uint Table, string? Device, IReadOnlyList<IPNetwork> Pools)> tables)
    {
        var script = new StringBuilder();
        foreach (var (table, device, pools) in tables)
        {
            if (device is not null) script.Append($"{verb} element {QualifiedName} {OifSet(table)} {{ \"{device}\" }}\n");
            foreach (var v6 in (ReadOnlySpan<bool>)[false, true])
            {
                var of = pools.Where(p => p.Family().IsV6() == v6).Select(Net.Format).ToList();
                if (of.Count > 0) script.Append($"{verb} element {QualifiedName} {PoolSet(table, v6)} {{ {string.Join(", ", of)} }}\n");
            }
        }
        return script.ToString();
    }
}
