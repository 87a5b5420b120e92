using System.Text.Json;
using TunnelRouter.Core;
using TunnelRouter.Policy;

namespace TunnelRouter.Cli;

/// <summary><c>status</c>: what TunnelRouter owns, from one snapshot: tunnels, routes and rules, the
/// nftables table, the policy's sysctls. It works on a broken policy too: it shows the kernel, and holds it against what
/// parsed of the policy, compared as the plan compares them (<see cref="Reconciler"/>).</summary>
public static class StatusCommand
{
    public static int Status(Context ctx)
    {
        var parsed = Commands.ReadPolicy(ctx, shown: false);
        if (Format(ctx) == "prometheus")
        {
            ctx.Out.Write(StatusMetrics.Scrape(ctx, ctx.Kernel, parsed.Policy.FailClosedTables, watch: null));
            return App.Ok;
        }
        var snapshot = ctx.ReadSnapshot(new SnapshotQuery(Sysctls: parsed.Policy.Sysctls.Select(s => s.Key).ToList()));
        var live = ctx.Records.ReadAll();
        var liveDrift = Reconciler.PlanLive(live, snapshot);
        var view = new View(ctx, snapshot, parsed, live, liveDrift);
        if (ctx.Args.Json)
        {
            JsonOutput.Print(ctx.Out, w =>
            {
                w.WriteStartObject();
                view.TunnelsJson(w);
                view.LiveJson(w);
                WatchUplinks.StatusJson(ctx, w);
                view.RoutingJson(w);
                view.MarksJson(w);
                view.SysctlsJson(w);
                w.WriteEndObject();
            });
            return App.Ok;
        }

        var text = new StringWriter();
        view.Tunnels(text);
        view.Live(text);
        WatchUplinks.Status(ctx, text);
        view.Routing(text);
        view.Marks(text);
        view.Sysctls(text);
        new TerminalText(ctx.Out).Write(text.GetStringBuilder().Length == 0 ? "tunnel-router owns nothing in the kernel.\n" : text.ToString());
        return App.Ok;
    }

    /// <summary>--format text|prometheus (default text); --json is the JSON form.</summary>
    static string Format(Context ctx)
    {
        var i = ctx.Args.Extra.ToList().IndexOf("--format");
        if (i < 0) return "text";
        var value = i + 1 < ctx.Args.Extra.Count ? ctx.Args.Extra[i + 1] : "";
        if (value is not ("text" or "prometheus")) throw new InputException("--format", $"'{Net.Printable(value)}' is not a format of status: text or prometheus");
        if (value == "prometheus" && ctx.Args.Json) throw new InputException("--format", "prometheus or --json, not both");
        return value;
    }

    sealed class View(Context ctx, KernelSnapshot snapshot, PolicyParse parsed, IReadOnlyList<TunnelRecord> live, PolicyPlan liveDrift)
    {
        readonly TableNames _t = ctx.Names.Tables;
        readonly ProtocolNames _p = ctx.Names.Protocols;

        /// <summary>Each live tunnel's record against the kernel: in place, what is missing, or gone.</summary>
        IEnumerable<(TunnelRecord Record, string State, List<string> Missing)> LiveRows()
        {
            foreach (var r in live)
            {
                var missing = liveDrift.Changes
                    .Where(c => c is AddRoute { Route.Device: { } d } && d == r.Device || c is AddRule a && r.Rules.Contains(a.Rule))
                    .Select(c => c.Display(_t, _p)).ToList();
                var state = liveDrift.Forgotten.Contains(r.Device) ? "its device is gone without a down; apply forgets it"
                    : missing.Count == 0 ? "in place" : $"{missing.Count} missing; run apply";
                yield return (r, state, missing);
            }
        }

        public void Live(TextWriter o)
        {
            if (live.Count == 0) return;
            o.WriteLine("live tunnels (the OpenVPN hook's records):");
            foreach (var (r, state, missing) in LiveRows())
            {
                o.WriteLine($"  {r.Identity}: {r.Routes.Count} route(s), {r.Rules.Count} rule(s), {state}");
                foreach (var m in missing) o.WriteLine($"    missing: {m}");
            }
            o.WriteLine();
        }

