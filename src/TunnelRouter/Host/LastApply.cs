using System.Globalization;
using TunnelRouter.Kernel;

namespace TunnelRouter.Host;

/// <summary>
/// What the last <c>apply</c> did, for the metrics (<c>status --format prometheus</c> and watch's listener): when it ended,
/// whether it succeeded, how long it took and how many changes it made. One line in <c>last-apply</c> in the run directory
/// (the lock's: /run/tunnel-router), root's, 0644, replaced atomically: <c>1 UNIXTIME OK SECONDS CHANGES</c> (the first
/// word is the format's version). /run is emptied at boot: no apply since boot is no series, not a zero.
/// </summary>
public sealed record LastApply(DateTimeOffset Time, bool Ok, double Seconds, int Changes)
{
    public const string FileName = "last-apply";

    public static string PathFor(string lockFile) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(lockFile))!, FileName);

    public string Line() => string.Create(CultureInfo.InvariantCulture,
        $"1 {Time.ToUnixTimeMilliseconds() / 1000.0:0.###} {(Ok ? 1 : 0)} {Seconds:0.######} {Changes}\n");

    public static LastApply? Parse(string? text)
    {
        var w = text?.Trim().Split(' ') ?? [];
        if (w.Length != 5 || w[0] != "1") return null;
        var ci = CultureInfo.InvariantCulture;
        return double.TryParse(w[1], NumberStyles.Float, ci, out var t) && w[2] is "0" or "1"
               && double.TryParse(w[3], NumberStyles.Float, ci, out var s) && int.TryParse(w[4], NumberStyles.None, ci, out var n)
            ? new LastApply(DateTimeOffset.FromUnixTimeMilliseconds((long)(t * 1000)), w[2] == "1", s, n)
            : null;
    }

    /// <summary>The last apply's record; null when there is none (or it is not one of ours).</summary>
    public static LastApply? Read(string lockFile)
    {
        try { return Parse(OwnedFile.Read(PathFor(lockFile), 4096)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or TunnelRouterException) { return null; }
    }

    /// <summary>Writes the record; one that cannot be written is a warning of the caller's, never a failure of the apply.</summary>
    public void Write(string lockFile) => OwnedFile.Replace(PathFor(lockFile), Line(), durable: false);
}

/// <summary>One apply being timed for <see cref="LastApply"/>: started before it parses, told the plan's size, ended
/// with its result. A dry run records nothing.</summary>
public sealed class LastApplyClock(string lockFile, Serilog.ILogger log)
{
    readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();

    public int Changes { get; set; }

    /// <summary>Set once the apply holds the host lock: a run refused before it (no CAP_NET_ADMIN, no lock directory) was
    /// no apply, and leaves the last one's record as it was.</summary>
    public bool Started { get; set; }

    public void Done(bool ok)
    {
        if (!Started) return;
        try { new LastApply(DateTimeOffset.UtcNow, ok, _clock.Elapsed.TotalSeconds, Changes).Write(lockFile); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or TunnelRouterException)
        {
            log.Warning("tunnel-router: warning: cannot record the apply for the metrics: {Message}", e.Message);
        }
    }
}
