using System.Globalization;
using System.Net;
using System.Text.Json;
using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;

namespace TunnelRouter.Cli;

/// <summary>
/// <c>explain --from A --to B [--iif DEV] [--mark N] [--proto tcp|udp --sport N --dport N]</c>: which rule
/// matched, which table, which route and next hop — the question behind every "the packet seems to
/// disappear". The rules are walked in priority order against the kernel's own rule list, and the answer
/// is then confirmed with the kernel's lookup (ip route get ... fibmatch); where the two differ, the
/// kernel's answer is the one printed. Exit 0 when the kernel routes the packet, 1 when it drops it.
/// </summary>
public static class ExplainCommand
{
    public static int Run(Context ctx)
    {
        var lookup = new RouteLookup(new ProcessRunner());
        var (asked, assumed, markGiven) = ParsePacket(ctx.Args.Extra, lookup);

        var rules = lookup.Rules(asked.Family);
        // tunnel-router's own marks decide before the rules do: evaluate the policy's Marks for this packet,
        // then walk the rules and ask the kernel with the mark they leave.
        var marks = PolicyMarks(ctx, asked, lookup);
        var packet = marks.Steps.Count > 0 ? asked with { Mark = marks.Steps[^1].MarkAfter } : asked;
        var (match, nextHop) = lookup.Get(packet);
        var tables = new Dictionary<uint, Route?>();
        Route? InTable(uint table)
        {
            if (tables.TryGetValue(table, out var cached)) return cached;
            Route? found;
            if (table == TableNames.Local)
            {
                // The local table holds the kernel's own local/broadcast routes, which the backends do not read.
                var to = lookup.RouteTo(packet.To);
                found = to.Type == "local" ? new Route(Net.Host(packet.To), TableNames.Local, 2, "lo") : null;
            }
            else
            {
                var state = ctx.Kernel.Read(new StateQuery(new HashSet<uint> { table }, Rules: false));
                found = RuleWalk.Longest(state.Routes.Where(r => r.Family == packet.Family), packet.To);
            }
            return tables[table] = found;
        }
        var steps = RuleWalk.Walk(rules, packet, InTable);
        var result = Explanation.From(packet, steps, match, nextHop, ctx) with { Asked = asked, Marks = marks };
        // Marks someone else sets (iptables, another nft table, tc) are invisible here; say so where rules match marks.
        var foreignMarks = !markGiven && rules.Any(r => r.Rule.FwMark is not null)
            ? "fwmark rules are in use, and marks set outside tunnel-router's Marks (iptables, other nft tables, tc) cannot be seen here; pass --mark N to ask about a packet they mark"
            : null;

        if (ctx.Args.Json) WriteJson(ctx, result, foreignMarks);
        else WriteText(ctx, result, assumed, foreignMarks);
        return match.Routed || result.Intended ? App.Ok : App.Failed;
    }

    /// <summary>The policy's Marks evaluated for the packet, and whether they are what the kernel runs.</summary>
    sealed record MarkResult(List<MarkStep> Steps, bool Evaluated, string? Note);

    static MarkResult PolicyMarks(Context ctx, Packet p, RouteLookup lookup)
    {
        var parsed = Commands.ReadPolicy(ctx, shown: false);
        if (!parsed.UsesMarks) return new([], false, null);
        if (parsed.MarksErrors.Count > 0)
            return new([], false, $"the policy's Marks are not evaluated: {string.Join("; ", parsed.MarksErrors.Select(e => e.Message))}");
        var rules = parsed.Policy.MarkRules;
        // A packet this host sends is marked after its first lookup: that lookup chose its source and output device.
        IPAddress? source = p.From;
        string? oif = null;
        if (p.IsLocal)
        {
            var (_, first) = lookup.Get(p);
            if (source is null && first.PreferredSource is { } src && IPAddress.TryParse(src, out var a)) source = a;
            oif = first.Device;
        }
        var steps = MarkWalk.Evaluate(rules, p, p.Mark, source, oif);
        string? note = null;
        // Compared as the plan compares them: a table with the policy's comment but a flushed chain is not the policy's.
        var installed = ctx.Nft.Read();
        if (!Reconciler.MarksInPlace(parsed.Policy.Marks, installed))
            note = installed is null
                ? "tunnel-router's nft table is not loaded: these are the marks the policy will set once applied ('tunnel-router apply')"
                : "tunnel-router's nft table differs from the policy: these are the marks the policy will set ('tunnel-router plan' shows the change)";
        return new(steps, true, note);
    }