        public void LiveJson(Utf8JsonWriter json)
        {
            json.WriteStartArray("live");
            foreach (var (r, state, missing) in LiveRows())
            {
                json.WriteStartObject();
                json.WriteString("device", r.Device);
                json.WriteString("identity", r.Identity);
                json.WriteString("state", state);
                json.WriteStartArray("missing");
                foreach (var m in missing) json.WriteStringValue(m);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndArray();
        }

        List<Link> OwnedLinks() =>
            snapshot.Links.Where(TunnelPlanner.IsOwned).OrderBy(l => l.Name, StringComparer.Ordinal).ToList();

        (List<Route> Routes, List<Rule> Rules) Owned()
        {
            var owned = ctx.Owned;
            return (
                snapshot.State.Routes.Where(owned.Route).OrderBy(r => r.Table).ThenBy(r => r.Family).ThenBy(r => r.Destination.ToString()).ToList(),
                snapshot.State.Rules.Where(owned.Rule).OrderBy(r => r.Priority).ThenBy(r => r.Family).ToList());
        }

        public void Tunnels(TextWriter o)
        {
            var owned = OwnedLinks();
            if (owned.Count == 0) return;
            o.WriteLine("tunnels:");
            foreach (var l in owned)
            {
                o.WriteLine($"  {l.Gre} {(l.Up ? "up" : "down")}");
                foreach (var a in l.Addresses.Where(a => !a.IsLinkLocal)) o.WriteLine($"    {a}");
            }
        }

        public void TunnelsJson(Utf8JsonWriter w)
        {
            w.WriteStartArray("tunnels");
            foreach (var l in OwnedLinks())
            {
                var g = l.Gre!;
                w.WriteStartObject();
                w.WriteString("name", g.Name);
                w.WriteString("mode", g.Mode.Kind());
                if (g.Local is not null) w.WriteString("local", g.Local.ToString());
                w.WriteString("remote", g.Remote.ToString());
                if (g.IKey is { } ik) w.WriteNumber("ikey", ik);
                if (g.OKey is { } ok) w.WriteNumber("okey", ok);
                w.WriteNumber("ttl", g.Ttl);
                w.WriteNumber("tos", g.Tos);
                w.WriteBoolean("pmtudisc", g.PMtuDisc);
                w.WriteNumber("mtu", g.Mtu);
                if (g.Underlay is not null) w.WriteString("underlay", g.Underlay);
                w.WriteBoolean("up", l.Up);
                w.WriteStartArray("addresses");
                foreach (var a in l.Addresses.Where(a => !a.IsLinkLocal)) w.WriteStringValue(a.ToString());
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }

        /// <summary>Owned routes table by table, then owned rules, as ip arguments with names.</summary>
        public void Routing(TextWriter o)
        {
            var (routes, rules) = Owned();
            foreach (var group in routes.GroupBy(r => r.Table))
            {
                o.WriteLine($"table {_t.Format(group.Key)} ({group.Key}):");
                foreach (var r in group) o.WriteLine($"  {Net.FamilyFlag(r.Family)} {IpCommand.RouteArgs(r, _t, _p)}");
            }
            if (rules.Count > 0)
            {
                o.WriteLine("rules:");
                foreach (var r in rules) o.WriteLine($"  {Net.FamilyFlag(r.Family)} {IpCommand.RuleArgs(r, _t, _p)}");
            }
        }

        public void RoutingJson(Utf8JsonWriter w)
        {
            var (routes, rules) = Owned();
            w.WriteStartArray("routes");
            foreach (var r in routes)
            {
                w.WriteStartObject();
                w.WriteString("family", r.Family.IsV6() ? "inet6" : "inet");
                w.WriteNumber("table", r.Table);
                w.WriteString("tableName", _t.Format(r.Table));
                w.WriteString("route", IpCommand.RouteArgs(r, _t, _p));
                w.WriteString("owner", _p.Format(r.Protocol));
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("rules");
            foreach (var r in rules)
            {
                w.WriteStartObject();
                w.WriteString("family", r.Family.IsV6() ? "inet6" : "inet");
                w.WriteNumber("priority", r.Priority);
                w.WriteString("rule", IpCommand.RuleArgs(r, _t, _p));
                w.WriteString("owner", _p.Format(r.Protocol));
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }

        public void Marks(TextWriter o)
        {
            if (snapshot.Nft is not { } current) return;
            o.WriteLine($"nftables table {NftMarks.QualifiedName} ({SyncState(current)}):");
            // The chains, one level in: the table's own first and last lines and its comment say nothing new.
            foreach (var line in current.Definition.Split('\n'))
                if (line.StartsWith('\t') && line.Trim() is { Length: > 0 } t && !t.StartsWith("comment ", StringComparison.Ordinal))
                    o.WriteLine("  " + line.TrimEnd()[1..].Replace("\t", "  "));
        }

        public void MarksJson(Utf8JsonWriter json)
        {
            json.WritePropertyName("marks");
            if (snapshot.Nft is not { } current) { json.WriteNullValue(); return; }
            json.WriteStartObject();
            json.WriteString("table", NftMarks.QualifiedName);
            json.WriteString("fingerprint", current.Fingerprint);
            json.WriteString("state", SyncState(current));
            json.WriteString("ruleset", current.Definition);
            json.WriteEndObject();
        }

        /// <summary>Whether the table is what the policy asks for; status works even on a broken policy.</summary>
        string SyncState(NftTableState current) =>
            parsed.MarksErrors.Count > 0 ? "the policy's Marks are invalid"
            : Reconciler.MarksInPlace(parsed.Policy.Marks, current) ? "as in the policy" : "differs from the policy; run apply";

        IEnumerable<SysctlState> SysctlRows() => Reconciler.SysctlStates(parsed.Policy, snapshot);

        public void Sysctls(TextWriter o)
        {
            if (parsed.Policy.Sysctls.Count == 0) return;
            o.WriteLine("sysctls (set by the policy, left as they are by flush):");
            foreach (var (key, want, have, inPlace) in SysctlRows())
                o.WriteLine(inPlace ? $"  {key} = {Sysctl.Normalize(have!)}"
                    : $"  {key} = {(have is null ? "(absent)" : Sysctl.Normalize(have))} (policy: {want}; run apply)");
        }

        public void SysctlsJson(Utf8JsonWriter json)
        {
            json.WriteStartArray("sysctls");
            foreach (var (key, want, have, inPlace) in SysctlRows())
            {
                json.WriteStartObject();
                json.WriteString("key", key);
                json.WriteString("policy", want);
                if (have is null) json.WriteNull("value"); else json.WriteString("value", Sysctl.Normalize(have));
                json.WriteBoolean("asInPolicy", inPlace);
                json.WriteEndObject();
            }
            json.WriteEndArray();
        }
    }
}
