using Serilog;
using TunnelRouter.Core;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;

namespace TunnelRouter.Cli;

/// <summary>
/// watch's hook for uplink health (docs/uplinks.md): a tracker runs while the policy has a Failover line or a Track; each
/// re-plan tells it the uplinks as they resolve now and takes their health into the snapshot
/// (<see cref="KernelSnapshot.UplinkStates"/>), so the one pure plan moves a table's default route.
/// </summary>
internal static class WatchUplinks
{
    /// <summary>Where watch writes the uplinks' states for <c>status</c>: beside its lock, one per network namespace.</summary>
    public static string StatusPath(string lockFile) => Path.ChangeExtension(WatchCommand.LockPath(lockFile), ".uplinks");

    /// <summary>The snapshot with the uplinks' health; starts, reconfigures or stops <paramref name="tracker"/> to match
    /// the policy.</summary>
    public static KernelSnapshot WithHealth(ref UplinkTracker? tracker, ParsedPolicy policy, KernelSnapshot snapshot, ILogger log, string lockFile)
    {
        var wanted = policy.Failover.Count > 0 || policy.Uplinks.Any(u => u.Track is not null);
        if (!wanted)
        {
            tracker?.Dispose();
            tracker = null;
            return snapshot;
        }
        tracker ??= new UplinkTracker(log, StatusPath(lockFile));
        tracker.Configure(Targets(policy, snapshot));
        return snapshot with { UplinkStates = tracker.States() };
    }

    /// <summary>One row of watch's status file, with the tables whose Failover lines name the uplink.</summary>
    public sealed record Row(string Uplink, string Family, string State, DateTimeOffset? Since, string LastProbes, string Device, IReadOnlyList<string> Tables);

    /// <summary>The uplinks' health as the running watch last wrote it; empty when no watch tracks any.</summary>
    public static List<Row> Read(Context ctx)
    {
        var path = StatusPath(ctx.Options.LockFile);
        if (!WatchCommand.Running(ctx.Options.LockFile) || !File.Exists(path)) return [];
        var rows = new List<Row>();
        foreach (var line in File.ReadLines(path))
        {
            var f = line.Split('\t');
            if (f.Length != 6) continue;
            // The tables as the policy's Failover lines name them ("table out via wan1 wan2"): read, not judged.
            var tables = ctx.Options.Failover.Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Where(w => Via(w).Contains(f[0]))
                .Select(w => w.SkipWhile(x => x != "table").Skip(1).FirstOrDefault() ?? "?").ToList();
            rows.Add(new Row(f[0], f[1] == "6" ? "IPv6" : "IPv4", f[2],
                long.TryParse(f[3], out var s) ? DateTimeOffset.FromUnixTimeSeconds(s) : null, f[4] == "-" ? "" : f[4], f[5], tables));
        }
        return rows;
    }

    /// <summary>The uplinks a Failover line's words name after via, without their weights ("via wan1 weight 3 wan2").</summary>
    static List<string> Via(string[] words)
    {
        var via = words.SkipWhile(w => w != "via").Skip(1).TakeWhile(w => w is not ("table" or "metric")).ToList();
        for (var i = via.Count - 1; i >= 0; i--)
            if (via[i] == "weight") via.RemoveRange(i, Math.Min(2, via.Count - i));
        return via;
    }

    /// <summary>status: each uplink's state, since when, its last probes and the tables that use it.</summary>
    public static void Status(Context ctx, TextWriter o)
    {
        var rows = Read(ctx);
        if (rows.Count == 0) return;
        o.WriteLine("uplinks (watch's health; last probes oldest first, + answered, - lost):");
        foreach (var r in rows)
            o.WriteLine($"  {r.Uplink} {r.Family} {r.State}{(r.Since is { } s ? $" since {s.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC" : "")}, dev {r.Device}, " +
                        $"last probes {(r.LastProbes.Length == 0 ? "none" : r.LastProbes)}{(r.Tables.Count == 0 ? "" : $", tables {string.Join(", ", r.Tables)}")}");
        o.WriteLine();
    }

    /// <summary>explain: the uplink a route of a Failover table goes by, and why (its line, each uplink's health before it
    /// as the running watch last wrote it). Null when the route is not a Failover table's.</summary>
    public static string? Explain(Context ctx, uint? table, string? device)
    {
        if (table is null || device is null) return null;
        var name = ctx.Options.Uplinks.FirstOrDefault(u => u.Interface == device) is { } u ? u.Name ?? u.Interface : null;
        if (name is null) return null;
        for (var i = 0; i < ctx.Options.Failover.Count; i++)
        {
            var words = ctx.Options.Failover[i].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var named = words.SkipWhile(w => w != "table").Skip(1).FirstOrDefault();
            var id = named is null ? null : ctx.Names.Tables.TryGetId(named, out var t) ? t : (uint?)null;
            var via = Via(words);
            if (id != table || !via.Contains(name)) continue;
            var rows = Read(ctx);
            string State(string n) => rows.Where(r => r.Uplink == n).Select(r => $"{r.Family} {r.State}") is var s && s.Any() ? string.Join(", ", s) : "not tracked by a running watch";
            var before = via.TakeWhile(n => n != name).Select(n => $"{n} {State(n)}").ToList();
            return $"{name} (Failover[{i}]: {ctx.Options.Failover[i]}; " + (before.Count == 0 ? $"the first of its uplinks, {State(name)})" : $"{string.Join("; ", before)}; {name} {State(name)})");
        }
        return null;
    }

    public static void StatusJson(Context ctx, System.Text.Json.Utf8JsonWriter w)
    {
        w.WriteStartArray("uplinks");
        foreach (var r in Read(ctx))
        {
            w.WriteStartObject();
            w.WriteString("uplink", r.Uplink);
            w.WriteString("family", r.Family);
            w.WriteString("state", r.State);
            if (r.Since is { } s) w.WriteString("since", s);
            w.WriteString("lastProbes", r.LastProbes);
            w.WriteString("device", r.Device);
            w.WriteStartArray("tables");
            foreach (var t in r.Tables) w.WriteStringValue(t);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    /// <summary>Each resolved uplink's families: its address, gateway and the track's targets of that family.</summary>
    public static List<UplinkTracker.Target> Targets(ParsedPolicy policy, KernelSnapshot snapshot)
    {
        var targets = new List<UplinkTracker.Target>();
        foreach (var (spec, uplink) in Reconciler.ResolvedUplinks(policy, snapshot))
            foreach (var g in uplink.Gateways)
                if (uplink.Addresses.FirstOrDefault(a => a.Family == g.AddressFamily) is { } source)
                    targets.Add(new UplinkTracker.Target(new UplinkPath(spec.Name, g.AddressFamily), uplink.Device, source.Address, g,
                        [.. spec.Track?.TargetsOf(g.AddressFamily, g) ?? []], spec.Track));
        return targets;
    }
}
