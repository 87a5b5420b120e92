using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;

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
                ctx.Names.ResolveAutoTable(o.FieldOf("Table"), o.Table, o.TableId),
                ctx.HookProtocol,
                o.PoolRules,
                o.PoolRulePriority,
                o.RoutedNetworks ?? o.PoolRules);
            var record = records.Read(tunnel.Device);
            var env = ctx.Environment;
            if (tunnel.Context == "restart" && record is not null && record.Matches(tunnel))
            {
                // A soft restart (persist-tun + up-restart): the device and its routes stay between down and up.
                if (tunnel.Action == HookAction.Down && ctx.Kernel.ReadLinks().Any(l => l.Name == tunnel.Device))
                {
                    ctx.Log.Information("{Device}: down with restart, the device stays (persist-tun): its routes and rules stay for the up that follows", tunnel.Device);
                    return 0;
                }
                env = record.AtRestart(ctx.Environment, out var filled);
                if (filled.Count > 0)
                {
                    ctx.Log.Information("{Device}: up with restart: {Names} not set by OpenVPN; using the values of the tunnel's last up", tunnel.Device, string.Join(", ", filled));
                    tunnel = OpenVpnTunnel.Parse(env, ctx.Args.Positional, commanded);
                }
            }
            // The tunnel's Instances entry, its placeholders filled from OpenVPN's environment: a hostile or missing
            // value stops the run here, before anything is changed.
            // Read once for up and down: the kill switches up adds, the steady rules down leaves, the guard's elements.
            // A down never fails on it: it removes the tunnel's objects whatever the policy says now.
            var closedAtDown = tunnel.Action == HookAction.Up ? null : ClosedTablesAtDown(ctx);
            var closed = tunnel.Action == HookAction.Up ? ClosedTables(ctx) : closedAtDown ?? new HashSet<uint>();
            var instance = tunnel.Action == HookAction.Up ? Instance(ctx, env, tunnel, settings, closed) : null;
            // A down with no record (lost, or never written) removes what up would have installed, instance lines
            // included when down's environment still resolves them.
            var unrecorded = tunnel.Action == HookAction.Down && record is null ? InstanceAtDown(ctx, tunnel, settings, closedAtDown) : null;
            var desired = tunnel.Action == HookAction.Up ? With(HookPolicy.Desired(tunnel, settings, Dco(ctx, tunnel, settings)), instance?.State) : KernelState.Empty;
            // Kill switches first (docs/lifecycle.md): the closed tables this tunnel routes into, and its steady rules.
            var steady = Lifecycle.SteadyAtUp(desired, instance?.Spec, closed, ctx.Protocol);
            // Whole tables, not just this device's routes: a foreign route with the same key must be seen.
            var tables = new HashSet<uint> { settings.Table };
            foreach (var r in desired.Routes) tables.Add(r.Table);
            foreach (var r in steady.Routes) tables.Add(r.Table);
            foreach (var r in record?.Routes ?? []) tables.Add(r.Table);
            foreach (var r in unrecorded?.State.Routes ?? []) tables.Add(r.Table);
            var current = ctx.Kernel.Read(new StateQuery(tables,
                Rules: o.PoolRules || desired.Rules.Count > 0 || steady.Rules.Count > 0 || record is { Rules.Count: > 0 } || tunnel.Action == HookAction.Down));
            StartupTrace.Mark("read");
            // An instance route written without dev reads back with the device the kernel chose.
            desired = Policy.PolicyState.Settle(desired, current);
            // Where the policy fails closed, a table of this tunnel's rules that nothing routes is closed with them (docs/lifecycle.md).
            if (tunnel.Action == HookAction.Up && o.FailClosed.Count > 0) desired = Lifecycle.CloseUnserved(desired, current, closed);
            var servers = Servers(ctx, instance);
            if (instance is not null)
            {
                foreach (var note in instance.Notes) ctx.Log.Information("{Note}", note);
                foreach (var finding in RecursiveRouting.Find(tunnel.Device, LiveInstances.WithSteady(instance.State, instance.Spec, ctx.Protocol), servers, ctx.Names.Tables, ctx.Names.Protocols))
                    ctx.Log.Warning("tunnel-router: warning: {Field}: {Finding}", instance.Spec.Field, finding);
            }
            if (tunnel.Action == HookAction.Down && record is not null && !record.Matches(tunnel))
                ctx.Log.Information("{Device} is another tunnel's now ({Identity}); leaving its routes and rules", tunnel.Device, record.Identity);
            // Apply's objects, added when missing and never taken back: on their own, so that no failure of the tunnel's undoes them.
            if (steady.Routes.Count + steady.Rules.Count > 0) ctx.ApplyWithNames(Planner.Plan(steady, current, Ownership.Nothing));
            var plan = Planner.Plan(desired, current, HookPolicy.Scope(tunnel, settings, desired, record, unrecorded?.State));
            StartupTrace.Mark("planned");
            // The fail-closed guard lets the tunnel's traffic out by its device before its routes go in (docs/lifecycle.md);
            // an up that fails and rolls back takes them out again.
            var admitted = tunnel.Action == HookAction.Up && closed.Count > 0 ? Lifecycle.GuardElements(tunnel.Device, desired, closed) : [];
            Guard(ctx, admitted, add: true);
            try { ctx.ApplyWithNames(plan, writeNames: tunnel.Action == HookAction.Up); }
            catch
            {
                Guard(ctx, admitted, add: false);
                throw;
            }
            StartupTrace.Mark("applied");
            if (tunnel.Action == HookAction.Down && closed.Count > 0 && (record is null || record.Matches(tunnel))
                && (record is not null ? new KernelState(record.Routes, record.Rules) : unrecorded?.State) is { } gone)
                Guard(ctx, Lifecycle.GuardElements(tunnel.Device, gone, closed), add: false);
            if (!ctx.Args.DryRun) Record(ctx, records, env, tunnel, settings, desired, record, instance, servers);
            if (tunnel.Action == HookAction.Up) ctx.KeepAsLastGood();
            ctx.Log.Debug("{Action} {Device}: {Count} change(s)", tunnel.Action, tunnel.Device, plan.Count);
        }
        return 0;
    }

    /// <summary>
    /// The tunnel's device and pools added to (up) or removed from (down) the fail-closed guard's sets, when the guard is
    /// there (apply loads it; without nft there is none). A guard that refuses them is a warning, not a failure: the kill
    /// switches hold either way, and the next apply or watch renders the sets from the records.
    /// </summary>
    static void Guard(Context ctx, IReadOnlyList<(uint Table, string Device, IReadOnlyList<System.Net.IPNetwork> Pools)> elements, bool add)
    {
        if (elements.Count == 0 || ctx.Args.DryRun || Nftables.GuardExists() != true) return;
        if (add)
        {
            if (!ctx.Nft.TryLoad(NftGuard.AddElements(elements), out var error))
                ctx.Log.Warning("tunnel-router: warning: the fail-closed guard did not take {Device}: {Error}; its traffic is dropped until 'tunnel-router apply'",
                    elements[0].Device, App.OneLine(error));
            return;
        }
        // nft refuses a whole transaction for one element that is not there: one at a time, each allowed to be gone already.
        foreach (var script in NftGuard.DeleteElements(elements)) ctx.Nft.TryLoad(script, out _);
    }

    /// <summary>The first Instances entry whose Dev matches the tunnel's device, resolved; null when none does.
    /// The whole section is checked, as apply checks it, so a broken entry fails every up, not only its own.</summary>
    static ResolvedInstance? Instance(Context ctx, IReadOnlyDictionary<string, string> env, OpenVpnTunnel tunnel, HookSettings settings, IReadOnlySet<uint> closed)
    {
        var o = ctx.Options;
        if (o.Instances.Count == 0) return null;
        var source = ctx.ConfigPath ?? "configuration";
        var tables = PolicyTables.Create(ctx.Names, o.Tables, o.Table, o.TableId, source);
        var specs = InstanceConfig.Parse(o.Instances, tables.For, settings.Protocol, source, closed);
        return InstanceConfig.Match(specs, tunnel.Device) is { } spec
            ? InstanceConfig.Resolve(spec, env, tables.For, settings.Protocol, [.. tunnel.Networks.Where(n => !n.Routed).Select(n => n.Network)])
            : null;
    }

    /// <summary>The policy's FailClosed tables; none when the policy has none (the hook reads no more of the policy then).</summary>
    static IReadOnlySet<uint> ClosedTables(Context ctx)
    {
        var o = ctx.Options;
        // Only a Routes line naming unreachable can be a kill switch: the hook parses no other.
        var plain = o.Routes.Where(l => l?.Contains("unreachable", StringComparison.Ordinal) == true).ToList();
        if (o.FailClosed.Count == 0 && plain.Count == 0) return new HashSet<uint>();
        var tables = PolicyTables.Create(ctx.Names, o.Tables, o.Table, o.TableId, ctx.ConfigPath ?? "configuration");
        var closed = PolicyParser.FailClosedTables(o.FailClosed, tables);
        foreach (var line in plain)
        {
            try
            {
                if (PolicyLine.ParseRoute("Routes", line, tables.For("Routes"), ctx.Protocol) is var r && Lifecycle.IsKillSwitch(r, ctx.Protocol)) closed.Add(r.Table);
            }
            catch (InputException) { } // apply names it
        }
        return closed;
    }

    /// <summary>Null when the policy's FailClosed does not resolve now: down then keeps to the tunnel's own routes.</summary>
    static IReadOnlySet<uint>? ClosedTablesAtDown(Context ctx)
    {
        try { return ClosedTables(ctx); }
        catch (InputException) { return null; }
    }

    static ResolvedInstance? InstanceAtDown(Context ctx, OpenVpnTunnel tunnel, HookSettings settings, IReadOnlySet<uint>? closed)
    {
        if (closed is null)
        {
            ctx.Log.Information("{Device} has no record and the policy's FailClosed does not resolve now; removing the tunnel's own routes only", tunnel.Device);
            return null;
        }
        // Down leaves steady rules alone whatever the policy says now: with every FailClosed table given, none of the
        // instance's rules into one is taken for the tunnel's.
        try { return Instance(ctx, ctx.Environment, tunnel, settings, closed); }
        catch (InputException e)
        {
            ctx.Log.Information("{Device} has no record and its Instances lines do not resolve now ({Message}); removing the tunnel's own routes only",
                tunnel.Device, e.Message);
            return null;
        }
    }

    /// <summary>The tunnel's own server, unless its OpenVPN configuration (the "config" variable: OpenVPN's own file,
    /// root's) has allow-recursive-routing: then traffic for the server may go into the tunnel, and nobody need warn.</summary>
    static IReadOnlyList<System.Net.IPAddress> Servers(Context ctx, ResolvedInstance? instance)
    {
        if (instance is null) return [];
        string? text = null;
        if (ctx.Environment.TryGetValue("config", out var path) && path.Length > 0)
        {
            // Read as any file root reads (under the host lock: a FIFO or /dev/zero there must not hold every hook up):
            // a regular file of root's, at most 1 MiB, else read as lacking the option. A symlinked config is resolved
            // first (distributions link them), its target then opened as the file itself.
            try { text = SafeFile.Read(Interop.Stat.RealPath(path) ?? path, 1 << 20, FileOwner.RootOrSelf) is { } bytes ? System.Text.Encoding.UTF8.GetString(bytes) : null; }
            catch (FileRefusedException e) { ctx.Log.Debug("OpenVPN's config {Path} {Reason}; read as without allow-recursive-routing", Net.Printable(path), e.Message); }
        }
        return RecursiveRouting.Allowed(text) ? [] : RecursiveRouting.Servers(ctx.Environment);
    }

    /// <summary>Whether the tunnel's device is OpenVPN's data channel offload: ovpn-dco (OpenVPN 2.6's out-of-tree
    /// ovpn-dco-v2) or ovpn (the kernel's own module, Linux 6.16). Read only when a routed network depends on it.</summary>
    static bool Dco(Context ctx, OpenVpnTunnel tunnel, HookSettings settings) =>
        settings.RoutedNetworks && tunnel.Networks.Any(n => n.Routed)
        && ctx.Kernel.ReadLinks().FirstOrDefault(l => l.Name == tunnel.Device)?.Kind is "ovpn-dco" or "ovpn";

    /// <summary>The tunnel's own networks and its instance's lines; a line for a route the hook already makes is made once.</summary>
    static KernelState With(KernelState hook, KernelState? instance)
    {
        if (instance is null) return hook;
        var keys = hook.Routes.Select(r => r.Key).ToHashSet();
        return new KernelState(
            [.. hook.Routes, .. instance.Routes.Where(r => keys.Add(r.Key))],
            [.. hook.Rules, .. instance.Rules.Where(r => !hook.Rules.Contains(r))]);
    }

    /// <summary>Up records what it installed, down forgets its own record. The kernel changes are made by then:
    /// a record that cannot be written is a warning (down then removes what up would install), not a failure.</summary>
    static void Record(Context ctx, TunnelRecords records, IReadOnlyDictionary<string, string> env, OpenVpnTunnel tunnel, HookSettings settings, KernelState desired, TunnelRecord? previous,
        ResolvedInstance? instance, IReadOnlyList<System.Net.IPAddress> servers)
    {
        try
        {
            if (tunnel.Action == HookAction.Up)
                records.Write(TunnelRecord.Of(tunnel, desired, settings, env) with
                {
                    Ifindex = ctx.Kernel.ReadLinks().FirstOrDefault(l => l.Name == tunnel.Device)?.Index ?? 0,
                    Lines = instance is null ? [] : [.. instance.RouteLines.Select(l => "route " + l), .. instance.RuleLines.Select(l => "rule " + l)],
                    Servers = servers,
                });
            else if (previous is null || previous.Matches(tunnel)) records.Delete(tunnel.Device);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or TunnelRouterException)
        {
            ctx.Log.Warning("tunnel-router: warning: cannot record {Device}'s state: {Message}", tunnel.Device, e.Message);
        }
    }
}
