using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using TunnelRouter.Tests.Support;

namespace TunnelRouter.Tests.EndToEnd;

/// <summary>
/// One openvpn process in a namespace, with its log file. "ip netns exec" execs openvpn in place, so the
/// process we hold is openvpn itself and signals reach it directly. Tests wait on log lines, never on
/// fixed sleeps.
/// </summary>
public sealed class OpenVpnProcess : IDisposable
{
    readonly Process _process;
    readonly StringBuilder _console = new();

    public string Name { get; }
    public string LogPath { get; }

    public OpenVpnProcess(NetNs ns, string name, string configPath, string logPath)
    {
        Name = name;
        LogPath = logPath;
        var psi = new ProcessStartInfo("/usr/sbin/ip")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "netns", "exec", ns.Name, "/usr/sbin/openvpn", "--config", configPath }) psi.ArgumentList.Add(a);
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, e) => { lock (_console) _console.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { lock (_console) _console.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;

    public string Log => (File.Exists(LogPath) ? ReadShared(LogPath) : "") + Console();

    string Console() { lock (_console) return _console.ToString(); }

    static string ReadShared(string path)
    {
        using var s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        return new StreamReader(s).ReadToEnd();
    }

    public int Count(string text)
    {
        var log = Log;
        var n = 0;
        for (var i = log.IndexOf(text, StringComparison.Ordinal); i >= 0; i = log.IndexOf(text, i + text.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    /// <summary>Waits until <paramref name="text"/> appears <paramref name="times"/> times in the log.</summary>
    public void WaitFor(string text, int times = 1, int timeoutMs = 30_000)
    {
        var clock = Stopwatch.StartNew();
        while (Count(text) < times)
        {
            if (_process.HasExited && Count(text) < times)
                throw new Xunit.Sdk.XunitException($"{Name} exited ({_process.ExitCode}) before logging '{text}' x{times}:\n{Log}");
            if (clock.ElapsedMilliseconds > timeoutMs)
                throw new Xunit.Sdk.XunitException($"{Name}: no '{text}' x{times} within {timeoutMs} ms:\n{Log}");
            Thread.Sleep(25);
        }
    }

    public const string Ready = "Initialization Sequence Completed";

    public void Signal(int signal)
    {
        if (kill(_process.Id, signal) != 0) throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    public const int SIGTERM = 15, SIGUSR1 = 10, SIGKILL = 9;

    public bool WaitForExit(int timeoutMs) => _process.WaitForExit(timeoutMs);

    /// <summary>SIGTERM, as systemd stops it: OpenVPN runs its down hook, then exits.</summary>
    public void Stop(int timeoutMs = 30_000)
    {
        if (_process.HasExited) return;
        Signal(SIGTERM);
        if (!_process.WaitForExit(timeoutMs)) throw new Xunit.Sdk.XunitException($"{Name} did not exit on SIGTERM:\n{Log}");
        _process.WaitForExit();
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            try { Signal(SIGTERM); } catch (InvalidOperationException) { }
            if (!_process.WaitForExit(5_000)) _process.Kill(true);
        }
        _process.Dispose();
    }

    [DllImport("libc", SetLastError = true)]
    static extern int kill(int pid, int sig);
}
