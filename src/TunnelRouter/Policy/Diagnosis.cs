using System.Net.Sockets;
using TunnelRouter.Core;

namespace TunnelRouter.Policy;

/// <summary>
/// doctor's analysis of the policy against the kernel, as findings (values the command prints): the kernel's own rules,
/// why the policy forwards, reverse-path filtering, the rt_tables files, rules typed by hand. Pure: what it reads of the
/// host (a sysctl, whether an address is this host's) is passed in.
/// </summary>
public static class Diagnosis
{
    /// <summary>The kernel's own rules: without "lookup local" the host stops receiving its own traffic, without
    /// "lookup main" it routes nothing, without "lookup default" (IPv4) the default table is never consulted. An
    /// `ip rule flush` leaves only the local rule; policy routing needs all of them behind its own.</summary>
    public static Finding KernelRules(IReadOnlyList<Rule> rules)
    {
        var missing = new List<string>();
        foreach (var family in (ReadOnlySpan<AddressFamily>)[AddressFamily.InterNetwork, AddressFamily.InterNetworkV6])
        {
            var f = family.IsV6() ? "-6" : "-4";
            // IPv6 has no rule for table default: the kernel never installs one.
            foreach (var (table, name, pref) in family.IsV6()
                         ? [(TableNames.Local, "local", 0u), (TableNames.Main, "main", 32766u)]
                         : new[] { (TableNames.Local, "local", 0u), (TableNames.Main, "main", 32766u), (TableNames.Default, "default", 32767u) })
            {
                if (rules.Any(r => r.Family == family && r.Action == RuleAction.Lookup && r.Table == table && IsUnconditional(r))) continue;
                missing.Add($"ip {f} rule add from all lookup {name} pref {pref}");
            }
        }
        return missing.Count == 0
            ? new Finding("kernel rules", FindingLevel.Ok, "the local, main and default rules are in place in both families")
            : new Finding("kernel rules", FindingLevel.Problem,
                $"{missing.Count} of the kernel's own rules are missing ({string.Join("; ", missing.Select(m => m[(m.IndexOf("lookup", StringComparison.Ordinal))..].Split(' ')[1] + (m.Contains("-6") ? " (IPv6)" : " (IPv4)")))}): without them this host does not route (an 'ip rule flush' does this)",
                string.Join("; ", missing));
    }

    static bool IsUnconditional(Rule r) =>
        r is { From: null, To: null, Not: false, FwMark: null, Iif: null, Oif: null, IpProto: null, SourcePort: null, DestinationPort: null, UidRange: null, Tos: 0, SuppressPrefixLength: null };

