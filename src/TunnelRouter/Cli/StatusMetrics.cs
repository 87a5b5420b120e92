using System.Globalization;
using System.Net.Sockets;
using System.Text;
using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;

namespace TunnelRouter.Cli;

/// <summary>
/// <c>status --format prometheus</c>: what status knows, in the Prometheus text exposition format (version 0.0.4), for
/// node_exporter's textfile collector (<c>tunnel-router status --format prometheus &gt; /var/lib/prometheus/node-exporter/tunnel-router.prom.$$ &amp;&amp; mv ...</c>).
/// From the one snapshot status reads: owned routes and rules per table, family and owner, the kill switch of each
/// fail-closed table, the guard, the live tunnels and what of them is missing, and the last apply's record (<see cref="LastApply"/>).
/// watch's listener serves the same, plus what only watch knows (restores, back-off: <see cref="WatchEvents"/>).
/// </summary>
public static class StatusMetrics
{
    /// <summary>One scrape: one reading of the kernel (with <paramref name="kernel"/>: watch's listener reads on its own
    /// socket, beside the watch loop's), the live tunnels' records, the last apply's record and, in watch, what only watch
    /// knows (<see cref="WatchEvents.Render"/>).</summary>
    /// <param name="routing">watch's policy's routing daemon, whose OSPF neighbours are asked (bounded: 10 s) each scrape.</param>
    public static string Scrape(Context ctx, IKernel kernel, IEnumerable<uint> failClosed, WatchEvents? watch, RoutingSpec? routing = null)
    {
        var snapshot = new SnapshotReader(kernel, ctx.Nft, ctx.Sysctls).Read(new SnapshotQuery());
        var live = ctx.Records.ReadAll();
        var o = new MetricsText();
        Render(o, snapshot, live, Reconciler.PlanLive(live, snapshot), ctx.Protocol, ctx.HookProtocol, failClosed, ctx.Names.Tables);
        Render(o, LastApply.Read(ctx.Options.LockFile));
        watch?.Render(o);
        if (routing is not null) Render(o, routing, RoutingDaemonProbe.Neighbours(routing.Daemon, routing.Control));
        return o.ToString();
    }

    /// <summary>The routing daemon's OSPF neighbours on each interface the policy gives it (not stubs): how many are Full
    /// and how many are not (ExStart for good is an MTU mismatch: doctor names it). <paramref name="neighbours"/> null: the
    /// daemon does not answer.</summary>
    internal static void Render(MetricsText o, RoutingSpec routing, IReadOnlyList<OspfNeighbour>? neighbours)
    {
        var daemon = routing.Daemon == RoutingDaemonKind.Bird ? "bird" : "frr";
        o.Family("tunnel_router_routing_daemon_up", "gauge", "1 when the policy's routing daemon answers on its control socket.");
        o.Sample("tunnel_router_routing_daemon_up", [("daemon", daemon)], neighbours is null ? 0 : 1);
        if (neighbours is null) return;
        o.Family("tunnel_router_ospf_neighbours", "gauge", "OSPF neighbours the routing daemon has on each interface of the policy's Routing section, Full or not yet.");
        foreach (var i in routing.Ospf.Interfaces.Where(i => !i.Stub).Select(i => i.Name).Distinct().Order(StringComparer.Ordinal))
        {
            var on = neighbours.Where(n => n.Interface == i).ToList();
            o.Sample("tunnel_router_ospf_neighbours", [("interface", i), ("daemon", daemon), ("state", "full")], on.Count(n => n.IsFull));
            o.Sample("tunnel_router_ospf_neighbours", [("interface", i), ("daemon", daemon), ("state", "not_full")], on.Count(n => !n.IsFull));
        }
    }

    /// <summary>The last apply's result, duration, changes and time; nothing when there was none since boot.</summary>
    static void Render(MetricsText o, LastApply? last)
    {
        if (last is null) return;
        o.Family("tunnel_router_last_apply_success", "gauge", "1 when the last apply succeeded, 0 when it failed (and rolled back).");
        o.Sample("tunnel_router_last_apply_success", [], last.Ok ? 1 : 0);
        o.Family("tunnel_router_last_apply_duration_seconds", "gauge", "How long the last apply took, from parsing the policy to its last change.");
        o.Sample("tunnel_router_last_apply_duration_seconds", [], last.Seconds);
        o.Family("tunnel_router_last_apply_changes", "gauge", "Changes the last apply's plan held (applied, or rolled back when it failed).");
        o.Sample("tunnel_router_last_apply_changes", [], last.Changes);
        o.Family("tunnel_router_last_apply_timestamp_seconds", "gauge", "When the last apply ended (Unix time).");
        o.Sample("tunnel_router_last_apply_timestamp_seconds", [], last.Time.ToUnixTimeMilliseconds() / 1000.0);
    }

