using System.Globalization;
using System.Net.Sockets;
using System.Text;
using TunnelRouter.Core;
using TunnelRouter.Policy;

namespace TunnelRouter.Cli;

/// <summary>
/// <c>status --format prometheus</c>: what status knows, in the Prometheus text exposition format (version 0.0.4), for
/// node_exporter's textfile collector (<c>tunnel-router status --format prometheus &gt; /var/lib/prometheus/node-exporter/tunnel-router.prom.$$ &amp;&amp; mv ...</c>).
/// From the one snapshot status reads: owned routes and rules per table, family and owner, the kill switch of each
/// fail-closed table, the guard, the live tunnels and what of them is missing. The watch-only series (restores, back-off)
/// and the last apply's are not here: status cannot know them.
/// </summary>
public static class StatusMetrics
{
    public static string Render(KernelSnapshot snapshot, IReadOnlyList<TunnelRecord> live, PolicyPlan liveDrift, byte protocol, byte hookProtocol,
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

        var o = new StringBuilder();
        Family(o, "tunnel_router_owned_routes", "Routes tunnel-router owns, by table, address family and owner (tunnel-router: the policy; tunnel-router-hook: the live tunnels).");
        foreach (var ((table, family, owner), n) in routes) Sample(o, "tunnel_router_owned_routes", [("table", table), ("family", family), ("owner", owner)], n);
        Family(o, "tunnel_router_owned_rules", "Routing rules tunnel-router owns, by the table they look up (or their action), address family and owner.");
        foreach (var ((table, family, owner), n) in rules) Sample(o, "tunnel_router_owned_rules", [("table", table), ("family", family), ("owner", owner)], n);
        Family(o, "tunnel_router_fail_closed", "1 when the fail-closed table's kill switch (an owned unreachable default at the highest metric) is in place for the family, 0 when it is missing.");
        foreach (var table in closed)
            foreach (var family in new[] { AddressFamily.InterNetwork, AddressFamily.InterNetworkV6 })
                Sample(o, "tunnel_router_fail_closed", [("table", tables.Format(table)), ("family", Family(family))], killSwitches.Contains((table, family)) ? 1 : 0);
        Family(o, "tunnel_router_guard_loaded", "1 when the fail-closed guard (nftables table inet tunnel_router_guard) is loaded.");
        Sample(o, "tunnel_router_guard_loaded", [], snapshot.Guard is null ? 0 : 1);
        Family(o, "tunnel_router_live_tunnels", "OpenVPN tunnels with a record of the hook whose device exists.");
        Sample(o, "tunnel_router_live_tunnels", [], live.Count(r => !liveDrift.Forgotten.Contains(r.Device)));
        Family(o, "tunnel_router_live_drift_changes", "Changes apply would make to bring the live tunnels' routes and rules back (0: in place).");
        Sample(o, "tunnel_router_live_drift_changes", [], liveDrift.Changes.Count);
        return o.ToString();
    }

    static string? Owner(byte p, byte protocol, byte hookProtocol) =>
        p == protocol ? "tunnel-router" : p == hookProtocol ? "tunnel-router-hook" : null;

    static string Family(AddressFamily f) => f == AddressFamily.InterNetworkV6 ? "inet6" : "inet";

    static void Family(StringBuilder o, string name, string help) =>
        o.Append("# HELP ").Append(name).Append(' ').Append(help).Append("\n# TYPE ").Append(name).Append(" gauge\n");

    static void Sample(StringBuilder o, string name, (string Name, string Value)[] labels, long value)
    {
        o.Append(name);
        if (labels.Length > 0)
        {
            o.Append('{');
            for (var i = 0; i < labels.Length; i++)
            {
                if (i > 0) o.Append(',');
                o.Append(labels[i].Name).Append("=\"").Append(Escape(labels[i].Value)).Append('"');
            }
            o.Append('}');
        }
        o.Append(' ').Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
    }

    /// <summary>The exposition format's label escapes: backslash, double quote, line feed.</summary>
    static string Escape(string v) => v.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");
}
