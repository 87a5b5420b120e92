using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Serilog;
using TunnelRouter.Core;
using TunnelRouter.Interop;
using TunnelRouter.Kernel.Netlink;

namespace TunnelRouter.Kernel;

/// <summary>
/// watch's uplink tracking: one thread, one netlink socket for carriers and neighbours (<see cref="UplinkEvents"/>) and one
/// raw ICMP socket per tracked uplink and family (<see cref="IcmpProbe"/>), feeding the pure <see cref="UplinkHealth"/>.
/// No process per probe. Watch's loop asks <see cref="TakeChanged"/> and re-plans with <see cref="States"/> in its
/// snapshot; one log line per state change, none per probe.
/// </summary>
public sealed class UplinkTracker : IDisposable
{
    /// <summary>One path to probe: from <paramref name="Source"/> on <paramref name="Device"/> to its targets.</summary>
    public sealed record Target(UplinkPath Path, string Device, IPAddress Source, IPAddress? Gateway, IReadOnlyList<IPAddress> Targets, UplinkTrack? Track);

    sealed class Probe(Target target, IcmpProbe? socket)
    {
        public readonly Target Target = target;
        public readonly IcmpProbe? Socket = socket;
        public ushort Sequence;
        public TimeSpan NextSend, Deadline;
        public bool Waiting;
    }

    readonly object _gate = new();
    readonly ILogger _log;
    readonly Stopwatch _clock = Stopwatch.StartNew();
    readonly UplinkHealth _health;
    readonly Thread _thread;
    readonly string? _statusFile;
    Dictionary<string, UplinkTrack?> _tracks = new(StringComparer.Ordinal);
    IReadOnlyList<Target>? _pending;
    readonly Dictionary<UplinkPath, Probe> _probes = [];
    TimeSpan? _holdEnd;
    /// <summary>When the status file was last written (long before the start: the first change writes it).</summary>
    TimeSpan _written = TimeSpan.FromDays(-1);
    volatile bool _stop, _changed, _dirty;
    ushort _nextId = (ushort)(Environment.ProcessId * 97);

    /// <param name="statusFile">where the paths' states are written for <c>status</c> (null: nowhere).</param>
    public UplinkTracker(ILogger log, string? statusFile)
    {
        _log = log;
        _statusFile = statusFile;
        _health = new UplinkHealth(name => _tracks.TryGetValue(name, out var t) ? t : null);
        _thread = new Thread(Run) { IsBackground = true, Name = "uplinks" };
        _thread.Start();
    }

    public TimeSpan Now => _clock.Elapsed;

    /// <summary>The paths to follow now (every resolved uplink's families); sockets are opened and closed to match on the
    /// tracker's thread.</summary>
    public void Configure(IReadOnlyList<Target> targets)
    {
        lock (_gate)
        {
            _tracks = targets.GroupBy(t => t.Path.Uplink).ToDictionary(g => g.Key, g => g.First().Track, StringComparer.Ordinal);
            _pending = targets;
        }
    }

    /// <summary>Whether health changed (or a hold ended) since the last call: a plan is due.</summary>
    public bool TakeChanged()
    {
        if (!_changed) return false;
        _changed = false;
        return true;
    }

    public IReadOnlyDictionary<UplinkPath, PathState> States()
    {
        lock (_gate) return _health.States(Now);
    }

    public IReadOnlyList<PathReport> Reports()
    {
        lock (_gate) return _health.Reports(Now);
    }

    unsafe void Run()
    {
        UplinkEvents? events = null;
        try { events = UplinkEvents.Open(); }
        catch (Exception e) when (e is TunnelRouterException)
        {
            _log.Warning("tunnel-router: warning: uplink tracking cannot listen to carriers and neighbours ({Message}); probes alone decide", e.Message);
        }
        var signals = new List<UplinkSignal>();
        var replies = new List<ushort>();
        var fds = new List<(int Fd, Probe? Probe)>();
        var polls = new pollfd[8];
        try
        {
            while (!_stop)
            {
                lock (_gate)
                {
                    if (_pending is { } p) Apply(p);
                    _pending = null;
                }
                var now = Now;
                var wake = now + TimeSpan.FromMilliseconds(250);
                fds.Clear();
                if (events is not null) fds.Add((events.Fd, null));
                lock (_gate)
                {
                    foreach (var probe in _probes.Values)
                    {
                        if (probe.Socket is null) continue;
                        fds.Add((probe.Socket.Fd, probe));
                        var next = probe.Waiting && probe.Deadline < probe.NextSend ? probe.Deadline : probe.NextSend;
                        if (next < wake) wake = next;
                    }
                    if (_holdEnd is { } h && h < wake) wake = h;
                }
                if (polls.Length < fds.Count) polls = new pollfd[fds.Count * 2];
                for (var i = 0; i < fds.Count; i++) polls[i] = new pollfd { fd = fds[i].Fd, events = Libc.POLLIN };
                var timeout = (int)Math.Ceiling(Math.Max(0, (wake - now).TotalMilliseconds));
                fixed (pollfd* pp = polls) Libc.poll(pp, (nuint)fds.Count, timeout);
                now = Now;
                lock (_gate)
                {
                    for (var i = 0; i < fds.Count; i++)
                    {
                        if ((polls[i].revents & Libc.POLLIN) == 0) continue;
                        if (fds[i].Probe is not { } probe)
                        {
                            signals.Clear();
                            events!.Read(signals);
                            foreach (var s in signals) Signal(s, now);
                            continue;
                        }
                        replies.Clear();
                        probe.Socket!.Receive(replies);
                        if (probe.Waiting && replies.Contains(probe.Sequence))
                        {
                            probe.Waiting = false;
                            Report(probe.Target.Path, HealthEvent.Answered, now);
                        }
                    }
                    foreach (var probe in _probes.Values)
                    {
                        if (probe.Socket is null || probe.Target.Track is not { } track) continue;
                        if (probe.Waiting && now >= probe.Deadline)
                        {
                            probe.Waiting = false;
                            Report(probe.Target.Path, HealthEvent.Lost, now);
                        }
                        if (now < probe.NextSend) continue;
                        probe.Sequence++;
                        foreach (var t in probe.Target.Targets) probe.Socket.Send(t, probe.Sequence);
                        probe.Waiting = true;
                        probe.Deadline = now + track.Timeout;
                        probe.NextSend += track.Interval;
                        if (probe.NextSend <= now) probe.NextSend = now + track.Interval; // late (a stop of the process): no burst
                    }
                    if (_holdEnd is { } end && now >= end)
                    {
                        _changed = true;
                        _dirty = true;
                        // The paths whose hold ended now (a state change: one line each).
                        foreach (var r in _health.Reports(now))
                            if (r.State == PathState.Up && Hold(r.Path) > TimeSpan.Zero && r.Since + Hold(r.Path) <= now && r.Since + Hold(r.Path) >= end)
                                _log.Information("watch: uplink {Path} has been up for its hold of {Hold} s: traffic fails back to it", r.Path, Hold(r.Path).TotalSeconds);
                        _holdEnd = _health.NextHoldEnd(now);
                    }
                }
                WriteStatus(now);
            }
        }
        catch (Exception e)
        {
            _log.Error("tunnel-router: error: uplink tracking stopped ({Message}); the uplinks keep their last state", e.Message.ReplaceLineEndings(" "));
        }
        finally
        {
            events?.Dispose();
            lock (_gate)
                foreach (var p in _probes.Values) p.Socket?.Dispose();
        }
    }