    static void Render(MetricsText o, KernelSnapshot snapshot, IReadOnlyList<TunnelRecord> live, PolicyPlan liveDrift, byte protocol, byte hookProtocol,
        IEnumerable<uint> failClosed, TableNames tables)
    {
        var routes = new SortedDictionary<(string Table, string Family, string Owner), int>();
        var rules = new SortedDictionary<(string Table, string Family, string Owner), int>();
        var killSwitches = new HashSet<(uint Table, AddressFamily Family)>();
        var closed = new SortedSet<uint>(failClosed);
        foreach (var r in snapshot.State.Routes)
        {
            if (Owner(r.Protocol, protocol, hookProtocol) is not { } owner) continue;
            var key = (tables.Format(r.Table), Family(r.Family), owner);
            routes[key] = routes.GetValueOrDefault(key) + 1;
            if (Lifecycle.IsKillSwitch(r, protocol))
            {
                killSwitches.Add((r.Table, r.Family));
                closed.Add(r.Table);
            }
        }
        foreach (var r in snapshot.State.Rules)
        {
            if (Owner(r.Protocol, protocol, hookProtocol) is not { } owner) continue;
            var key = (r.Table == 0 ? r.Action.ToString().ToLowerInvariant() : tables.Format(r.Table), Family(r.Family), owner);
            rules[key] = rules.GetValueOrDefault(key) + 1;
        }

        o.Family("tunnel_router_owned_routes", "gauge", "Routes tunnel-router owns, by table, address family and owner (tunnel-router: the policy; tunnel-router-hook: the live tunnels).");
        foreach (var ((table, family, owner), n) in routes) o.Sample("tunnel_router_owned_routes", [("table", table), ("family", family), ("owner", owner)], n);
        o.Family("tunnel_router_owned_rules", "gauge", "Routing rules tunnel-router owns, by the table they look up (or their action), address family and owner.");
        foreach (var ((table, family, owner), n) in rules) o.Sample("tunnel_router_owned_rules", [("table", table), ("family", family), ("owner", owner)], n);
        o.Family("tunnel_router_fail_closed", "gauge", "1 when the fail-closed table's kill switch (an owned unreachable default at the highest metric) is in place for the family, 0 when it is missing.");
        foreach (var table in closed)
            foreach (var family in new[] { AddressFamily.InterNetwork, AddressFamily.InterNetworkV6 })
                o.Sample("tunnel_router_fail_closed", [("table", tables.Format(table)), ("family", Family(family))], killSwitches.Contains((table, family)) ? 1 : 0);
        o.Family("tunnel_router_guard_loaded", "gauge", "1 when the fail-closed guard (nftables table inet tunnel_router_guard) is loaded.");
        o.Sample("tunnel_router_guard_loaded", [], snapshot.Guard is null ? 0 : 1);
        o.Family("tunnel_router_live_tunnels", "gauge", "OpenVPN tunnels with a record of the hook whose device exists.");
        o.Sample("tunnel_router_live_tunnels", [], live.Count(r => !liveDrift.Forgotten.Contains(r.Device)));
        o.Family("tunnel_router_live_drift_changes", "gauge", "Changes apply would make to bring the live tunnels' routes and rules back (0: in place).");
        o.Sample("tunnel_router_live_drift_changes", [], liveDrift.Changes.Count);
    }

    static string? Owner(byte p, byte protocol, byte hookProtocol) =>
        p == protocol ? "tunnel-router" : p == hookProtocol ? "tunnel-router-hook" : null;

    static string Family(AddressFamily f) => f == AddressFamily.InterNetworkV6 ? "inet6" : "inet";
}

/// <summary>The Prometheus text exposition format (0.0.4), written family by family: what status and watch's listener share.</summary>
public sealed class MetricsText
{
    readonly StringBuilder _o = new();

    /// <summary>A family's # HELP and # TYPE lines (gauge or counter), before its samples.</summary>
    public void Family(string name, string type, string help) =>
        _o.Append("# HELP ").Append(name).Append(' ').Append(help).Append("\n# TYPE ").Append(name).Append(' ').Append(type).Append('\n');

    public void Sample(string name, (string Name, string Value)[] labels, long value) =>
        Sample(name, labels, value.ToString(CultureInfo.InvariantCulture));

    /// <summary>A fraction as plain digits (never an exponent: 0.000012, not 1.2E-05).</summary>
    public void Sample(string name, (string Name, string Value)[] labels, double value) =>
        Sample(name, labels, value.ToString("0.0#####", CultureInfo.InvariantCulture));

    void Sample(string name, (string Name, string Value)[] labels, string value)
    {
        _o.Append(name);
        if (labels.Length > 0)
        {
            _o.Append('{');
            for (var i = 0; i < labels.Length; i++)
            {
                if (i > 0) _o.Append(',');
                _o.Append(labels[i].Name).Append("=\"").Append(Escape(labels[i].Value)).Append('"');
            }
            _o.Append('}');
        }
        _o.Append(' ').Append(value).Append('\n');
    }

    /// <summary>The exposition format's label escapes: backslash, double quote, line feed.</summary>
    static string Escape(string v) => v.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");

    public override string ToString() => _o.ToString();
}
