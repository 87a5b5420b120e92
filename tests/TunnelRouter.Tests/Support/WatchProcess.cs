using System.Diagnostics;
using System.Text;

namespace TunnelRouter.Tests.Support;

/// <summary><c>tunnel-router watch</c> running in a namespace, its output collected; stopped with SIGTERM on dispose.</summary>
public sealed class WatchProcess : IDisposable
{
    readonly Process _process;
    readonly StringBuilder _output = new();
    readonly StringBuilder _stdout = new();

    public WatchProcess(NetNs ns, IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo("/usr/sbin/ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["netns", "exec", ns.Name, Prerequisites.Binary, "watch", .. args]) psi.ArgumentList.Add(a);
        psi.Environment.Clear();
        foreach (var (k, v) in TunnelRouterProcess.Environment(ns, env)) psi.Environment[k] = v;
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, e) =>
        {
            lock (_output)
            {
                _output.AppendLine(e.Data);
                if (e.Data is not null) _stdout.AppendLine(e.Data);
            }
        };
        _process.ErrorDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        WaitFor("watch: watching");
    }

    public int Pid => _process.Id;

    public string Output { get { lock (_output) return _output.ToString(); } }

    /// <summary>stdout alone (watch --json's events), without stderr's log.</summary>
    public string Stdout { get { lock (_output) return _stdout.ToString(); } }

    public int Count(string text)
    {
        var output = Output;
        var n = 0;
        for (var i = output.IndexOf(text, StringComparison.Ordinal); i >= 0; i = output.IndexOf(text, i + text.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    /// <summary>Waits (not a timed assertion: a generous limit for a busy machine) until the output holds the text <paramref name="times"/> times.</summary>
    public void WaitFor(string text, int times = 1, int timeoutMs = 30_000) =>
        Eventually.True(() => Count(text) >= times, () => $"watch did not say '{text}' {times} time(s); it said:\n{Output}", timeoutMs);

    public void Signal(int signal) => Sh.Run("/bin/kill", [$"-{signal}", _process.Id.ToString()]);

    /// <summary>SIGTERM; returns the exit code.</summary>
    public int Stop()
    {
        if (!_process.HasExited) Signal(15);
        if (!_process.WaitForExit(15_000)) _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
        return _process.ExitCode;
    }

    public void Dispose()
    {
        try { Stop(); }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }
}

public static class Eventually
{
    /// <summary>Polls until the condition holds; fails with <paramref name="message"/> after the limit.</summary>
    public static void True(Func<bool> condition, Func<string> message, int timeoutMs = 30_000)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.ElapsedMilliseconds > timeoutMs) throw new Xunit.Sdk.XunitException(message());
            Thread.Sleep(20);
        }
    }
}