    sealed record Explanation(Packet Packet, RuleStep? Decider, List<RuleStep> PassedOver, KernelAnswer Match, KernelAnswer NextHop, bool Agrees, string? Hint)
    {
        /// <summary>The packet as asked about, before the policy's marks.</summary>
        public Packet? Asked { get; init; }
        public MarkResult? Marks { get; init; }

        /// <summary>Dropped by an unreachable/blackhole/prohibit route or rule: a drop someone meant.</summary>
        public bool Intended => !Match.Routed && Decider is { Outcome: RuleOutcome.Decided } d
            && (d.Route is { Type: RouteType.Unreachable or RouteType.Blackhole or RouteType.Prohibit } || d.Route is null && d.Entry.Rule.Action != RuleAction.Lookup);

        public static Explanation From(Packet p, List<RuleStep> steps, KernelAnswer match, KernelAnswer nextHop, Context ctx)
        {
            var walked = steps.LastOrDefault(s => s.Outcome == RuleOutcome.Decided);
            RuleStep? decider = walked;
            var agrees = false;
            if (match.Routed)
            {
                agrees = walked is { Route: not null } && walked.Entry.Rule.Table == match.Table;
                // The kernel's answer wins: the rule that decided is the first matching one looking up its table.
                if (!agrees)
                    decider = steps.FirstOrDefault(s => s.Outcome != RuleOutcome.NoMatch && s.Entry.Rule.Action == RuleAction.Lookup
                                                        && s.Entry.Rule.Table == match.Table);
            }
            var hint = match.Routed ? null : ExplainCommand.Hint(p, match, ctx);
            // Dropped: the walk agrees when it found no route either, or when the drop has a reason beyond
            // the rules (forwarding off, rp_filter) that the hint names.
            if (!match.Routed) agrees = walked is null || walked.Route is null || hint is not null || IsDropRoute(walked.Route);
            // Rule 0 always looks up the local table first; listing it says nothing.
            var passed = steps.TakeWhile(s => s != decider)
                .Where(s => s.Outcome == RuleOutcome.PassedOver && s.Entry.Rule.Table != TableNames.Local).ToList();
            return new Explanation(p, decider, passed, match, nextHop, agrees, hint);
        }
    }

    static bool IsDropRoute(Route r) => r.Type is RouteType.Unreachable or RouteType.Blackhole or RouteType.Prohibit;

    /// <summary>Why the kernel refused, in the terms of the seeds' troubleshooting sections.</summary>
    static string? Hint(Packet p, KernelAnswer match, Context ctx)
    {
        var v = p.Family.IsV6() ? "ipv6" : "ipv4";
        var error = match.Error!;
        // A source that fails the reverse-path check is a martian: the kernel answers EINVAL (older ones EXDEV).
        var strict = !p.IsLocal && !p.Family.IsV6()
                     && Math.Max(Int(ProcSys.Read("net/ipv4/conf/all/rp_filter")), Int(ProcSys.Read($"net/ipv4/conf/{p.Iif}/rp_filter"))) == 1;
        if (error.Contains("cross-device", StringComparison.Ordinal) || (strict && error.Contains("Invalid argument", StringComparison.Ordinal)))
            return $"the reverse-path filter dropped it as a martian: a reply to {p.From} would not leave through {p.Iif}. " +
                   $"Use loose mode (sysctl -w net.{v}.conf.{p.Iif}.rp_filter=2 and net.{v}.conf.all.rp_filter=2), or add the rule that routes replies back through {p.Iif}; " +
                   $"sysctl -w net.{v}.conf.all.log_martians=1 shows such drops in the kernel log";
        if (!p.IsLocal && ProcSys.Read(p.Family.IsV6() ? "net/ipv6/conf/all/forwarding" : "net/ipv4/ip_forward") == "0")
            return $"forwarding is off, so nothing arriving on {p.Iif} is routed onwards: sysctl -w {(p.Family.IsV6() ? "net.ipv6.conf.all.forwarding" : "net.ipv4.ip_forward")}=1";
        if (error.Contains("Invalid argument", StringComparison.Ordinal))
            return p.IsLocal
                ? $"{p.From} is not an address of this host; for a packet that arrives from elsewhere, give --iif"
                : $"the kernel treats {p.From} arriving on {p.Iif} as a martian source (loopback, broadcast or multicast?); sysctl -w net.{v}.conf.all.log_martians=1 logs such drops";
        return null;
    }

