using System.Diagnostics;
using System.Runtime.InteropServices;
using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using TunnelRouter.Kernel.Netlink;
using TunnelRouter.Policy;

namespace TunnelRouter.Cli;

/// <summary>
/// <c>tunnel-router watch</c>: keeps the kernel true to the policy and the live tunnels. It listens to rtnetlink
/// (links, addresses, IPv4/IPv6 routes and rules) and to <c>nft monitor</c> for its own table; on an event that
/// touches owned state or a device something waits for, it re-plans from one snapshot and applies the difference
/// after a debounce, under the same host lock as the hook and apply. Restores are rate-limited and an object that
/// someone keeps deleting is backed off from with one line naming the likely cause — except what closes a fail-closed
/// table (a kill switch, a rule into its table): restored at once, without the debounce, the limit or backing off. A full resync runs every
/// WatchResyncSeconds; SIGHUP re-reads the policy (a broken one keeps the last good). One watch per host.
/// Nothing of this is loaded by the hook: only the command switch names it.
/// </summary>
public static class WatchCommand
{
    /// <summary>Events within this time are one change (tailscale waits 250 ms; a flush of both families is one restore).</summary>
    public static readonly TimeSpan Debounce = TimeSpan.FromMilliseconds(200);

    public static int Run(Context ctx)
    {
        if (ctx.Args.DryRun) throw new InputException("--dry-run", "watch changes the kernel; 'tunnel-router plan' shows what it would change");
        var metrics = WatchOutputs.Endpoint(ctx);
        Capabilities.RequireNetAdmin();
        var path = LockPath(ctx.Options.LockFile);
        using var one = HostLock.TryAcquire(path)
            ?? throw new EnvironmentException($"another tunnel-router watch runs in this network namespace (it holds {path}); one is enough");
        var watcher = new Watcher(ctx, new WatchEvents(ctx.Args.Json ? ctx.Out : null, warning => ctx.Log.Warning("{Warning}", warning)));
        using var listener = metrics is null ? null : WatchOutputs.Listen(ctx, metrics, watcher.Told, () => watcher.Policy);
        return watcher.Run();
    }

