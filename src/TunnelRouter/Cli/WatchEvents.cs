using System.Globalization;
using System.Text;
using System.Text.Json;
using TunnelRouter.Core;
using TunnelRouter.Policy;

namespace TunnelRouter.Cli;

/// <summary>
/// What watch did, told twice: with <c>watch --json</c> as one JSON object a line on stdout (docs/watch.schema.json; the
/// human log stays on stderr), and always as the counters its metrics listener serves (<see cref="Render"/>). Every
/// method is called by the watch loop; the listener's thread only renders, under the same lock.
/// </summary>
public sealed class WatchEvents(TextWriter? json, Action<string>? warn = null)
{
    /// <summary>Set when stdout went away (a closed pipe): the events stop, watch goes on.</summary>
    volatile bool _closed;
    readonly Lock _lock = new();
    long _events, _backedOffCount;
    readonly SortedDictionary<string, long> _restores = new(StringComparer.Ordinal);
    readonly SortedDictionary<string, long> _suppressed = new(StringComparer.Ordinal) { ["backed-off"] = 0, ["rate-limited"] = 0 };
    readonly SortedDictionary<string, long> _passes = new(StringComparer.Ordinal) { ["ok"] = 0, ["error"] = 0 };
    double _lastPassSeconds;
    bool? _lastPassOk;
    DateTimeOffset _lastPassTime;
    int? _drift;
    readonly Dictionary<UplinkPath, PathState> _uplinks = new();

    /// <summary>Why a change was made: for a restore, what happened to the object (deleted, changed, appeared, link-down,
    /// unwanted); otherwise what made watch plan (start, reload, uplinks).</summary>
    public static string Cause(Change c, string trigger, IReadOnlySet<string> appeared, IReadOnlySet<string>? wentDown = null) =>
        trigger is not ("event" or "resync") ? trigger : c switch
        {
            AddRoute { Route.Device: { } dev } when appeared.Contains(dev) => "appeared",
            AddRoute { Route.Device: { } dev } when wentDown?.Contains(dev) == true => "link-down",
            AddRule or AddRoute => "deleted",
            ReplaceNftTable { New: null } => "unwanted",
            ReplaceNftTable { Old: null } => "deleted",
            ReplaceRoute or ReplaceNftTable => "changed",
            DeleteRule or DeleteRoute => "unwanted",
            _ => "changed",
        };

    /// <summary>Whether events are written (watch --json): what only they need is worked out only then.</summary>
    public bool Json => json is not null;

    /// <summary>Netlink and nft messages read.</summary>
    public void Seen(int count)
    {
        if (count == 0) return;
        lock (_lock) _events += count;
    }

    public void Started(string source, int resyncSeconds) =>
        Write("started", w => { w.WriteString("source", source); w.WriteNumber("resyncSeconds", resyncSeconds); });

    public void Stopping(long events, long passes, long restores) =>
        Write("stopping", w => { w.WriteNumber("events", events); w.WriteNumber("passes", passes); w.WriteNumber("restores", restores); });

    public void Reloaded(bool ok, string source, string? error) =>
        Write("reloaded", w => { w.WriteBoolean("ok", ok); w.WriteString("source", source); w.StringOrNull("error", error); });

    /// <summary>A change watch made: a restore (trigger event or resync) or what a start, reload or uplink change planned.</summary>
    public void Changed(string trigger, string cause, PlannedChange? c, string subject, string message, bool closesFailClosed)
    {
        if (trigger is "event" or "resync")
            lock (_lock) _restores[cause] = _restores.GetValueOrDefault(cause) + 1;
        if (c is null) return;
        Write("change", w =>
        {
            w.WriteString("trigger", trigger);
            w.WriteString("cause", cause);
            w.WriteString("operation", c.Operation);
            w.WriteString("object", c.Object);
            w.WriteString("owner", c.Owner);
            w.WriteString("subject", subject);
            w.WriteString("command", c.Command);
            w.StringOrNull("file", c.File);
            w.StringOrNull("section", c.Section);
            if (c.Line is { } line) w.WriteNumber("line", line);
            else w.WriteNull("line");
            w.WriteBoolean("closesFailClosed", closesFailClosed);
            w.WriteString("message", message);
        });
    }

