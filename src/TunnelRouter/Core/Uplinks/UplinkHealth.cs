using System.Net.Sockets;

namespace TunnelRouter.Core;

/// <summary>One family of one uplink: what health is tracked for (IPv6 can die while IPv4 works).</summary>
public readonly record struct UplinkPath(string Uplink, AddressFamily Family)
{
    public override string ToString() => $"{Uplink} {(Family.IsV6() ? "IPv6" : "IPv4")}";
}

/// <summary>Up: traffic may use it. Holding: up again after being down, but not yet for the hold time: used only when no
/// uplink of the list is up (fail-back waits). Down: never used.</summary>
public enum PathState { Up, Holding, Down }

/// <summary>What the prober and the kernel's events tell about a path.</summary>
public enum HealthEvent { Answered, Lost, CarrierLost, CarrierBack, NeighbourFailed }

/// <summary>A path went down or came up: one log line.</summary>
public sealed record HealthChange(UplinkPath Path, bool Up, string Why, TimeSpan At);

/// <summary>A path as status shows it: its state, since when (the clock's time), and its last probes, oldest first
/// ('+' answered, '-' lost).</summary>
public sealed record PathReport(UplinkPath Path, PathState State, TimeSpan Since, string LastProbes);

/// <summary>
/// Per-uplink health, a pure state machine over reported events and an injected clock (the times passed in): no I/O, so
/// specs drive it with plain data. Every path starts up. Its track's <see cref="UplinkTrack.Down"/> losses in a row, a
/// carrier loss or the gateway's neighbour entry going FAILED make it down at once; <see cref="UplinkTrack.Up"/> answers in
/// a row make it up again (an uplink without Track: its carrier's return), and traffic fails back to it only after
/// <see cref="UplinkTrack.Hold"/> more (<see cref="PathState.Holding"/> until then). A loss or a carrier loss while
/// coming back starts the count again: an uplink that flaps faster than its up count never comes back, and one that
/// flaps slower than the hold never takes the traffic back before the flapping ends.
/// </summary>
public sealed class UplinkHealth
{
    const int Remembered = 10;

    sealed class Path
    {
        public bool Up = true, Recovered, Carrier = true;
        public int Losses, Answers;
        public TimeSpan Since;
        public string Probes = "";
    }

    readonly Dictionary<UplinkPath, Path> _paths = [];
    readonly Func<string, UplinkTrack?> _trackOf;

    /// <param name="trackOf">each uplink's track, or null for one followed by its carrier alone.</param>
    public UplinkHealth(Func<string, UplinkTrack?> trackOf) => _trackOf = trackOf;

    Path Of(UplinkPath p) => _paths.TryGetValue(p, out var s) ? s : _paths[p] = new Path();

    /// <summary>Takes one event in; returns the change it made (null: none).</summary>
    public HealthChange? Report(UplinkPath p, HealthEvent e, TimeSpan now)
    {
        var s = Of(p);
        var track = _trackOf(p.Uplink);
        switch (e)
        {
            case HealthEvent.Answered:
                s.Probes = Remember(s.Probes, '+');
                s.Losses = 0;
                s.Answers++;
                if (!s.Up && s.Carrier && s.Answers >= (track?.Up ?? 1)) return Set(p, s, true, now, $"{s.Answers} probe(s) answered in a row");
                return null;
            case HealthEvent.Lost:
                s.Probes = Remember(s.Probes, '-');
                s.Answers = 0;
                s.Losses++;
                if (s.Up && s.Losses >= (track?.Down ?? 1)) return Set(p, s, false, now, $"{s.Losses} probe(s) lost in a row");
                return null;
            case HealthEvent.CarrierLost:
                s.Carrier = false;
                s.Answers = 0;
                return s.Up ? Set(p, s, false, now, "carrier lost") : null;
            case HealthEvent.CarrierBack:
                s.Carrier = true;
                // Tracked: the probes say when it is up again. Untracked: the carrier is all there is to go by.
                return !s.Up && track is null ? Set(p, s, true, now, "carrier back") : null;
            case HealthEvent.NeighbourFailed:
                s.Answers = 0;
                return s.Up ? Set(p, s, false, now, "the gateway's neighbour entry went FAILED") : null;
            default:
                return null;
        }
    }

    static HealthChange Set(UplinkPath p, Path s, bool up, TimeSpan now, string why)
    {
        s.Up = up;
        s.Since = now;
        s.Recovered = up;
        s.Losses = 0;
        s.Answers = 0;
        return new HealthChange(p, up, why, now);
    }

    static string Remember(string probes, char c) => probes.Length < Remembered ? probes + c : probes[1..] + c;

    public PathState StateOf(UplinkPath p, TimeSpan now)
    {
        if (!_paths.TryGetValue(p, out var s)) return PathState.Up;
        if (!s.Up) return PathState.Down;
        return s.Recovered && now - s.Since < (_trackOf(p.Uplink)?.Hold ?? TimeSpan.Zero) ? PathState.Holding : PathState.Up;
    }

    /// <summary>Every path reported on, with its state now: what a plan is made with.</summary>
    public IReadOnlyDictionary<UplinkPath, PathState> States(TimeSpan now) => _paths.Keys.ToDictionary(p => p, p => StateOf(p, now));

    public IReadOnlyList<PathReport> Reports(TimeSpan now) =>
        [.. _paths.OrderBy(kv => kv.Key.Uplink, StringComparer.Ordinal).ThenBy(kv => kv.Key.Family).Select(kv => new PathReport(kv.Key, StateOf(kv.Key, now), kv.Value.Since, kv.Value.Probes))];

    /// <summary>When the next hold ends (a plan is due then: traffic fails back), or null when nothing holds.</summary>
    public TimeSpan? NextHoldEnd(TimeSpan now)
    {
        TimeSpan? next = null;
        foreach (var (p, s) in _paths)
        {
            if (StateOf(p, now) != PathState.Holding) continue;
            var end = s.Since + (_trackOf(p.Uplink)?.Hold ?? TimeSpan.Zero);
            if (next is null || end < next) next = end;
        }
        return next;
    }

    /// <summary>
    /// The uplink a table's default route of one family follows: the first of <paramref name="via"/> that is up; when none
    /// is, the first holding (back, but not yet for the hold time: better than nothing); when none is, null (the table's
    /// kill switch, if it has one, refuses the traffic). <paramref name="state"/> gives null for an uplink without that
    /// family (or not there now): passed over.
    /// </summary>
    public static string? Choose(IEnumerable<string> via, Func<string, PathState?> state)
    {
        string? holding = null;
        foreach (var name in via)
            switch (state(name))
            {
                case PathState.Up: return name;
                case PathState.Holding: holding ??= name; break;
            }
        return holding;
    }

    /// <summary>The uplinks a balancing table's route spreads over: every one of <paramref name="via"/> that is up; when
    /// none is, every one holding; else none. In the order of <paramref name="via"/>.</summary>
    public static List<string> ChooseAll(IEnumerable<string> via, Func<string, PathState?> state)
    {
        var states = via.Select(n => (Name: n, State: state(n))).ToList();
        var up = states.Where(s => s.State == PathState.Up).Select(s => s.Name).ToList();
        return up.Count > 0 ? up : [.. states.Where(s => s.State == PathState.Holding).Select(s => s.Name)];
    }
}
