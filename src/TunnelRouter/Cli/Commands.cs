using System.Globalization;
using Serilog.Events;
using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;

namespace TunnelRouter.Cli;

/// <summary>Policy commands: apply, plan, flush. Each parses the policy once, reads the live tunnels' records and
/// the kernel once and plans once (<see cref="Reconciler"/>).</summary>
public static class Commands
{
    public static int Run(Context ctx) => ctx.Args.Command switch
    {
        "apply" => Apply(ctx),
        "plan" => Plan(ctx),
        "flush" => Flush(ctx),
        "watch" => WatchCommand.Run(ctx),
        "demo" => DemoCommand.Run(ctx),
        "doctor" => DoctorCommand.Run(ctx),
        "explain" => ExplainCommand.Run(ctx),
        "export" => ExportCommand.Run(ctx),
        "confirm" => ConfirmCommand.Confirm(ctx),
        "rollback" => ConfirmCommand.Rollback(ctx),
        _ => throw new InputException("command", $"'{ctx.Args.Command}' is not a command; see 'tunnel-router help'"),
    };

    /// <summary>The policy, parsed and validated; throws <see cref="InputException"/> before anything is read or changed.
    /// Its new table names are registered with the run's names (written, under the lock, by whatever applies).</summary>
    internal static ParsedPolicy ParsePolicy(Context ctx)
    {
        var policy = ReadPolicy(ctx).Valid();
        ctx.Names.Register(policy.NewNames);
        StartupTrace.Mark("validated");
        return policy;
    }

    /// <summary>The policy as far as it parses, with its mistakes: what doctor, status and explain read, which work on a
    /// broken policy too. <paramref name="shown"/> false: for a command that shows the kernel, not the policy (status,
    /// explain), which neither warns of a missing policy file nor reads the prefix files.</summary>
    internal static PolicyParse ReadPolicy(Context ctx, bool shown = true)
    {
        if (!shown) return PolicyParser.ParseTolerant(ctx.Options, ctx.Names, ctx.ConfigPath, prefixFiles: false);
        if (ctx.ConfigPath is null && PolicyParser.RoutesNothing(ctx.Options))
            ctx.Log.Warning("no policy file ({Path}, or -c PATH): the policy has no rules or routes", Config.ConfigLoader.DefaultPath);
        return PolicyParser.ParseTolerant(ctx.Options, ctx.Names, ctx.ConfigPath);
    }

    /// <summary>The policy parsed while the kernel's dumps run beside it (<see cref="Context.StartSnapshot"/>); a policy
    /// that fails to parse is reported as before, once the dumps are done with the kernel's socket.</summary>
    static (ParsedPolicy Policy, SnapshotReader.Pending? Early) ParsePolicyWhileReading(Context ctx)
    {
        var early = ctx.StartSnapshot();
        try { return (ParsePolicy(ctx), early); }
        catch
        {
            early?.Wait();
            throw;
        }
    }

    /// <summary>Plan from one snapshot: what apply, plan and doctor share. Before anything changes, a kernel
    /// without GRE is one line naming the module: <paramref name="loadModules"/> (apply) loads it; plan, doctor
    /// and --dry-run only check that modprobe would find it. <paramref name="stated"/>: the plan's notes (a
    /// computed MTU) at Information rather than Debug.</summary>
    internal static PolicyPlan PlanPolicy(Context ctx, ParsedPolicy policy, IReadOnlyList<TunnelRecord> live, KernelSnapshot snapshot,
        bool stated, bool loadModules = false)
    {
        // The names read under this run's lock (watch takes it for each cycle) get the policy's new ones: what a change
        // names is written to the drop-in before the change.
        ctx.Names.Register(policy.NewNames);
        try { return PlanAll(ctx, policy, live, snapshot, stated, loadModules); }
        catch (TunnelRouterException) when (loadModules && !ctx.Args.DryRun && Reconciler.Closing(policy, snapshot) is { Count: > 0 } closing)
        {
            // Kill switches go first, whatever fails (docs/lifecycle.md): the tables are closed, then the failing part is named.
            ctx.ApplyWithNames(closing);
            ctx.Log.Warning("tunnel-router: warning: the rest of the policy cannot be applied (below); the kill switches and the rules into them went in");
            throw;
        }
    }