    /// <summary>Restores held back: <paramref name="backedOff"/> objects watch no longer fights for; <paramref name="rateLimited"/>
    /// waiting for the rate limit, tried again in <paramref name="retry"/>.</summary>
    public void Suppressed(int backedOff, int rateLimited, TimeSpan retry)
    {
        if (backedOff == 0 && rateLimited == 0) return;
        lock (_lock)
        {
            _suppressed["backed-off"] += backedOff;
            _suppressed["rate-limited"] += rateLimited;
        }
        Write("suppressed", w =>
        {
            w.WriteNumber("backedOff", backedOff);
            w.WriteNumber("rateLimited", rateLimited);
            if (rateLimited > 0) w.WriteNumber("retrySeconds", Math.Round(retry.TotalSeconds, 3));
            else w.WriteNull("retrySeconds");
        });
    }

    /// <summary>An object restored too often: watch backs off from it until the next resync or SIGHUP.</summary>
    public void BackedOff(string subject, int restores, int windowSeconds, string likelyCause, int resyncSeconds)
    {
        lock (_lock) _backedOffCount++;
        Write("backed-off", w =>
        {
            w.WriteString("subject", subject);
            w.WriteNumber("restores", restores);
            w.WriteNumber("windowSeconds", windowSeconds);
            w.WriteString("likelyCause", likelyCause);
            w.WriteNumber("resyncSeconds", resyncSeconds);
        });
    }

    /// <summary>The uplinks' health as the tracker has it now: one event for each path whose state changed.</summary>
    public void Uplinks(IReadOnlyDictionary<UplinkPath, PathState> now)
    {
        var changed = new List<(UplinkPath Path, PathState? Was, PathState State)>();
        lock (_lock)
        {
            foreach (var (path, state) in now)
                if (!_uplinks.TryGetValue(path, out var was) || was != state)
                {
                    changed.Add((path, _uplinks.TryGetValue(path, out var w) ? w : null, state));
                    _uplinks[path] = state;
                }
            foreach (var gone in _uplinks.Keys.Where(p => !now.ContainsKey(p)).ToList()) _uplinks.Remove(gone);
        }
        foreach (var (path, was, state) in changed)
            Write("uplink", w =>
            {
                w.WriteString("uplink", path.Uplink);
                w.WriteString("family", path.Family.IsV6() ? "inet6" : "inet");
                w.WriteString("state", Name(state));
                w.StringOrNull("previous", was is { } p ? Name(p) : null);
            });
    }

    static string Name(PathState s) => s.ToString().ToLowerInvariant();

    public void Waiting(string device, string message) =>
        Write("waiting", w => { w.WriteString("device", device); w.WriteString("message", message); });

    /// <summary>One re-plan and its apply: what triggered it, whether it succeeded, how long it took, how many changes went in;
    /// <paramref name="drift"/>: how many it planned and left unmade, null when it failed before it had a plan.</summary>
    public void Pass(string trigger, bool ok, TimeSpan took, int changes, string? error, int? drift = null)
    {
        lock (_lock)
        {
            if (drift is not null || ok) _drift = drift;
            _passes[ok ? "ok" : "error"]++;
            _lastPassOk = ok;
            _lastPassSeconds = took.TotalSeconds;
            _lastPassTime = DateTimeOffset.UtcNow;
        }
        Write("pass", w =>
        {
            w.WriteString("trigger", trigger);
            w.WriteBoolean("ok", ok);
            w.WriteNumber("seconds", Math.Round(took.TotalSeconds, 6));
            w.WriteNumber("changes", changes);
            w.StringOrNull("error", error);
        });
    }

    void Write(string name, Action<Utf8JsonWriter> body)
    {
        if (json is null || _closed) return;
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteString("time", DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
            w.WriteString("event", name);
            body(w);
            w.WriteEndObject();
        }
        var line = Encoding.UTF8.GetString(stream.ToArray());
        lock (json)
        {
            try
            {
                json.WriteLine(line);
                json.Flush();
            }
            catch (IOException e)
            {
                // A reader that went away must not take the watch with it: the kernel is still kept true.
                _closed = true;
                warn?.Invoke($"tunnel-router: warning: watch --json: stdout is closed ({e.Message}); no more events are written, watch goes on");
            }
        }
    }