    /// <summary>A packet for an OpenVPN tunnel's own server that goes into that tunnel: OpenVPN drops it.</summary>
    static string? Recursive(Context ctx, Explanation x)
    {
        var device = x.NextHop.Device ?? x.Match.Device;
        if (device is null) return null;
        var record = LiveInstances.Records(ctx).FirstOrDefault(r => r.Device == device && r.Servers.Contains(x.Packet.To));
        return record is null ? null
            : $"{x.Packet.To} is {device}'s own VPN server: OpenVPN drops tunnel packets for it ('Recursive routing detected') unless the client's configuration has {RecursiveRouting.Option}";
    }

    static string TableText(TableNames t, uint id) => t.TryGetName(id, out var name) ? $"{name} ({id})" : $"{id}";

    static int Int(string? text) => int.TryParse(text, out var n) ? n : 0;

    static void WriteText(Context ctx, Explanation x, string? assumed, string? foreignMarks)
    {
        var o = new TerminalText(ctx.Out);
        var t = ctx.Names.Tables;
        var p = x.Packet;
        o.WriteLine($"Packet:   {Describe(x.Asked ?? p)}{(assumed is null ? "" : $" ({assumed})")}");
        if (x.Marks is { Evaluated: true } m)
        {
            var chain = p.IsLocal ? "output" : "prerouting";
            if (m.Steps.Count == 0)
                o.WriteLine($"Marks:    no entry of the policy's Marks ({chain}) matches; the packet keeps mark 0x{p.Mark:x}");
            foreach (var step in m.Steps)
                o.WriteLine($"Marks:    Marks[{step.Index}] ({chain}) {(step.MarkAfter == 0 ? "clears the mark" : $"sets mark 0x{step.MarkAfter:x}")}: {NftMarks.RuleLine(step.Rule)}");
            if (m.Steps.Count > 1)
                o.WriteLine($"          the last match wins: the packet is routed with mark 0x{p.Mark:x}");
        }
        if (x.Marks?.Note is { } note) o.WriteLine($"          {note}");
        if (foreignMarks is not null) o.WriteLine($"Note:     {foreignMarks}");
        if (x.Decider is { } d)
        {
            var rule = d.Entry.Rule;
            o.WriteLine($"Rule:     {rule.Priority}: {RuleText(d.Entry, ctx)}");
            o.WriteLine($"          {Owner(rule.Protocol, ctx)}");
        }
        if (x.Match.Routed)
        {
            o.WriteLine($"Table:    {TableText(t, x.Match.Table!.Value)}");
            o.WriteLine($"Route:    {RouteText(x.Match, ctx)}");
            o.WriteLine($"Next hop: {NextHopText(x.NextHop)}");
            if (WatchUplinks.Explain(ctx, x.Match.Table, x.Match.Device) is { } uplink) o.WriteLine($"Uplink:   {uplink}");
            if (Recursive(ctx, x) is { } warning) o.WriteLine($"Warning:  {warning}");
        }
        else
        {
            if (x.Decider is { Route: { } chosen })
            {
                o.WriteLine($"Table:    {TableText(t, chosen.Table)}");
                o.WriteLine(IsDropRoute(chosen)
                    ? $"Route:    {IpCommand.RouteArgs(chosen, t, ctx.Names.Protocols)}"
                    : $"Route:    {IpCommand.RouteArgs(chosen, t, ctx.Names.Protocols)} would be used, but:");
            }
            if (x.Decider is { Route: { } dropRoute } && IsDropRoute(dropRoute))
                o.WriteLine($"Dropped:  intended: {Owned(dropRoute.Protocol, ctx, "route")} is a{(dropRoute.Type == RouteType.Unreachable ? "n" : "")} {dropRoute.Type.ToString().ToLowerInvariant()} route (the kernel answers \"{x.Match.Error}\")");
            else if (x.Decider is { Route: null, Outcome: RuleOutcome.Decided } drop)
                o.WriteLine($"Dropped:  intended: rule {drop.Entry.Rule.Priority}, {Owned(drop.Entry.Rule.Protocol, ctx, "rule")}, is a {drop.Why} rule (the kernel answers \"{x.Match.Error}\")");
            else
            {
                o.WriteLine($"Dropped:  the kernel answers \"{x.Match.Error}\"");
                if (x.Decider is null) o.WriteLine($"          no rule led to a table with a route to {p.To}");
            }
            if (x.Hint is not null) o.WriteLine($"Hint:     {x.Hint}");
        }
        foreach (var s in x.PassedOver)
            o.WriteLine($"Before:   rule {s.Entry.Rule.Priority} ({RuleText(s.Entry, ctx)}) matched, but {s.Why}");
        o.WriteLine(x.Agrees
            ? p.Mark != 0 && p.Mark != x.Asked?.Mark ? $"Kernel:   ip route get with mark 0x{p.Mark:x} agrees" : "Kernel:   ip route get agrees"
            : x.Match.Routed
                ? "Kernel:   ip route get decided this; tunnel-router's own rule walk expected otherwise (a selector it does not model, such as l3mdev or tun_id, may have decided), and the kernel's answer is the one shown"
                : "Kernel:   ip route get refuses the packet although the rules lead to a route; the kernel's answer is what counts");
    }