    static PolicyPlan PlanAll(Context ctx, ParsedPolicy policy, IReadOnlyList<TunnelRecord> live, KernelSnapshot snapshot,
        bool stated, bool loadModules)
    {
        KernelModules? modules = null;
        foreach (var e in policy.Tunnels)
            if (!snapshot.Links.Any(l => l.Name == e.Link.Name && l.Gre?.Mode == e.Link.Mode))
                (modules ??= new KernelModules(new ProcessRunner())).Require(e.Link.Mode.Module(),
                    $"{e.Field} ({e.Link.Name}, {e.Link.Mode.Kind()})", loadModules);
        var plan = Reconciler.Plan(policy, live, snapshot, ReconcileMode.Converge, adopt: ctx.Args.Adopt, partial: loadModules && !ctx.Args.DryRun);
        StartupTrace.Mark("planned");
        foreach (var note in plan.Notes)
            ctx.Log.Write(stated && note.Stated || note.Always ? LogEventLevel.Information : LogEventLevel.Debug, "{Note}", note.Text);
        return plan;
    }

    /// <summary>apply, timed and recorded for the metrics (<see cref="Host.LastApply"/>) unless it is a dry run.</summary>
    static int Apply(Context ctx)
    {
        var clock = ctx.Args.DryRun ? null : new Host.LastApplyClock(ctx.Options.LockFile, ctx.Log);
        try
        {
            var code = ApplyOnce(ctx, clock);
            clock?.Done(ok: true);
            return code;
        }
        catch
        {
            clock?.Done(ok: false);
            throw;
        }
    }

    static int ApplyOnce(Context ctx, Host.LastApplyClock? clock)
    {
        var confirmSeconds = ConfirmCommand.Seconds(ctx);
        using (ctx.Lock())
        {
            if (clock is not null) clock.Started = true;
            var (policy, early) = ParsePolicyWhileReading(ctx);
            var live = ctx.Records.ReadAll();
            var snapshot = ctx.ReadSnapshot(Reconciler.QueryFor(policy), early);
            var plan = PlanPolicy(ctx, policy, live, snapshot, stated: ctx.Args.DryRun, loadModules: !ctx.Args.DryRun);
            if (clock is not null) clock.Changes = plan.Changes.Count;
            WarnLeaks(ctx, policy, live, snapshot);
            StartupTrace.Mark("leaks checked");
            // The policy of before is the last good one until this line: the revert's text, read before it is replaced.
            var pending = confirmSeconds is { } seconds ? ConfirmCommand.Begin(ctx, policy, seconds) : null;
            // A policy that parsed and planned is good to fall back on, whatever the kernel says next (docs/lifecycle.md).
            ctx.KeepAsLastGood();
            StartupTrace.Mark("kept as the last good policy");
            try
            {
                if (ctx.Args.Json) ApplyJson(ctx, policy, live, plan);
                else ApplyPlan(ctx, plan);
            }
            catch when (pending is not null)
            {
                // The apply rolled itself back: nothing to confirm, and the timer ends.
                ConfirmCommand.Abandon(ctx, pending);
                throw;
            }
            StartupTrace.Mark("applied");
            ctx.Log.Debug("apply: {Count} change(s)", plan.Changes.Count);
            // What the kernel would refuse stayed out and fails the run, after everything else went in (docs/lifecycle.md).
            if (plan.Refused is { } refused)
            {
                ctx.Log.Warning("tunnel-router: warning: the routes the kernel would refuse stay out (below); the kill switches and the rules into them went in, and the rest of the policy with them");
                throw refused;
            }
        }
        return App.Ok;
    }

