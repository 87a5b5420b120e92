using TunnelRouter.Core;

namespace TunnelRouter.Policy;

/// <summary>
/// How often watch may restore, and when it stops fighting. Pure: the caller passes the time (a monotonic clock).
/// Restores are rate-limited as tailscale does (a token bucket: a burst of 10, then 1 per 5 s). An object restored
/// <see cref="FightThreshold"/> times within <see cref="FightWindow"/> is being deleted by another manager: watch
/// backs off from it (says so once, with the likely cause) until <see cref="Forgive"/> (the next full resync or a
/// SIGHUP). Memory is bounded: only objects restored within the window are remembered.
/// </summary>
public sealed class RestoreLimiter(int burst = 10, double refillSeconds = 5, int fightThreshold = 5, double fightWindowSeconds = 60)
{
    public int FightThreshold => fightThreshold;
    public TimeSpan FightWindow => TimeSpan.FromSeconds(fightWindowSeconds);

    double _tokens = burst;
    TimeSpan _last;
    readonly Dictionary<string, List<TimeSpan>> _restored = new(StringComparer.Ordinal);
    readonly HashSet<string> _backedOff = new(StringComparer.Ordinal);

    /// <summary>Takes a token when there is one.</summary>
    public bool TryTake(TimeSpan now)
    {
        Refill(now);
        if (_tokens < 1) return false;
        _tokens -= 1;
        return true;
    }

    /// <summary>How long until a token is there.</summary>
    public TimeSpan Wait(TimeSpan now)
    {
        Refill(now);
        return _tokens >= 1 ? TimeSpan.Zero : TimeSpan.FromSeconds((1 - _tokens) * refillSeconds);
    }

    void Refill(TimeSpan now)
    {
        if (now > _last) _tokens = Math.Min(burst, _tokens + (now - _last).TotalSeconds / refillSeconds);
        _last = now;
    }

    public bool IsBackedOff(string key) => _backedOff.Contains(key);

    public int BackedOffCount => _backedOff.Count;

    /// <summary>Counts a restore of each object; returns the objects that now cross the threshold (backed off from now on).</summary>
    public IReadOnlyList<string> Restored(IEnumerable<string> keys, TimeSpan now)
    {
        var crossed = new List<string>();
        foreach (var stale in _restored.Where(kv => now - kv.Value[^1] > FightWindow).Select(kv => kv.Key).ToList())
            _restored.Remove(stale);
        foreach (var key in keys)
        {
            if (!_restored.TryGetValue(key, out var times)) _restored[key] = times = [];
            times.RemoveAll(t => now - t > FightWindow);
            times.Add(now);
            if (times.Count >= fightThreshold && _backedOff.Add(key))
            {
                crossed.Add(key);
                _restored.Remove(key);
            }
        }
        return crossed;
    }

    /// <summary>Tries again: the full resync and SIGHUP give every backed-off object one more chance.</summary>
    public void Forgive()
    {
        _backedOff.Clear();
        _restored.Clear();
    }

    /// <summary>Objects remembered (for the flat-memory check in bench).</summary>
    public int Remembered => _restored.Count;
}

/// <summary>What watch says about a change it makes: "rule 1000 from 10.10.10.0/24 lookup vpn was deleted by someone else: restored".</summary>
public static class RestoreReason
{
    /// <summary>The object a change is about, as a person names it (no "ip", no protocol): the key backing off is counted by.</summary>
    public static string Subject(Change c, TableNames tables, ProtocolNames protocols) => c switch
    {
        AddRule a => Rule(a.Rule, tables, protocols),
        DeleteRule d => Rule(d.Rule, tables, protocols),
        AddRoute a => Route(a.Route, tables, protocols),
        DeleteRoute d => Route(d.Route, tables, protocols),
        ReplaceRoute r => Route(r.New, tables, protocols),
        ReplaceNftTable t => $"table {t.Table}",
        _ => c.Display(tables, protocols),
    };

    static string Rule(Rule r, TableNames tables, ProtocolNames protocols)
    {
        var args = IpCommand.RuleArgs(r, tables, protocols)
            .Replace($" pref {r.Priority}", "", StringComparison.Ordinal)
            .Replace($" protocol {protocols.Format(r.Protocol)}", "", StringComparison.Ordinal);
        return $"{(r.Family.IsV6() ? "IPv6 " : "")}rule {r.Priority} {args}";
    }

    /// <summary>With the family, as a rule's: "default" is both families' word, and the IPv4 and IPv6 default routes
    /// of a table are two objects (each restored, counted and backed off from on its own).</summary>
    static string Route(Route r, TableNames tables, ProtocolNames protocols) =>
        $"{(r.Family.IsV6() ? "IPv6 " : "")}route " +
        IpCommand.RouteArgs(r, tables, protocols).Replace($" proto {protocols.Format(r.Protocol)}", "", StringComparison.Ordinal);

    /// <param name="appeared">devices that were waited for before this change and exist now.</param>
    /// <param name="wentDown">devices that went down since the last pass: the kernel dropped their routes itself.</param>
    public static string Of(Change c, TableNames tables, ProtocolNames protocols, IReadOnlySet<string> appeared, IReadOnlySet<string>? wentDown = null)
    {
        var subject = Subject(c, tables, protocols);
        return c switch
        {
            AddRoute { Route.Device: { } dev } when appeared.Contains(dev) => $"{dev} appeared: {subject} installed",
            AddRoute { Route.Device: { } dev } when wentDown?.Contains(dev) == true =>
                $"{dev} went down (the kernel drops a device's routes with it): {subject} put back",
            AddRule or AddRoute => $"{subject} was deleted by someone else: restored",
            ReplaceRoute => $"{subject} was changed by someone else: restored",
            ReplaceNftTable { New: null } => $"{subject} is no longer in the policy: removed",
            ReplaceNftTable { Old: null } => $"{subject} was deleted by someone else: restored",
            ReplaceNftTable { Table: NftGuard.QualifiedName } => $"{subject} (the fail-closed guard) was changed by someone else, or what it guards changed: restored",
            ReplaceNftTable => $"{subject} was changed by someone else (or the policy's marks changed): restored",
            DeleteRule or DeleteRoute => $"{subject} is no longer wanted: removed",
            _ => $"{subject}: changed",
        };
    }
}
