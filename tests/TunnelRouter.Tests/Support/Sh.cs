using System.Diagnostics;

namespace TunnelRouter.Tests.Support;

/// <summary>Runs a program with an argument array (no shell) and returns what it did.</summary>
public sealed record RunResult(int ExitCode, string Stdout, string Stderr)
{
    public RunResult ShouldSucceed()
    {
        if (ExitCode != 0) throw new Xunit.Sdk.XunitException($"exit {ExitCode}\nstdout: {Stdout}\nstderr: {Stderr}");
        return this;
    }
}

public static class Sh
{
    /// <param name="env">when given, the child's whole environment (OpenVPN gives hooks no PATH either).</param>
    public static RunResult Run(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null,
        string? stdin = null, int timeoutMs = 60_000)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (env is not null)
        {
            psi.Environment.Clear();
            foreach (var (k, v) in env) psi.Environment[k] = v;
        }
        using var p = Process.Start(psi)!;
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEndAsync();
        if (stdin is not null) { p.StandardInput.Write(stdin); p.StandardInput.Close(); }
        if (!p.WaitForExit(timeoutMs))
        {
            p.Kill(true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in {timeoutMs} ms");
        }
        p.WaitForExit();
        return new RunResult(p.ExitCode, so.Result, se.Result);
    }

    public static string Ip(params string[] args) => Run("/usr/sbin/ip", args).ShouldSucceed().Stdout;
}