    /// <summary>apply --json: the plan applied as <see cref="ApplyPlan"/> does, then every change with its result on stdout
    /// (docs/apply.schema.json): applied, rolled back (its all-or-nothing part failed), failed (the fail-closed guard,
    /// which fails on its own) or not sent; dry-run for -n. Printed on failure too, before the error.</summary>
    static void ApplyJson(Context ctx, ParsedPolicy policy, IReadOnlyList<TunnelRecord> live, PolicyPlan plan)
    {
        // The parts in the order they go in; a part that fails is rolled back whole, the ones after it are never sent.
        var parts = new List<(IReadOnlyList<Change> Changes, string Result)> { (plan.FailClosed, "not sent") };
        if (plan.Guard is { } g) parts.Add(([g], "not sent"));
        parts.Add((plan.Rest, "not sent"));
        var done = 0;
        // The routes the kernel would refuse are not in the plan: the run fails after the rest went in (Apply).
        var error = plan.Refused is { } refused ? App.OneLine(refused.Message) : null;
        try
        {
            ApplyPlan(ctx, plan, guardFailed: () => parts[1] = (parts[1].Changes, "failed"), applied: () =>
            {
                while (done < parts.Count && parts[done].Result == "failed") done++;
                if (done < parts.Count) parts[done] = (parts[done].Changes, ctx.Args.DryRun ? "dry-run" : "applied");
                done++;
            });
        }
        catch (TunnelRouterException e)
        {
            while (done < parts.Count && parts[done].Result == "failed") done++;
            if (done < parts.Count && parts[done].Changes.Count > 0) parts[done] = (parts[done].Changes, "rolled back");
            error = App.OneLine(e.Message);
            throw;
        }
        finally
        {
            var reasons = new PlanReasons(policy, ctx.Options.Origins(), live, ctx.Names.Tables, ctx.Names.Protocols);
            JsonOutput.Print(ctx.Out, w =>
            {
                w.WriteStartObject();
                w.WriteBoolean("ok", error is null);
                w.StringOrNull("error", error);
                w.WriteBoolean("dryRun", ctx.Args.DryRun);
                w.WriteStartArray("changes");
                foreach (var (changes, result) in parts)
                    foreach (var c in changes) WriteChange(w, reasons.Of(c), result);
                w.WriteEndArray();
                WriteTail(w, plan);
                w.WriteEndObject();
            });
        }
    }

    /// <summary>One change of plan --json and apply --json (docs/plan.schema.json); <paramref name="result"/> only for apply.</summary>
    static void WriteChange(System.Text.Json.Utf8JsonWriter w, PlannedChange c, string? result = null)
    {
        w.WriteStartObject();
        w.WriteString("operation", c.Operation);
        w.WriteString("object", c.Object);
        w.WriteString("command", c.Command);
        w.WriteString("owner", c.Owner);
        w.StringOrNull("file", c.File);
        w.StringOrNull("section", c.Section);
        if (c.Line is { } line) w.WriteNumber("line", line);
        else w.WriteNull("line");
        w.WriteString("reason", c.Reason);
        if (result is not null) w.WriteString("result", result);
        w.WriteEndObject();
    }

    static void WriteTail(System.Text.Json.Utf8JsonWriter w, PolicyPlan plan)
    {
        w.WriteStartArray("forgotten");
        foreach (var d in plan.Forgotten) w.WriteStringValue(d);
        w.WriteEndArray();
        w.WriteStartArray("waiting");
        foreach (var x in plan.Waiting) w.WriteStringValue(x.ToString());
        w.WriteEndArray();
    }

    /// <summary>What of the policy lets traffic meant for a fail-closed table leave by main (<see cref="Lifecycle.Findings"/>):
    /// said by plan and apply as warnings, by doctor as problems.</summary>
    static void WarnLeaks(Context ctx, ParsedPolicy policy, IReadOnlyList<TunnelRecord> live, KernelSnapshot snapshot)
    {
        foreach (var finding in Lifecycle.Findings(policy))
            ctx.Log.Warning("tunnel-router: warning: {Finding}", finding);
        StartupTrace.Mark("placeholders checked");
        foreach (var finding in Lifecycle.FallThrough(policy, live, snapshot))
            ctx.Log.Warning("tunnel-router: warning: {Finding}", finding);
    }

