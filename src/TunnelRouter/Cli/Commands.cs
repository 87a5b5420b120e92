using TunnelRouter.Core;

namespace TunnelRouter.Cli;

/// <summary>Policy commands: apply, plan, flush over every <see cref="IPolicyPart"/>.</summary>
public static class Commands
{
    public static int Run(Context ctx) => ctx.Args.Command switch
    {
        "apply" => Apply(ctx),
        "plan" => Plan(ctx),
        "flush" => Flush(ctx),
        "demo" => DemoCommand.Run(ctx),
        "doctor" => DoctorCommand.Run(ctx),
        "explain" => ExplainCommand.Run(ctx),
        _ => throw new InputException("command", $"'{ctx.Args.Command}' is not a command; see 'tunnel-router help'"),
    };

    internal static List<Change> PlanAll(Context ctx, Func<IPolicyPart, Context, IReadOnlyList<Change>> plan)
    {
        var parts = PolicyParts.All(ctx);
        foreach (var part in parts) part.Validate(ctx);
        StartupTrace.Mark("validated");
        var changes = new List<Change>();
        foreach (var part in parts) changes.AddRange(plan(part, ctx));
        StartupTrace.Mark("planned");
        return changes;
    }

    static int Apply(Context ctx)
    {
        using (ctx.Lock())
        {
            var plan = PlanAll(ctx, (p, c) => p.Plan(c));
            ctx.ApplyWithNames(plan);
            StartupTrace.Mark("applied");
            ctx.Log.Debug("apply: {Count} change(s)", plan.Count);
        }
        return App.Ok;
    }

    /// <summary>Prints the changes apply would make, one command per line; exit 2 when there are any.</summary>
    static int Plan(Context ctx)
    {
        var plan = PlanAll(ctx, (p, c) => p.Plan(c));
        foreach (var change in plan) ctx.Out.WriteLine(change.Display(ctx.Names.Tables, ctx.Names.Protocols));
        if (plan.Count == 0) ctx.Log.Information("nothing to change");
        return plan.Count == 0 ? App.Ok : App.PlanHasChanges;
    }

    static int Flush(Context ctx)
    {
        using (ctx.Lock())
        {
            // Flush removes what is owned even when the policy file is broken: no Validate here.
            var plan = new List<Change>();
            foreach (var part in PolicyParts.All(ctx).Reverse()) plan.AddRange(part.Flush(ctx));
            ctx.Applier().Apply(plan, ctx.Args.DryRun);
        }
        return App.Ok;
    }
}
