using Serilog.Events;
using TunnelRouter.Interop;

namespace TunnelRouter.Cli;

/// <summary>
/// Whether stderr is the journal: systemd sets <c>JOURNAL_STREAM=DEV:INODE</c> for a unit whose output goes there, and a
/// process that still writes to that very stream (not redirected, not a child's pipe) may prefix each line with its syslog
/// priority, <c>&lt;3&gt;</c> to <c>&lt;7&gt;</c> (sd-daemon(3)), so that <c>journalctl -p warning</c> finds warnings.
/// </summary>
public static class JournalStream
{
    public const string Variable = "JOURNAL_STREAM";

    /// <summary>True when <paramref name="env"/>'s JOURNAL_STREAM names the file descriptor 2 is open on.</summary>
    public static bool IsStderr(IReadOnlyDictionary<string, string> env)
    {
        if (!env.TryGetValue(Variable, out var value)) return false;
        var colon = value.IndexOf(':');
        if (colon <= 0 || !ulong.TryParse(value.AsSpan(0, colon), out var dev) || !ulong.TryParse(value.AsSpan(colon + 1), out var inode)) return false;
        if (Stat.OfDescriptor(2) is not { } st) return false;
        return st.Inode == inode && MakeDev(st.Device >> 32, st.Device & 0xffff_ffff) == dev;
    }

    /// <summary>glibc's makedev: the dev_t systemd prints, from statx's major and minor.</summary>
    static ulong MakeDev(ulong major, ulong minor) =>
        ((major & 0xffff_f000) << 32) | ((major & 0xfff) << 8) | ((minor & 0xffff_ff00) << 12) | (minor & 0xff);

    /// <summary>sd-daemon's prefix for a level: error 3, warning 4, information 6, debug 7.</summary>
    public static string Prefix(LogEventLevel level) => level switch
    {
        LogEventLevel.Fatal or LogEventLevel.Error => "<3>",
        LogEventLevel.Warning => "<4>",
        LogEventLevel.Information => "<6>",
        _ => "<7>",
    };
}