    /// <summary>The series only watch knows, in the text exposition format: counters since it started, the last pass.</summary>
    public void Render(MetricsText o)
    {
        lock (_lock)
        {
            o.Family("tunnel_router_watch_events_total", "counter", "Netlink messages (links, addresses, routes, rules) watch has read.");
            o.Sample("tunnel_router_watch_events_total", [], _events);
            o.Family("tunnel_router_watch_restores_total", "counter", "Objects watch restored, by cause (deleted, changed, appeared, link-down, unwanted: removed).");
            foreach (var cause in new[] { "deleted", "changed", "appeared", "link-down", "unwanted" })
                o.Sample("tunnel_router_watch_restores_total", [("cause", cause)], _restores.GetValueOrDefault(cause));
            o.Family("tunnel_router_watch_suppressed_restores_total", "counter", "Restores held back: backed-off (an object someone keeps deleting) or rate-limited (tried again later).");
            foreach (var (reason, n) in _suppressed) o.Sample("tunnel_router_watch_suppressed_restores_total", [("reason", reason)], n);
            o.Family("tunnel_router_watch_backoffs_total", "counter", "Times watch stopped fighting another manager over an object (until the next resync or SIGHUP).");
            o.Sample("tunnel_router_watch_backoffs_total", [], _backedOffCount);
            o.Family("tunnel_router_watch_passes_total", "counter", "Re-plans from one snapshot, by result.");
            foreach (var (result, n) in _passes) o.Sample("tunnel_router_watch_passes_total", [("result", result)], n);
            if (_lastPassOk is not { } ok) return;
            o.Family("tunnel_router_watch_last_pass_success", "gauge", "1 when the last re-plan and its apply succeeded.");
            o.Sample("tunnel_router_watch_last_pass_success", [], ok ? 1 : 0);
            o.Family("tunnel_router_watch_last_pass_duration_seconds", "gauge", "How long the last re-plan and its apply took.");
            o.Sample("tunnel_router_watch_last_pass_duration_seconds", [], _lastPassSeconds);
            o.Family("tunnel_router_watch_last_pass_timestamp_seconds", "gauge", "When the last re-plan ended (Unix time).");
            o.Sample("tunnel_router_watch_last_pass_timestamp_seconds", [], _lastPassTime.ToUnixTimeMilliseconds() / 1000.0);
            if (_drift is not { } drift) return;
            o.Family("tunnel_router_watch_drift_changes", "gauge", "Changes the last re-plan found and did not make (backed off from, or deferred by the rate limit): how far the kernel is from the policy and the live tunnels now.");
            o.Sample("tunnel_router_watch_drift_changes", [], drift);
        }
    }
}

/// <summary>watch's options for what it tells: <c>--json</c> (events on stdout), <c>--metrics LISTEN</c> and
/// <c>--metrics-remote</c> (the listener, <see cref="Host.MetricsListener"/>).</summary>
internal static class WatchOutputs
{
    /// <summary>The listener's endpoint, or null when --metrics is not given (the default: no listener).</summary>
    public static Host.MetricsEndpoint? Endpoint(Context ctx)
    {
        var extra = ctx.Args.Extra.ToList();
        var i = extra.IndexOf("--metrics");
        var remote = extra.Contains("--metrics-remote");
        if (i < 0)
            return remote ? throw new InputException("--metrics-remote", "goes with --metrics ADDRESS:PORT") : null;
        if (i + 1 >= extra.Count) throw new InputException("--metrics", "needs ADDRESS:PORT (127.0.0.1:9477) or unix:PATH");
        return Host.MetricsEndpoint.Parse(extra[i + 1], remote);
    }

    /// <summary>The listener serving what <c>status --format prometheus</c> shows plus watch's own series; each scrape reads
    /// the kernel once, on a socket of its own.</summary>
    public static Host.MetricsListener Listen(Context ctx, Host.MetricsEndpoint endpoint, WatchEvents told, Func<ParsedPolicy?> policy) =>
        new(endpoint, () =>
        {
            var kernel = ctx.KernelFactory();
            var now = policy();
            try { return StatusMetrics.Scrape(ctx, kernel, (IEnumerable<uint>?)now?.FailClosedTables ?? [], told, now?.Routing); }
            finally { (kernel as IDisposable)?.Dispose(); }
        }, warning => ctx.Log.Warning("{Warning}", warning));

    /// <summary>The changes of one pass, counted (restores by cause) and, with --json, told one by one.</summary>
    public static void Applied(this WatchEvents told, string trigger, IReadOnlyList<Change> changes, IReadOnlySet<string> appeared,
        IReadOnlySet<string> wentDown, IReadOnlySet<Change> closing, Func<PlanReasons> reasons, TableNames tables, ProtocolNames protocols)
    {
        if (changes.Count == 0) return;
        var why = told.Json ? reasons() : null;
        foreach (var c in changes)
        {
            var restoring = trigger is "event" or "resync";
            told.Changed(trigger, WatchEvents.Cause(c, trigger, appeared, wentDown), why?.Of(c), RestoreReason.Subject(c, tables, protocols),
                restoring ? RestoreReason.Of(c, tables, protocols, appeared, wentDown) : c.Display(tables, protocols), closing.Contains(c));
        }
    }
}
