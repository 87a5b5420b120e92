using System.Globalization;
using System.Net;

namespace TunnelRouter.Core;

/// <summary>
/// How an uplink's health is tracked (its <c>Track</c> line): ICMP echo to <see cref="Targets"/> (and to its gateway with
/// the word <c>gateway</c>) from the uplink's own address, every <see cref="Interval"/>; a probe unanswered within
/// <see cref="Timeout"/> is lost. <see cref="Down"/> losses in a row make the uplink down, <see cref="Up"/> answers in a
/// row up again, and traffic fails back to it only after it has been up for <see cref="Hold"/>. A round is answered when
/// any target answers (mwan3's reliability 1).
/// </summary>
public sealed record UplinkTrack(IReadOnlyList<IPAddress> Targets, bool Gateway, TimeSpan Interval, TimeSpan Timeout, int Down, int Up, TimeSpan Hold)
{
    /// <summary>1 s probes, each lost when unanswered after half the interval, and 3 losses: a dead path is noticed 2.5-3.5 s
    /// after it died (docs/uplinks.md computes mwan3's defaults beside it).</summary>
    public static readonly UplinkTrack Defaults = new([], false, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(0.5), 3, 3, TimeSpan.FromSeconds(30));

    public const string Syntax = "TARGET... [interval SECONDS] [timeout SECONDS] [down COUNT] [up COUNT] [hold SECONDS], a TARGET an address or 'gateway', e.g. \"9.9.9.9 2620:fe::9 interval 1 down 3 up 3 hold 30\"";

    /// <summary>The targets of one family: the given addresses, and the uplink's gateway of that family with <c>gateway</c>.</summary>
    public IEnumerable<IPAddress> TargetsOf(System.Net.Sockets.AddressFamily family, IPAddress? gateway)
    {
        foreach (var t in Targets)
            if (t.AddressFamily == family) yield return t;
        if (Gateway && gateway is not null && gateway.AddressFamily == family) yield return gateway;
    }

    /// <summary>Parses a Track line; every mistake names <paramref name="field"/>.</summary>
    public static UplinkTrack Parse(string field, string? line)
    {
        var words = (line ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (words.Length == 0) throw new InputException(field, $"is empty; expected {Syntax}");
        var track = Defaults;
        var targets = new List<IPAddress>();
        var gateway = false;
        var given = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < words.Length; i++)
        {
            var w = words[i];
            if (w is "interval" or "timeout" or "down" or "up" or "hold")
            {
                if (!given.Add(w)) throw new InputException(field, $"'{w}' is given twice");
                if (i + 1 >= words.Length) throw new InputException(field, $"'{w}' needs a value; expected {Syntax}");
                var value = words[++i];
                switch (w)
                {
                    case "interval": track = track with { Interval = Seconds(field, w, value, 0.1, 3600) }; break;
                    case "timeout": track = track with { Timeout = Seconds(field, w, value, 0.05, 60) }; break;
                    case "hold": track = track with { Hold = Seconds(field, w, value, 0, 86400) }; break;
                    case "down": track = track with { Down = Count(field, w, value) }; break;
                    default: track = track with { Up = Count(field, w, value) }; break;
                }
            }
            else if (w == "gateway")
            {
                if (gateway) throw new InputException(field, "'gateway' is given twice");
                gateway = true;
            }
            else if (Net.TryParseAddress(w, out var a))
            {
                if (IPAddress.IsLoopback(a) || a.Equals(IPAddress.Any) || a.Equals(IPAddress.IPv6Any) || a.IsIPv6Multicast
                    || a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && a.GetAddressBytes()[0] >= 224)
                    throw new InputException(field, $"target {a} is not a unicast address beyond this host; probe a host on the far side of the uplink, e.g. 9.9.9.9");
                if (targets.Contains(a)) throw new InputException(field, $"target {a} is given twice");
                targets.Add(a);
            }
            else throw new InputException(field, $"'{Net.Printable(w)}' is neither an address nor one of gateway, interval, timeout, down, up, hold; expected {Syntax}");
        }
        if (targets.Count == 0 && !gateway) throw new InputException(field, $"names no target; expected {Syntax}");
        // A probe is lost half an interval after it went: the third loss of a path that died just after a probe was
        // answered is known 2.5 intervals after the next one, not 3.
        if (!given.Contains("timeout")) track = track with { Timeout = track.Interval / 2 };
        if (track.Timeout > track.Interval)
            throw new InputException(field, $"timeout {track.Timeout.TotalSeconds:0.###} is longer than interval {track.Interval.TotalSeconds:0.###}: a probe must be answered before the next one goes");
        return track with { Targets = targets, Gateway = gateway };
    }

    static TimeSpan Seconds(string field, string word, string value, double min, double max)
    {
        if (!double.TryParse(value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var s) || s < min || s > max)
            throw new InputException(field, $"{word} '{Net.Printable(value)}' is not a number of seconds from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}");
        return TimeSpan.FromSeconds(s);
    }

    static int Count(string field, string word, string value)
    {
        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n is < 1 or > 100)
            throw new InputException(field, $"{word} '{Net.Printable(value)}' is not a count from 1 to 100");
        return n;
    }
}