    /// <summary>"tunnel-router's route (the policy's)", "someone else's rule (protocol boot)".</summary>
    static string Owned(byte protocol, Context ctx, string what) =>
        protocol == ctx.Protocol ? $"tunnel-router's {what} (the policy's)"
        : protocol == ctx.HookProtocol ? $"tunnel-router's {what} (OpenVPN hook)"
        : $"someone else's {what} (protocol {ctx.Names.Protocols.Format(protocol)})";

    static void WriteJson(Context ctx, Explanation x, string? foreignMarks)
    {
        JsonOutput.Print(ctx.Out, w =>
        {
            w.WriteStartObject();
            w.WriteString("packet", Describe(x.Asked ?? x.Packet));
            w.WriteBoolean("routed", x.Match.Routed);
            w.WriteBoolean("intendedDrop", x.Intended);
            w.WriteNumber("mark", x.Packet.Mark);
            if (x.Marks is { Evaluated: true } m)
            {
                w.WriteStartArray("marks");
                foreach (var step in m.Steps)
                {
                    w.WriteStartObject();
                    w.WriteNumber("entry", step.Index);
                    w.WriteNumber("mark", step.MarkAfter);
                    w.WriteString("rule", NftMarks.RuleLine(step.Rule));
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                if (m.Note is not null) w.WriteString("marksNote", m.Note);
            }
            if (foreignMarks is not null) w.WriteString("note", foreignMarks);
            if (x.Decider is { } d)
            {
                w.WriteStartObject("rule");
                w.WriteNumber("priority", d.Entry.Rule.Priority);
                w.WriteString("rule", RuleText(d.Entry, ctx));
                w.WriteNumber("protocol", d.Entry.Rule.Protocol);
                w.WriteBoolean("ours", d.Entry.Rule.Protocol == ctx.Protocol || d.Entry.Rule.Protocol == ctx.HookProtocol);
                w.WriteEndObject();
            }
            if (x.Match.Routed)
            {
                w.WriteNumber("table", x.Match.Table!.Value);
                w.WriteString("tableName", ctx.Names.Tables.Format(x.Match.Table.Value));
                w.WriteString("route", RouteText(x.Match, ctx));
                if (x.NextHop.Gateway is not null) w.WriteString("gateway", x.NextHop.Gateway);
                if (x.NextHop.Device is not null) w.WriteString("device", x.NextHop.Device);
                if (Recursive(ctx, x) is { } warning) w.WriteString("warning", warning);
            }
            else
            {
                w.WriteString("error", x.Match.Error);
                if (x.Hint is not null) w.WriteString("hint", x.Hint);
            }
            w.WriteStartArray("passedOver");
            foreach (var s in x.PassedOver) w.WriteNumberValue(s.Entry.Rule.Priority);
            w.WriteEndArray();
            w.WriteBoolean("kernelAgrees", x.Agrees);
            w.WriteEndObject();
        });
    }

    static string Describe(Packet p)
    {
        var s = $"from {(p.From?.ToString() ?? "this host")} to {p.To}";
        s += p.IsLocal ? ", sent by this host" : $", arriving on {p.Iif}";
        if (p.IpProto is { } proto) s += $", {IpProtocols.Format(proto)}";
        if (p.SourcePort is { } sp) s += $" sport {sp}";
        if (p.DestinationPort is { } dp) s += $" dport {dp}";
        if (p.Mark != 0) s += $", mark 0x{p.Mark:x}";
        return s;
    }

    static string RuleText(RuleEntry e, Context ctx)
    {
        var text = IpCommand.RuleArgs(e.Rule, ctx.Names.Tables, ctx.Names.Protocols);
        // RuleArgs repeats the priority and protocol, which the lines around it already say.
        text = System.Text.RegularExpressions.Regex.Replace(text, @" pref \d+| protocol \S+", "");
        if (e.GotoPriority is { } g) text = text.Replace(" lookup 0", "") + $" goto {g}";
        if (e.Nop) text = text.Replace(" lookup 0", "") + " nop";
        return text;
    }

    static string Owner(byte protocol, Context ctx) =>
        protocol == ctx.Protocol ? $"tunnel-router's rule (apply, protocol {protocol})"
        : protocol == ctx.HookProtocol ? $"tunnel-router's rule (OpenVPN hook, protocol {protocol})"
        : $"not tunnel-router's: someone else's rule decided it (protocol {ctx.Names.Protocols.Format(protocol)})";

    static string RouteText(KernelAnswer a, Context ctx)
    {
        var s = a.Type is null or "unicast" ? "" : a.Type + " ";
        s += a.Destination;
        if (a.Gateway is not null) s += $" via {a.Gateway}";
        if (a.Device is not null) s += $" dev {a.Device}";
        if (a.Protocol is { } pr) s += $" proto {ctx.Names.Protocols.Format(pr)}";
        if (a.Protocol == ctx.Protocol || a.Protocol == ctx.HookProtocol) s += " (tunnel-router's)";
        else if (a.Protocol is { } daemon && RoutingDaemons.Of(daemon) is { } who) s += $" (learned by {who}: the routing daemon decides here)";
        return s;
    }

    static string NextHopText(KernelAnswer a) =>
        a.Type == "local" || a.Device == "lo" ? "delivered to this host"
        : a.Gateway is not null ? $"{a.Gateway} on {a.Device}"
        : $"directly on {a.Device} (the destination is on that link)";

    /// <summary>--from A --to B --iif D --mark N --proto P --sport N --dport N, from <see cref="CliArgs.Extra"/>.</summary>
    static (Packet, string? Assumed, bool MarkGiven) ParsePacket(IReadOnlyList<string> extra, RouteLookup lookup)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < extra.Count; i++)
        {
            var flag = extra[i];
            if (!CommandTable.Takes("explain", flag)) throw new InputException(flag, "unknown option for explain; see 'tunnel-router explain --help'");
            if (i + 1 >= extra.Count || extra[i + 1].StartsWith("--", StringComparison.Ordinal)) throw new InputException(flag, "needs a value");
            if (!values.TryAdd(flag, extra[++i])) throw new InputException(flag, "given twice");
        }
        if (!values.TryGetValue("--to", out var toText)) throw new InputException("--to", "is required: the destination address");
        var to = Net.ParseAddress("--to", toText);
        var from = values.TryGetValue("--from", out var f) ? Net.ParseAddress("--from", f, to.AddressFamily) : null;
        string? iif = null;
        if (values.TryGetValue("--iif", out var dev)) iif = InterfaceName.Validate("--iif", dev);

