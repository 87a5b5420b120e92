using TunnelRouter.Core;

namespace TunnelRouter.Cli;

/// <summary>OpenVPN's --up/--down hook: one tunnel's routes (and pool rules) in the policy table.</summary>
public static class HookCommand
{
    public static int Run(Context ctx, HookAction? commanded)
    {
        var tunnel = OpenVpnTunnel.Parse(ctx.Environment, ctx.Args.Positional, commanded);
        var o = ctx.Options;
        var settings = new HookSettings(
            ctx.Names.ResolveTable("Table", o.Table, o.TableId),
            ctx.HookProtocol,
            o.PoolRules,
            o.PoolRulePriority);

        var desired = tunnel.Action == HookAction.Up ? HookPolicy.Desired(tunnel, settings) : KernelState.Empty;
        StartupTrace.Mark("tunnel parsed");
        using (ctx.Lock())
        {
            StartupTrace.Mark("locked");
            // The whole table, not just this device's routes: a foreign route with the same key must be seen.
            var current = ctx.Kernel.Read(new StateQuery(new HashSet<uint> { settings.Table }, Rules: o.PoolRules));
            StartupTrace.Mark("read");
            var plan = Planner.Plan(desired, current, HookPolicy.Scope(tunnel, settings));
            StartupTrace.Mark("planned");
            ctx.Applier().Apply(plan, ctx.Args.DryRun);
            StartupTrace.Mark("applied");
            // Names only after the kernel took the changes: a failed up leaves no file behind either.
            if (tunnel.Action == HookAction.Up) ctx.CommitNames();
            ctx.Log.Debug("{Action} {Device}: {Count} change(s)", tunnel.Action, tunnel.Device, plan.Count);
        }
        return 0;
    }
}