    /// <summary>
    /// Why the policy forwards other hosts' traffic, per family; empty when it only routes the host's own
    /// (reply routing of its addresses, seed 004), where forwarding is none of the policy's business. What a rule
    /// selects decides: a source that is not one of this host's addresses (a pool, a LAN), an input interface other
    /// than lo, or a mark the policy sets in prerouting means packets of other hosts; "iif lo", a uidrange (only this
    /// host's sockets have a uid) and a mark the policy sets only in output mean this host's own. A rule on the
    /// destination, protocol, ports, tos or oif alone matches whatever reaches the lookup — this host's packets, and
    /// others' only if it forwards already — so it asks for nothing. Also: the hook's pool routes, prerouting marks, GRE
    /// tunnels that carry routes, and forwarding the policy's Sysctls switch on. <paramref name="unknownMarks"/>: rules
    /// on a mark none of the policy's Marks sets (another firewall's), per family: only that firewall knows whose
    /// packets it marks.
    /// </summary>
    /// <param name="isOwn">whether a host prefix is one of this host's addresses.</param>
    public static Dictionary<AddressFamily, string> Forwards(PolicyParse parsed, IReadOnlyList<Rule> rules, KernelState state, byte hookProtocol,
        Func<System.Net.IPNetwork, bool> isOwn, out Dictionary<AddressFamily, string> unknownMarks)
    {
        var policy = parsed.IsValid ? parsed.Policy : null;
        // Broken Marks are reported as the policy finding; none of them is then taken as the policy's.
        var marks = parsed.MarksErrors.Count == 0 ? parsed.Policy.MarkRules : [];
        var why = Diagnosis.RuleReasons(rules, marks, policy?.Instances ?? [], isOwn, out var unknown);
        void Because(AddressFamily f, string reason) => why.TryAdd(f, reason);
        var poolRules = parsed.Policy.PoolRules;
        if (poolRules || state.Routes.Any(r => r.Protocol == hookProtocol))
            foreach (var f in new[] { AddressFamily.InterNetwork, AddressFamily.InterNetworkV6 })
                if (poolRules || state.Routes.Any(r => r.Protocol == hookProtocol && r.Family == f))
                    Because(f, "OpenVPN tunnels carry their clients' traffic (the hook's pool routes)");
        foreach (var m in marks.Where(m => m.Chain == MarkChain.Prerouting))
            foreach (var f in m.Family is { } fam ? [fam] : new[] { AddressFamily.InterNetwork, AddressFamily.InterNetworkV6 })
                Because(f, "prerouting marks steer packets arriving from other hosts");
        foreach (var t in policy?.Tunnels ?? [])
            foreach (var route in t.Routes)
                Because(route.Family, $"{t.Field} ({t.Link.Name}) carries routes between sites");
        foreach (var (key, value) in policy?.Sysctls ?? [])
            if (value == "1" && key is "net.ipv4.ip_forward" or "net.ipv4.conf.all.forwarding") Because(AddressFamily.InterNetwork, "the policy's Sysctls switch it on");
            else if (value == "1" && key == "net.ipv6.conf.all.forwarding") Because(AddressFamily.InterNetworkV6, "the policy's Sysctls switch it on");
        foreach (var f in why.Keys) unknown.Remove(f);
        unknownMarks = unknown;
        return why;
    }

    /// <summary>
    /// What the rules themselves say about forwarding, per family (pure: <paramref name="isOwn"/> says whether a host
    /// prefix is one of this host's addresses). A source that is not this host's, an input interface other than lo, or
    /// (in an Instances line) the tunnel's device or a placeholder source other than the tunnel's own address mean
    /// other hosts' packets; "iif lo", a uidrange, and rules on the destination, protocol, ports, tos or oif alone do not
    /// (they match whatever reaches the lookup). A rule on a mark none of <paramref name="marks"/> sets goes to
    /// <paramref name="unknownMarks"/>; one the marks set only in output is this host's own.
    /// </summary>
    public static Dictionary<AddressFamily, string> RuleReasons(IEnumerable<Rule> rules, IReadOnlyList<MarkRule> marks,
        IReadOnlyList<InstanceSpec> instances, Func<System.Net.IPNetwork, bool> isOwn, out Dictionary<AddressFamily, string> unknownMarks)
    {
        var why = new Dictionary<AddressFamily, string>();
        var unknown = new Dictionary<AddressFamily, string>();
        void Because(AddressFamily f, string reason) => why.TryAdd(f, reason);
        static bool Sets(MarkRule m, Rule r) =>
            (m.Family is null || m.Family == r.Family) && m.Mark != 0 && (m.Mark & r.FwMask!.Value) == (r.FwMark!.Value & m.Mask & r.FwMask!.Value);
        foreach (var r in rules)
        {
            if (r.Iif is { } iif)
            {
                if (iif != "lo" || r.Not) Because(r.Family, $"rule {r.Priority} matches packets arriving on {(r.Not ? "any interface but " : "")}{iif}");
                continue;
            }
            if (r.UidRange is not null) continue;
            if (r.From is { } from && from.PrefixLength > 0)
            {
                if (r.Not || !isOwn(from))
                    Because(r.Family, $"rule {r.Priority} routes packets from {(r.Not ? "anywhere but " : "")}{Net.Format(from)}, which is not an address of this host");
                continue;
            }
            // Marks the policy sets in prerouting count as prerouting marks; in output they are this host's own packets.
            if (r.FwMark is not null && r.FwMark != 0 && !marks.Any(m => Sets(m, r)))
                unknown.TryAdd(r.Family, $"rule {r.Priority} matches fwmark 0x{r.FwMark:x}, which none of the policy's Marks sets");
        }
        // Instances' rules by their words (their values come at up): a placeholder source is the tunnel's clients unless it
        // is the tunnel's own address (${ifconfig_local}, ${ifconfig_ipv6_local}).
        foreach (var spec in instances)
            foreach (var line in spec.Rules)
            {
                var words = line.Text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                var at = line.Field[(line.Field.LastIndexOf(": ", StringComparison.Ordinal) + 2)..];
                var families = line.Family is { } lf ? [lf] : new[] { AddressFamily.InterNetwork, AddressFamily.InterNetworkV6 };
                for (var k = 0; k + 1 < words.Length; k++)
                {
                    var value = words[k + 1];
                    var forwards = words[k] switch
                    {
                        "iif" => value != "lo",
                        "from" => InstanceLine.HasPlaceholder(value) ? !value.EndsWith("local}", StringComparison.Ordinal)
                            : value is not ("all" or "default") && (!Net.TryParseAddress(value.Split('/')[0], out _) || !isOwn(Net.ParsePrefix(at, value))),
                        _ => false,
                    };
                    if (forwards)
                        foreach (var f in families) Because(f, $"{at} routes packets {(words[k] == "iif" ? "arriving on" : "from")} {value}");
                }
            }
        unknownMarks = unknown;
        return why;
    }

