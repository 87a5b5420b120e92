using TunnelRouter.Core;
using TunnelRouter.Kernel;

namespace TunnelRouter.Cli;

/// <summary>OpenVPN's --up/--down hook: one tunnel's routes (and pool rules) in the policy table.</summary>
public static class HookCommand
{
    public static int Run(Context ctx, HookAction? commanded)
    {
        var tunnel = OpenVpnTunnel.Parse(ctx.Environment, ctx.Args.Positional, commanded);
        var o = ctx.Options;
        var records = TunnelRecords.ForLock(o.LockFile);
        StartupTrace.Mark("tunnel parsed");
        using (ctx.Lock())
        {
            StartupTrace.Mark("locked");
            // Resolved under the lock, from names read under it: two hooks naming two new tables at once must
            // not give both the same id.
            var settings = new HookSettings(
                ctx.Names.ResolveTable(o.FieldOf("Table"), o.Table, o.TableId),
                ctx.HookProtocol,
                o.PoolRules,
                o.PoolRulePriority);
            var desired = tunnel.Action == HookAction.Up ? HookPolicy.Desired(tunnel, settings) : KernelState.Empty;
            var record = records.Read(tunnel.Device);
            // The whole table, not just this device's routes: a foreign route with the same key must be seen.
            var current = ctx.Kernel.Read(new StateQuery(new HashSet<uint> { settings.Table },
                Rules: o.PoolRules || record is { Rules.Count: > 0 } || tunnel.Action == HookAction.Down));
            StartupTrace.Mark("read");
            if (tunnel.Action == HookAction.Down && record is not null && !record.Matches(tunnel))
                ctx.Log.Information("{Device} is another tunnel's now ({Identity}); leaving its routes and rules", tunnel.Device, record.Identity);
            var plan = Planner.Plan(desired, current, HookPolicy.Scope(tunnel, settings, desired, record));
            StartupTrace.Mark("planned");
            ctx.ApplyWithNames(plan, writeNames: tunnel.Action == HookAction.Up);
            StartupTrace.Mark("applied");
            if (!ctx.Args.DryRun) Record(ctx, records, tunnel, desired, record);
            ctx.Log.Debug("{Action} {Device}: {Count} change(s)", tunnel.Action, tunnel.Device, plan.Count);
        }
        return 0;
    }

    /// <summary>Up records what it installed, down forgets its own record. The kernel changes are made by then:
    /// a record that cannot be written is a warning (down then removes what up would install), not a failure.</summary>
    static void Record(Context ctx, TunnelRecords records, OpenVpnTunnel tunnel, KernelState desired, TunnelRecord? previous)
    {
        try
        {
            if (tunnel.Action == HookAction.Up) records.Write(TunnelRecord.Of(tunnel, desired));
            else if (previous is null || previous.Matches(tunnel)) records.Delete(tunnel.Device);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or TunnelRouterException)
        {
            ctx.Log.Warning("tunnel-router: warning: cannot record {Device}'s state: {Message}", tunnel.Device, e.Message);
        }
    }
}