    /// <summary>The lock one watch per network namespace holds, next to the host lock: each namespace has its own
    /// kernel state to keep.</summary>
    public static string LockPath(string lockFile) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(lockFile))!, $"watch.{TunnelRecords.CurrentNamespace()}.lock");

    /// <summary>Whether a watch runs on this host now (it holds its lock).</summary>
    public static bool Running(string lockFile)
    {
        var path = LockPath(lockFile);
        if (!File.Exists(path)) return false;
        using var probe = HostLock.TryAcquire(path);
        return probe is null;
    }

    sealed class Watcher(Context ctx, WatchEvents told)
    {
        /// <summary>What watch did, as --json events and the metrics' counters.</summary>
        public WatchEvents Told => told;
        /// <summary>The policy now (null before it is read), for the metrics.</summary>
        public ParsedPolicy? Policy => _policy;
        int _passChanges;
        int? _passDrift;
        string? _passError;
        ParsedPolicy _policy = null!;
        TunnelRouterOptions _options = ctx.Options;
        readonly RestoreLimiter _limiter = new();
        HashSet<string> _waiting = new(StringComparer.Ordinal);
        /// <summary>Each link's index at the last re-plan: a device with another index now was deleted and made again.</summary>
        Dictionary<string, int> _indexes = new(StringComparer.Ordinal);
        /// <summary>Links reported down since the last re-plan (by index), and those down at it (by name): the kernel
        /// dropped their routes, nobody deleted them.</summary>
        readonly HashSet<int> _wentDown = [];
        HashSet<string> _down = new(StringComparer.Ordinal);
        volatile bool _reload, _stop, _nftChanged;
        readonly TimeSpan _resync = TimeSpan.FromSeconds(Math.Max(1, ctx.Options.WatchResyncSeconds));
        readonly Stopwatch _clock = Stopwatch.StartNew();
        long _events, _cycles, _restores;
        /// <summary>Uplink health (docs/uplinks.md), while the policy tracks or fails over uplinks.</summary>
        UplinkTracker? _uplinks;

        public int Run()
        {
            using (ctx.Lock()) _policy = StartPolicy();
            using var events = NetlinkEvents.Open([ctx.Protocol, ctx.HookProtocol]);
            using var hup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c => { c.Cancel = true; _reload = true; });
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; _stop = true; });
            using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; _stop = true; });
            using var cancel = new CancellationTokenSource();
            var monitor = NftMonitor(cancel.Token);

            Cycle("start");
            var notify = SystemdNotify.From(ctx.Environment);
            notify.Send($"READY=1\nSTATUS=watching {_policy.Source}");
            told.Started(_policy.Source, (int)_resync.TotalSeconds);
            ctx.Log.Information("watch: watching links, addresses, routes and rules (IPv4 and IPv6){Nft}; full resync every {Resync} s",
                monitor is null ? "" : " and nftables table " + NftMarks.QualifiedName, (int)_resync.TotalSeconds);

            var nextResync = _clock.Elapsed + _resync;
            TimeSpan? due = null;
            var cause = "event";
            while (!_stop)
            {
                var now = _clock.Elapsed;
                var until = (due ?? nextResync) - now;
                events.Closed = _policy.FailClosedTables;
                // Tracked uplinks: their health is looked at every 50 ms (a carrier loss fails over well within 0.5 s).
                var batch = events.Read((int)Math.Clamp(until.TotalMilliseconds, 0, _uplinks is null ? 500 : 50));
                now = _clock.Elapsed;
                if (_uplinks?.TakeChanged() == true)
                {
                    told.Uplinks(_uplinks.States());
                    due = now;
                    cause = "uplinks";
                }
                _events += batch.Count;
                if (batch.Down is { } down) _wentDown.UnionWith(down);
                told.Seen(batch.Count);
                if (batch.Lost)
                {
                    ctx.Log.Debug("watch: the event socket overflowed; reading everything again");
                    due ??= now + Debounce;
                }
                else if (batch.Urgent) due = now;
                else if (batch.Touched) due ??= now + Debounce;
                if (_nftChanged)
                {
                    _nftChanged = false;
                    due ??= now + Debounce;
                }
                if (_reload)
                {
                    _reload = false;
                    notify.Send("RELOADING=1");
                    var reloaded = Reload();
                    notify.Send($"READY=1\nSTATUS=watching {_policy.Source}");
                    // A policy that could not be re-read changes nothing: what happens next is an event's to restore.
                    if (reloaded)
                    {
                        _limiter.Forgive();
                        due = now;
                        cause = "reload";
                    }
                }
                if (now >= nextResync)
                {
                    _limiter.Forgive();
                    nextResync = now + _resync;
                    due = now;
                    cause = "resync";
                }
                if (due is { } d && now >= d)
                {
                    var wait = Cycle(cause);
                    cause = "event";
                    due = wait > TimeSpan.Zero ? _clock.Elapsed + wait : null;
                }
            }
            cancel.Cancel();
            _uplinks?.Dispose();
            try { monitor?.Wait(TimeSpan.FromSeconds(2)); }
            catch (AggregateException) { }
            notify.Send("STOPPING=1");
            told.Stopping(_events, _cycles, _restores);
            ctx.Log.Information("watch: stopping after {Events} event(s), {Cycles} re-plan(s), {Restores} restore(s); the kernel keeps its state",
                _events, _cycles, _restores);
            return App.Ok;
        }

        /// <summary>nft monitor, when nft is installed: a line naming our table means it changed.</summary>
        Task? NftMonitor(CancellationToken cancellation)
        {
            if (!Nftables.IsInstalled()) return null;
            var task = new ProcessRunner().Listen(Tools.Nft, ["monitor"], line =>
            {
                if (line.Contains(" " + NftMarks.Name, StringComparison.Ordinal)) _nftChanged = true;
            }, cancellation);
            return task.ContinueWith(t =>
            {
                if (t.IsFaulted && !cancellation.IsCancellationRequested)
                    ctx.Log.Warning("tunnel-router: warning: nft monitor ended ({Message}); the nftables table is checked at each resync",
                        t.Exception?.InnerException?.Message);
            }, TaskScheduler.Default);
        }

        /// <summary>
        /// The policy watch starts on. One that does not load or parse is replaced by the last good policy, loudly: a watch
        /// that cannot start crash-loops into systemd's start limit and stays dead after the policy is mended, while the
        /// kernel drifts. Without a last good policy the error stands.
        /// </summary>
        ParsedPolicy StartPolicy()
        {
            try
            {
                var policy = Commands.ParsePolicy(ctx);
                ctx.KeepAsLastGood();
                return policy;
            }
            catch (TunnelRouterException e) when (e is InputException or InputErrors && ctx.ConfigText is not null
                                                  && LastGoodPolicy.ForLock(_options.LockFile) is { Exists: true } copy)
            {
                ctx.Log.Error("tunnel-router: error: the policy does not parse ({Message}); running on the last good policy, {Copy}, until it is fixed",
                    App.OneLine(e.Message), copy.Path);
                var (options, path) = ConfigLoader.Load(ctx.Environment, ctx.Args.Overrides, copy.Path, fragments: false);
                _options = options;
                return PolicyParser.Parse(options, ctx.Names, path);
            }
        }

        /// <summary>SIGHUP: the policy file again. A broken one keeps the last good policy, and says why (false).</summary>
        bool Reload()
        {
            try
            {
                using (ctx.Lock())
                {
                    var (path, required) = ConfigLoader.Locate(ctx.Args.ConfigPath, ctx.Environment);
                    string? text = null;
                    var (options, configPath) = ConfigLoader.Load(ctx.Environment, ctx.Args.Overrides, path, required, PolicyParser.ErrorsOf, t => text = t);
                    _policy = PolicyParser.Parse(options, ctx.Names, configPath);
                    _options = options;
                    if (text is not null) ctx.KeepAsLastGood(text);
                }
                ctx.Log.Information("watch: policy {Source} re-read", _policy.Source);
                told.Reloaded(true, _policy.Source, null);
                return true;
            }
            catch (Exception e) when (e is TunnelRouterException or IOException or UnauthorizedAccessException)
            {
                ctx.Log.Error("tunnel-router: error: the policy cannot be re-read, keeping the last good one: {Message}", App.OneLine(e.Message));
                told.Reloaded(false, _policy.Source, App.OneLine(e.Message));
                return false;
            }
        }

        /// <summary>One re-plan from one snapshot, and its difference applied. Returns how long to wait before trying
        /// again when the rate limit holds the restore back (zero otherwise). A failure is logged and tried again at
        /// the next event or resync: watch keeps running.</summary>
        TimeSpan Cycle(string cause)
        {
            var started = _clock.Elapsed;
            (_passChanges, _passError, _passDrift) = (0, null, null);
            var wait = CycleOnce(cause);
            told.Pass(cause, _passError is null, _clock.Elapsed - started, _passChanges, _passError, _passDrift);
            return wait;
        }

        TimeSpan CycleOnce(string cause)
        {
            _cycles++;
            try
            {
                using (ctx.Lock())
                {
                    var live = ctx.Records.ReadAll();
                    var snapshot = WatchUplinks.WithHealth(ref _uplinks, _policy, ctx.ReadSnapshot(Reconciler.QueryFor(_policy)), ctx.Log, _options.LockFile);
                    var plan = Commands.PlanPolicy(ctx, _policy, live, snapshot, stated: false, loadModules: true);
                    var tables = ctx.Names.Tables;
                    var protocols = ctx.Names.Protocols;
                    // What closes a fail-closed table again is never backed off from nor rate-limited (docs/lifecycle.md).
                    var closed = Closed(snapshot);
                    var closing = plan.Changes.Where(c => Lifecycle.Closes(c, closed, _policy.Protocol)).ToHashSet();
                    var kept = plan.Changes.Where(c => closing.Contains(c) || !_limiter.IsBackedOff(RestoreReason.Subject(c, tables, protocols))).ToList();
                    var backedOff = plan.Changes.Count - kept.Count;
                    var appeared = _waiting.Where(d => !plan.Waiting.Any(w => w.Device == d)).ToHashSet(StringComparer.Ordinal);
                    // OpenVPN killed and started again before this re-plan: its device is a new one (another index) and
                    // took its routes with it; it appeared, nobody deleted them.
                    foreach (var link in snapshot.Links)
                        if (_indexes.TryGetValue(link.Name, out var index) && index != link.Index) appeared.Add(link.Name);
                    var wentDown = snapshot.Links.Where(l => _wentDown.Contains(l.Index) || _down.Contains(l.Name)).Select(l => l.Name).ToHashSet(StringComparer.Ordinal);
                    ctx.Log.Debug("watch: {Cause}: {Changes} change(s), {Held} held back, {Waiting}", cause, kept.Count, plan.Changes.Count - kept.Count,
                        plan.Waiting.Count == 0 ? "nothing waits" : string.Join("; ", plan.Waiting));
                    // What this pass leaves unmade (backed off from; less what the rate limit lets in below).
                    _passDrift = plan.Changes.Count - kept.Count;
                    if (kept.Count == 0 && plan.Forgotten.Count == 0)
                    {
                        told.Suppressed(backedOff, 0, TimeSpan.Zero);
                        Remember(plan, snapshot, cause);
                        if (plan.Refused is { } still) throw still;
                        return TimeSpan.Zero;
                    }
                    var now = _clock.Elapsed;
                    var restoring = cause is "event" or "resync";
                    var wait = TimeSpan.Zero;
                    if (restoring && kept.Any(c => !closing.Contains(c)) && !_limiter.TryTake(now))
                    {
                        wait = _limiter.Wait(now);
                        ctx.Log.Debug("watch: rate limit: restoring in {Seconds:0.0} s", wait.TotalSeconds);
                        told.Suppressed(backedOff, kept.Count(c => !closing.Contains(c)), wait);
                        backedOff = 0;
                        _passDrift = plan.Changes.Count - (closing.Count == 0 ? 0 : kept.Count(closing.Contains));
                        if (closing.Count == 0) return wait;
                        // The kill switches and the rules into them now, the rest when the limit lets it.
                        kept = [.. kept.Where(closing.Contains)];
                        plan = plan with { Forgotten = [] };
                    }
                    if (restoring)
                        foreach (var c in kept) ctx.Log.Information("{Reason}", RestoreReason.Of(c, tables, protocols, appeared, wentDown));
                    else if (kept.Count > 0)
                        ctx.Log.Information("watch: {Cause}: {Count} change(s)", cause, kept.Count);
                    Commands.ApplyPlan(ctx, plan with { Changes = kept, FailClosed = [.. plan.FailClosed.Where(kept.Contains)], Guard = plan.Guard is { } g && kept.Contains(g) ? g : null }, sayWaiting: false,
                        settleBound: TimeSpan.FromSeconds(5));
                    if (restoring) _restores++;
                    told.Suppressed(backedOff, 0, TimeSpan.Zero);
                    _passChanges = kept.Count;
                    told.Applied(cause, kept, appeared, wentDown, closing, () => new PlanReasons(_policy, _options.Origins(), live, tables, protocols), tables, protocols);
                    Remember(plan, snapshot, cause);
                    // The routes the kernel would refuse stayed out; the rest is in. Said as an error, tried again at the next event.
                    if (plan.Refused is { } refused) throw refused;
                    if (restoring)
                        foreach (var subject in _limiter.Restored(kept.Where(c => c is AddRule or AddRoute or ReplaceRoute or ReplaceNftTable && !closing.Contains(c))
                                     .Where(c => !(c is AddRoute { Route.Device: { } dev } && (appeared.Contains(dev) || wentDown.Contains(dev))))
                                     .Select(c => RestoreReason.Subject(c, tables, protocols)), now))
                        {
                            var likely = LikelyCause();
                            ctx.Log.Warning(
                                "tunnel-router: warning: {Subject} keeps being deleted by someone else ({Count} restores within {Window} s); likely {Cause}; backing off: it is not restored again until the next full resync ({Resync} s) or SIGHUP",
                                subject, _limiter.FightThreshold, (int)_limiter.FightWindow.TotalSeconds, likely, (int)_resync.TotalSeconds);
                            told.BackedOff(subject, _limiter.FightThreshold, (int)_limiter.FightWindow.TotalSeconds, likely, (int)_resync.TotalSeconds);
                        }
                    return wait;
                }
            }
            catch (Exception e) when (e is TunnelRouterException or IOException or UnauthorizedAccessException)
            {
                ctx.Log.Error("tunnel-router: error: {Message}; watch tries again at the next event or resync", App.OneLine(e.Message));
                _passError = App.OneLine(e.Message);
            }
            return TimeSpan.Zero;
        }

        /// <summary>The closed tables: the policy's FailClosed, and any holding an owned kill switch now.</summary>
        HashSet<uint> Closed(KernelSnapshot snapshot)
        {
            var closed = Lifecycle.ClosedTables(snapshot.State.Routes, _policy.Protocol);
            closed.UnionWith(_policy.FailClosedTables);
            return closed;
        }

        void Remember(PolicyPlan plan, KernelSnapshot snapshot, string cause)
        {
            _indexes = snapshot.Links.ToDictionary(l => l.Name, l => l.Index, StringComparer.Ordinal);
            _down = snapshot.Links.Where(l => !l.Up).Select(l => l.Name).ToHashSet(StringComparer.Ordinal);
            _wentDown.Clear();
            var now = plan.Waiting.Select(w => w.Device).ToHashSet(StringComparer.Ordinal);
            if (cause == "start" || !now.SetEquals(_waiting))
                foreach (var w in plan.Waiting.Where(w => cause == "start" || !_waiting.Contains(w.Device)))
                {
                    ctx.Log.Information("{Waiting}", w.ToString());
                    told.Waiting(w.Device, w.ToString());
                }
            _waiting = now;
        }

        /// <summary>Who deletes objects that are not theirs: networkd (ManageForeign*), NetworkManager, or a script.</summary>
        static string LikelyCause()
        {
            var running = DoctorCommand.RunningCommands();
            if (running.Contains("systemd-network"))
                return "systemd-networkd (set ManageForeignRoutingPolicyRules=no and ManageForeignRoutes=no in /etc/systemd/networkd.conf.d/)";
            if (running.Contains("NetworkManager"))
                return "NetworkManager (keep the tunnel devices unmanaged)";
            return "another manager or a script (systemd-networkd's ManageForeign* settings, NetworkManager, a cron job)";
        }
    }
}