    /// <summary>Strict reverse-path filtering (rp_filter=1) checks a packet's source against the route back
    /// to it in the main lookup; policy routing sends replies another way, and the kernel drops the packet
    /// as a martian without a word (seed 001's "packet seems to disappear").</summary>
    /// <param name="procSys">reads a /proc/sys/ path (e.g. net/ipv4/conf/all/rp_filter); null when it is absent.</param>
    public static List<Finding> ReversePath(KernelState state, IReadOnlyList<Route> routes, IReadOnlyList<Rule> rules, Func<string, string?> procSys)
    {
        var findings = new List<Finding>();
        var tables = rules.Where(r => r.Action == RuleAction.Lookup).Select(r => r.Table).ToHashSet();
        var devices = routes.Select(r => r.Device)
            .Concat(rules.Select(r => r.Iif))
            .Concat(state.Routes.Where(r => tables.Contains(r.Table) && r.Table != TableNames.Main).Select(r => r.Device))
            .OfType<string>().Where(d => d != "lo").Distinct().Order(StringComparer.Ordinal).ToList();
        if (devices.Count == 0) return findings;

        // The reverse-path check looks the packet's source up with the addresses swapped and nothing else: rules
        // on addresses alone (pools, reply routing, seeds 003 and 004) give it the same path, and strict mode is
        // fine; rules on marks, ports, protocols, uids or oif route one way and check another.
        var unseen = rules.Where(r => r.FwMark is not null || r.IpProto is not null || r.SourcePort is not null
                                      || r.DestinationPort is not null || r.UidRange is not null || r.Oif is not null).ToList();
        foreach (var v in new[] { "ipv4" })
        {
            var all = procSys($"net/{v}/conf/all/rp_filter");
            if (unseen.Count == 0)
            {
                findings.Add(new Finding("rp_filter", FindingLevel.Ok,
                    "the policy's rules select by address only, which the reverse-path check sees too: no martian drops from it"));
                findings.Add(LogMartians(v, procSys));
                continue;
            }
            var strict = new List<string>();
            foreach (var dev in devices)
            {
                var own = procSys($"net/{v}/conf/{dev}/rp_filter");
                if (own is null) continue;
                // The kernel uses the larger of "all" and the device's value.
                if (Math.Max(Int(all), Int(own)) == 1) strict.Add(dev);
            }
            findings.Add(strict.Count == 0
                ? new Finding("rp_filter", FindingLevel.Ok, $"no strict reverse-path filter on {string.Join(", ", devices)}")
                : new Finding("rp_filter", FindingLevel.Problem,
                    $"strict reverse-path filtering (rp_filter=1, all={all}) on {string.Join(", ", strict)}: rule {unseen[0].Priority} selects by what the reverse-path check does not see, so replies come back another way than it expects, and the kernel drops them as martians, silently",
                    $"loose mode: sysctl -w net.{v}.conf.all.rp_filter=2 {string.Join(" ", strict.Select(d => $"net.{v}.conf.{d}.rp_filter=2"))}"));

            findings.Add(LogMartians(v, procSys));
        }
        return findings;
    }