    /// <summary>
    /// Applies a plan: the kill switches first and on their own, so that no failure of the rest takes them back;
    /// then everything else, all or nothing. Then forgets the records of tunnels that are gone, and says what waits
    /// for a device (not an error: it goes in when the device appears). Under the lock; apply and watch share it.
    /// </summary>
    /// <param name="settleBound">at most this long for the routing daemon to take its interfaces (watch: its loop must
    /// not stall on a daemon while a kill switch waits to be restored).</param>
    /// <param name="applied">told after each part went in: the kill switches, the guard (when there is one), the rest.</param>
    /// <param name="guardFailed">told when the guard alone failed (the rest still goes in).</param>
    internal static void ApplyPlan(Context ctx, PolicyPlan plan, bool sayWaiting = true, TimeSpan? settleBound = null,
        Action? applied = null, Action? guardFailed = null)
    {
        if (plan.FailClosed.Count > 0) ctx.ApplyWithNames(plan.FailClosed);
        applied?.Invoke();
        if (plan.Guard is { } guard)
        {
            if (LoadGuard(ctx, guard)) applied?.Invoke();
            else guardFailed?.Invoke();
        }
        // The routing daemon's check comes last and on its own: a daemon that never takes an interface fails the run
        // with one line naming it, and takes nothing back — the tunnels, rules and kill switches stay as applied.
        var rest = plan.Rest;
        var settle = rest.Count > 0 && rest[rest.Count - 1] is SettleOspf s ? s : null;
        ctx.ApplyWithNames(settle is null ? rest : ChangeList.Slice(rest, 0, rest.Count - 1));
        applied?.Invoke();
        Forget(ctx, plan.Forgotten, "its device is gone without a down (OpenVPN killed?)");
        if (!ctx.Args.DryRun)
            foreach (var record in plan.Followed)
            {
                FaultPoint.Reached(ctx.Kernel, "records");
                try { ctx.Records.Write(record); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or TunnelRouterException)
                {
                    ctx.Log.Warning("tunnel-router: warning: cannot record {Device}'s state: {Message}", record.Device, e.Message);
                }
            }
        if (sayWaiting)
            foreach (var w in plan.Waiting) ctx.Log.Information("{Waiting}", w.ToString());
        if (settle is not null) ctx.Settle(settleBound is { } b && b < settle.Bound ? settle with { Bound = b } : settle);
    }

    /// <summary>The fail-closed guard on its own: a kernel without nf_tables (a minimal or User-Mode Linux kernel) keeps the
    /// kill switches and the rest of the plan; it is said loudly, doctor names it, and the next apply tries again.</summary>
    static bool LoadGuard(Context ctx, Change guard)
    {
        FaultPoint.Reached(ctx.Kernel, "guard");
        try
        {
            ctx.ApplyWithNames([guard]);
            return true;
        }
        catch (TunnelRouterException e)
        {
            ctx.Log.Warning("tunnel-router: warning: the fail-closed guard ({Table}) was not loaded: {Message}; the kill switches hold alone",
                NftGuard.QualifiedName, App.OneLine(e.Message));
            return false;
        }
    }

    static void Forget(Context ctx, IReadOnlyList<string> devices, string why)
    {
        foreach (var device in devices)
        {
            ctx.Log.Information("[#] forget tunnel record {Device}: {Why}", device, why);
            if (ctx.Args.DryRun) continue;
            try { ctx.Records.Delete(device); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                ctx.Log.Warning("tunnel-router: warning: cannot forget {Device}'s record: {Message}", device, e.Message);
            }
        }
    }

    /// <summary>Prints the changes apply would make, one command per line (the routes of a prefix file as one
    /// summary line, unless -v); exit 2 when there are any.</summary>
    static int Plan(Context ctx)
    {
        var (policy, early) = ParsePolicyWhileReading(ctx);
        var live = ctx.Records.ReadAll();
        var snapshot = ctx.ReadSnapshot(Reconciler.QueryFor(policy), early);
        var records = policy.Instances.Count > 0 ? LiveInstances.Records(ctx) : [];
        foreach (var line in LiveInstances.Lines(policy, records)) ctx.Log.Information("{Line}", line);
        foreach (var finding in LiveInstances.Recursion(ctx, records, policy)) ctx.Log.Warning("tunnel-router: warning: {Finding}", finding);
        var plan = PlanPolicy(ctx, policy, live, snapshot, stated: true);
        WarnLeaks(ctx, policy, live, snapshot);
        if (ConfirmCommand.PlanNote(ctx) is { } pendingNote) ctx.Log.Information("{Note}", pendingNote);
        if (ctx.Args.Json || ctx.Args.Verbose)
        {
            var reasons = new PlanReasons(policy, ctx.Options.Origins(), live, ctx.Names.Tables, ctx.Names.Protocols);
            if (ctx.Args.Json)
                JsonOutput.Print(ctx.Out, w =>
                {
                    w.WriteStartObject();
                    w.WriteStartArray("changes");
                    foreach (var c in plan.Changes) WriteChange(w, reasons.Of(c));
                    w.WriteEndArray();
                    WriteTail(w, plan);
                    w.WriteEndObject();
                });
            else
                // -v: every change, and which file's line wants it (a conf.d fragment's own index of the line).
                foreach (var c in plan.Changes)
                    ctx.Out.WriteLine(reasons.Of(c) is { Wanter: { } by } p ? $"{p.Command}    # {by}" : c.Display(ctx.Names.Tables, ctx.Names.Protocols));
        }
        else
            foreach (var line in PlanLines(plan.Changes, policy, ctx.Names.Tables, ctx.Names.Protocols, verbose: false))
                ctx.Out.WriteLine(line);
        foreach (var device in plan.Forgotten) ctx.Log.Information("{Device}: its device is gone without a down; apply forgets its tunnel record", device);
        foreach (var w in plan.Waiting) ctx.Log.Information("{Waiting}", w.ToString());
        if (plan.Changes.Count == 0) ctx.Log.Information("nothing to change");
        return plan.Changes.Count == 0 ? App.Ok : App.PlanHasChanges;
    }