    void Report(UplinkPath path, HealthEvent e, TimeSpan now)
    {
        _dirty = true;
        if (_health.Report(path, e, now) is not { } change) return;
        _changed = true;
        var hold = Hold(path);
        if (change.Up && hold > TimeSpan.Zero)
            _log.Information("watch: uplink {Path} is up ({Why}); traffic fails back to it after {Hold} s up", path, change.Why, hold.TotalSeconds);
        else _log.Information("watch: uplink {Path} is {State} ({Why})", path, change.Up ? "up" : "down", change.Why);
        _holdEnd = _health.NextHoldEnd(now);
    }

    TimeSpan Hold(UplinkPath p) => _tracks.GetValueOrDefault(p.Uplink)?.Hold ?? TimeSpan.Zero;

    void Signal(UplinkSignal s, TimeSpan now)
    {
        foreach (var probe in _probes.Values)
        {
            var t = probe.Target;
            // A device gone (no index any more) is the plan's: its uplink no longer resolves, and is passed over.
            if (Libc.if_nametoindex(t.Device) is var index && (index == 0 || index != s.Index)) continue;
            if (s.Carrier is { } carrier) Report(t.Path, carrier ? HealthEvent.CarrierBack : HealthEvent.CarrierLost, now);
            else if (s.Failed is { } a && a.Equals(t.Gateway)) Report(t.Path, HealthEvent.NeighbourFailed, now);
        }
    }

    /// <summary>Opens what is new, closes what went, keeps what stayed (its count and sequence go on).</summary>
    void Apply(IReadOnlyList<Target> targets)
    {
        var wanted = targets.ToDictionary(t => t.Path);
        foreach (var (path, probe) in _probes.ToList())
            if (!wanted.TryGetValue(path, out var t) || t != probe.Target)
            {
                probe.Socket?.Dispose();
                _probes.Remove(path);
            }
        foreach (var t in targets)
        {
            if (_probes.ContainsKey(t.Path)) continue;
            IcmpProbe? socket = null;
            if (t.Track is not null && t.Targets.Count > 0)
                try { socket = IcmpProbe.Open(t.Device, t.Source, _nextId++); }
                catch (EnvironmentException e)
                {
                    // Tried again at the next re-plan (the address may still be tentative).
                    _log.Warning("tunnel-router: warning: {Message}; uplink {Path} is followed by its carrier until it can be probed", e.Message, t.Path);
                    continue;
                }
            _probes[t.Path] = new Probe(t, socket) { NextSend = Now };
        }
    }

    /// <summary>The paths' states for <c>status</c>, at most once a second: written beside the lock, replaced whole.</summary>
    void WriteStatus(TimeSpan now)
    {
        if (_statusFile is null || !_dirty || now - _written < TimeSpan.FromSeconds(1)) return;
        _dirty = false;
        _written = now;
        IReadOnlyList<PathReport> reports;
        Dictionary<UplinkPath, Target> targets;
        lock (_gate)
        {
            reports = _health.Reports(now);
            targets = _probes.ToDictionary(p => p.Key, p => p.Value.Target);
        }
        var started = DateTimeOffset.UtcNow - now;
        var lines = reports.Select(r => string.Join('\t', r.Path.Uplink, r.Path.Family.IsV6() ? "6" : "4", r.State.ToString().ToLowerInvariant(),
            r.Since == TimeSpan.Zero ? "-" : (started + r.Since).ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture),
            r.LastProbes.Length == 0 ? "-" : r.LastProbes, targets.TryGetValue(r.Path, out var t) ? t.Device : "-"));
        try
        {
            var tmp = _statusFile + ".tmp";
            File.WriteAllLines(tmp, lines);
            File.Move(tmp, _statusFile, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.Debug("watch: the uplinks' status file {File} cannot be written: {Message}", _statusFile, e.Message);
        }
    }

    public void Dispose()
    {
        _stop = true;
        _thread.Join(TimeSpan.FromSeconds(2));
        if (_statusFile is not null)
            try { File.Delete(_statusFile); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
