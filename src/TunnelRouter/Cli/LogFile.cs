using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Serilog.Events;
using TunnelRouter.Config;
using TunnelRouter.Interop;

namespace TunnelRouter.Cli;

/// <summary>
/// The LogFile, opened by us rather than by a logging library: root appends to it on every VPN start, so it
/// must never follow a link to another file, never be a FIFO or device, never be someone else's, and never be
/// stopped by someone else's advisory lock (Serilog's file sink takes one, and any user who can read the log
/// could hold it and silence it). Opened O_APPEND|O_CREAT|O_NOFOLLOW|O_CLOEXEC, 0640 whatever the umask; its
/// directory is checked as the policy's. A log that cannot be opened is one warning on stderr: logging goes
/// on there (OpenVPN keeps it), the run does not fail for it.
/// </summary>
sealed class LogFile : Serilog.Core.ILogEventSink, IDisposable
{
    const uint Mode = 0b110_100_000;

    readonly SafeFileHandle _handle;
    readonly string _path;
    readonly TextWriter _stderr;
    bool _failed;

    LogFile(SafeFileHandle handle, string path, TextWriter stderr) => (_handle, _path, _stderr) = (handle, path, stderr);

    /// <summary>Whether a command keeps the log: only those that change something. plan, status, doctor, explain and
    /// export to stdout write nothing at all, no log created or re-moded: a sudo rule that lets an operator run
    /// "tunnel-router status *" must not become a way to create or chmod a file of root's.</summary>
    public static bool Wanted(string? command, IReadOnlyList<string> extra) => command switch
    {
        "plan" or "status" or "doctor" or "explain" => false,
        "export" => extra.Contains("--out"),
        _ => true,
    };

    public static LogFile? Open(string path, TextWriter stderr)
    {
        try
        {
            StrictModes.CheckDirectoryOf(path, "the log file's directory");
            var fd = Libc.open(path, Libc.O_WRONLY | Libc.O_APPEND | Libc.O_CREAT | Libc.O_NOFOLLOW | Libc.O_CLOEXEC | Libc.O_NONBLOCK | Libc.O_NOCTTY, Mode);
            if (fd < 0) throw new InputException("LogFile", $"cannot open {path}: {Marshal.GetLastPInvokeErrorMessage()}");
            var handle = new SafeFileHandle(fd, ownsHandle: true);
            try
            {
                if (Stat.OfDescriptor(fd) is not { } st) throw new InputException("LogFile", $"cannot stat {path}");
                if (!st.IsRegular) throw new InputException("LogFile", $"{path} is not a regular file");
                if (st.Uid != Libc.geteuid()) throw new InputException("LogFile", $"{path} is owned by uid {st.Uid}, not root");
                // Created under umask 0 by an older version, or chmod'ed: nobody else writes root's log.
                if ((st.Permissions & ~Mode) != 0) Libc.fchmod(fd, st.Permissions & Mode);
                // O_NONBLOCK only guarded the open (a FIFO at the name must not block it); writes are ordinary.
                Libc.fcntl(fd, Libc.F_SETFL, Libc.O_APPEND);
                return new LogFile(handle, path, stderr);
            }
            catch
            {
                handle.Dispose();
                throw;
            }
        }
        catch (Exception e) when (e is TunnelRouterException or IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"tunnel-router: warning: {App.OneLine(e.Message)}; logging to stderr only");
            return null;
        }
    }

    public void Emit(LogEvent logEvent)
    {
        var line = $"{logEvent.Timestamp:yyyy-MM-dd HH:mm:ss.fff} [{Level(logEvent.Level)}] {TextWriterSink.Render(logEvent)}\n";
        if (_failed) return;
        try { RandomAccess.Write(_handle, System.Text.Encoding.UTF8.GetBytes(line), fileOffset: 0); }
        catch (IOException e)
        {
            // A file that opens but takes no writes (a full disk, /proc/version): said once, then stderr only.
            _failed = true;
            _stderr.WriteLine($"tunnel-router: warning: log file {_path}: {App.OneLine(FrameworkMessages.Of(e))}; logging to stderr only");
        }
    }

    static string Level(LogEventLevel level) => level switch
    {
        LogEventLevel.Verbose => "VRB", LogEventLevel.Debug => "DBG", LogEventLevel.Information => "INF",
        LogEventLevel.Warning => "WRN", LogEventLevel.Error => "ERR", _ => "FTL",
    };

    public void Dispose() => _handle.Dispose();
}