    /// <summary>The plan as a person reads it: every change as its command, except that the routes a prefix
    /// file adds are one line where the first of them would be ("+ 48,211 routes in table vpn from ru.txt").</summary>
    public static IEnumerable<string> PlanLines(IReadOnlyList<Change> changes, ParsedPolicy policy, TableNames tables, ProtocolNames protocols,
        bool verbose)
    {
        if (verbose || policy.PrefixLists.Count == 0)
        {
            foreach (var c in changes) yield return c.Display(tables, protocols);
            yield break;
        }
        // By value: the policy holds prefix routes packed, and the planner makes a route for each it adds.
        var listOf = new Dictionary<Route, int>();
        for (var i = 0; i < policy.PrefixLists.Count; i++)
            foreach (var r in policy.PrefixLists[i].Routes) listOf.TryAdd(r, i);
        var counts = new int[policy.PrefixLists.Count];
        foreach (var c in changes)
            if (c is AddRoute a && listOf.TryGetValue(a.Route, out var k)) counts[k]++;
        var shown = new bool[counts.Length];
        foreach (var c in changes)
        {
            if (c is AddRoute a && listOf.TryGetValue(a.Route, out var k))
            {
                if (shown[k]) continue;
                shown[k] = true;
                var list = policy.PrefixLists[k];
                yield return string.Create(CultureInfo.InvariantCulture,
                    $"+ {counts[k]:N0} route{(counts[k] == 1 ? "" : "s")} in table {tables.Format(list.Table)} from {list.File}");
                continue;
            }
            yield return c.Display(tables, protocols);
        }
    }

    /// <summary>Removes the policy's objects; the live tunnels' (the hook's) stay, so that a restart of the unit keeps
    /// every VPN client routed. --all removes the hook's objects too and forgets the live tunnels' records.</summary>
    static int Flush(Context ctx)
    {
        var removed = 0;
        using (ctx.Lock())
        {
            // Flush removes what is owned even when the policy file is broken: the policy is not parsed.
            var owner = ParsedPolicy.Empty(ctx.ConfigPath ?? "configuration", ctx.Protocol, ctx.HookProtocol) with { Routing = FlushRouting(ctx), TableNames = ctx.Names.Tables };
            var snapshot = ctx.ReadSnapshot(Reconciler.QueryFor(owner));
            var live = ctx.Records.ReadAll();
            var plan = Reconciler.Plan(owner, live, snapshot, ctx.Args.All ? ReconcileMode.FlushAll : ReconcileMode.Flush);
            ctx.Applier().Apply(plan.Changes, ctx.Args.DryRun);
            foreach (var note in plan.Notes) ctx.Log.Information("{Note}", note.Text);
            Forget(ctx, plan.Forgotten, "flush --all");
            removed = plan.Changes.Count;
        }
        // watch keeps the kernel true to the policy: what flush removed, it restores at once, as anyone's deletion.
        if (removed > 0 && !ctx.Args.DryRun && WatchCommand.Running(ctx.Options.LockFile))
            ctx.Log.Warning("tunnel-router: warning: a tunnel-router watch runs on this host and restores what flush removed; stop it first (systemctl stop tunnel-router-watch)");
        return App.Ok;
    }

    /// <summary>The routing daemon whose file flush empties: the policy's Routing section alone (flush never
    /// needs the rest of the policy); one that does not parse is left alone, with a warning.</summary>
    static RoutingSpec? FlushRouting(Context ctx)
    {
        try { return RoutingSection.Parse(ctx.Options.Routing, ctx.ConfigPath ?? "configuration", []); }
        catch (InputException e)
        {
            ctx.Log.Warning("{Message}; the routing daemon's file is left as it is", App.OneLine(e.Message));
            return null;
        }
    }
}