    static Finding LogMartians(string v, Func<string, string?> procSys)
    {
        var martians = Int(procSys($"net/{v}/conf/all/log_martians"));
        return martians == 1
            ? new Finding("log_martians", FindingLevel.Ok, "martian packets are logged")
            : new Finding("log_martians", FindingLevel.Note,
                "martian drops are not logged, so a packet dropped by rp_filter disappears without a trace",
                $"sysctl -w net.{v}.conf.all.log_martians=1 net.{v}.conf.default.log_martians=1");
    }

    static int Int(string? text) => int.TryParse(text, out var n) ? n : 0;

    /// <summary>Rules and routes typed by hand (a how-to's rc.local, rule-eth1 files) that duplicate the policy's:
    /// they stay when the policy changes or is flushed, and keep routing as the old setup did.</summary>
    /// <param name="protocol">apply's protocol: the policy's own rules carry it.</param>
    public static Finding? HandMade(KernelState state, IReadOnlyList<Rule> rules, Ownership owned, byte protocol, TableNames tables, ProtocolNames protocols)
    {
        var ours = rules.Where(r => r.Protocol == protocol).ToList();
        var twins = new List<string>();
        foreach (var have in state.Rules.Where(r => !owned.Rule(r)))
            if (ours.FirstOrDefault(want => want.SameSelectorsAndAction(have)) is { } want)
                twins.Add($"rule '{IpCommand.RuleArgs(have, tables, protocols)}' duplicates the policy's at priority {want.Priority}" +
                          (want.Priority == have.Priority ? "" : $" (remove it: ip {Net.FamilyFlag(have.Family)} rule del pref {have.Priority})"));
        if (twins.Count == 0) return null;
        return new Finding("hand-made", FindingLevel.Note, string.Join("; ", twins),
            "'tunnel-router apply --adopt' takes each over, whatever priority the kernel gave it (ours stays at the policy's); or delete it, so that changing or flushing the policy is not undone by it");
    }

    /// <summary>A table name with two numbers, or a number with two names, across rt_tables and its
    /// drop-ins: iproute2 silently takes the first, so two policies can end up sharing one table.</summary>
    /// <param name="files">the text of each rt_tables file iproute2 reads, in the order iproute2 reads them.</param>
    /// <param name="undefined">why the hook's table cannot be given a number, or null.</param>
    public static List<Finding> Tables(IEnumerable<(string File, string Text)> files, string? undefined)
    {
        var findings = new List<Finding>();
        var byName = new Dictionary<string, List<(uint Id, string File)>>(StringComparer.Ordinal);
        var byId = new Dictionary<uint, List<(string Name, string File)>>();
        foreach (var (file, text) in files)
            foreach (var (id, name) in NameMap.Entries(text))
            {
                (byName.TryGetValue(name, out var l) ? l : byName[name] = []).Add((id, file));
                (byId.TryGetValue(id, out var n) ? n : byId[id] = []).Add((name, file));
            }
        var twice = new List<string>();
        foreach (var (name, defs) in byName)
            if (defs.Select(d => d.Id).Distinct().Count() > 1)
                twice.Add($"'{name}' is {string.Join(" and ", defs.Select(d => $"{d.Id} ({d.File})"))}");
        foreach (var (id, defs) in byId)
            if (defs.Select(d => d.Name).Distinct().Count() > 1)
                twice.Add($"{id} is named {string.Join(" and ", defs.Select(d => $"'{d.Name}' ({d.File})"))}");

        if (twice.Count > 0)
            findings.Add(new Finding("tables", FindingLevel.Problem, $"table names defined twice: {string.Join("; ", twice)}",
                "keep one definition per name and number (rt_tables or one file in rt_tables.d)"));
        if (undefined is not null)
            findings.Add(new Finding("tables", FindingLevel.Problem, $"table not defined: {undefined}", "define it in rt_tables.d or give it a number under Tables"));
        if (twice.Count == 0 && undefined is null)
            findings.Add(new Finding("tables", FindingLevel.Ok, "every table name is defined once"));
        return findings;
    }
}