        var mark = values.TryGetValue("--mark", out var m) ? Number("--mark", m, uint.MaxValue) : 0;
        byte? proto = null;
        if (values.TryGetValue("--proto", out var pt))
            proto = IpProtocols.TryParse(pt, out var pn) ? pn : throw new InputException("--proto", $"'{Net.Printable(pt)}' is not a protocol (tcp, udp, icmp or a number)");
        ushort? sport = values.TryGetValue("--sport", out var sp) ? (ushort)Number("--sport", sp, ushort.MaxValue) : null;
        ushort? dport = values.TryGetValue("--dport", out var dp) ? (ushort)Number("--dport", dp, ushort.MaxValue) : null;
        if ((sport ?? dport) is not null && proto is null) throw new InputException("--proto", "ports need a protocol: --proto tcp or --proto udp");
        var uid = values.TryGetValue("--uid", out var u) ? Number("--uid", u, uint.MaxValue) : 0;

        string? assumed = null;
        if (iif is null && from is not null)
        {
            var back = lookup.RouteTo(from);
            // A source that is not ours arrives from somewhere: where the host reaches it is the likely way in.
            if (back is { Routed: true, Type: not "local", Device: { } through })
            {
                iif = through;
                assumed = $"assumed: {from} is reached through {through}; pass --iif to choose";
            }
            else if (!back.Routed)
                assumed = $"assumed: sent by this host with source {from}, which is not one of its addresses and has no route back; pass --iif to say where it arrives";
        }
        return (new Packet(to.AddressFamily, from, to, iif ?? Packet.LocalIif, mark, proto, sport, dport, uid), assumed, values.ContainsKey("--mark"));
    }

    static uint Number(string field, string text, uint max) =>
        NameMap.TryParseNumber(text, out var n) && n <= max ? n
        : throw new InputException(field, $"'{Net.Printable(text)}' is not a number from 0 to {max}");
}
