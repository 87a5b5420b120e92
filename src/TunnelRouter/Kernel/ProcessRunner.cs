using System.Diagnostics;
using System.Text;

namespace TunnelRouter.Kernel;

/// <summary>The result of a finished process.</summary>
public sealed record ProcessResult(int ExitCode, string StandardOutput, string StandardError);

/// <summary>A tool failed: carries the command line, exit code and what it printed on stderr.</summary>
public sealed class ProcessException(string command, int exitCode, string standardError, string message)
    : KernelException(message)
{
    public string Command { get; } = command;
    public int ExitCode { get; } = exitCode;
    public string StandardError { get; } = standardError;
}

/// <summary>
/// The small process runner CliWrap would have been: an absolute tool path, an argument array (never a
/// shell), optional standard input, captured output, a timeout that kills the process tree, and stderr
/// kept in the exception. OpenVPN gives hooks no PATH, so callers pass absolute paths.
/// </summary>
public sealed class ProcessRunner(TimeSpan? timeout = null)
{
    readonly TimeSpan _timeout = timeout ?? TimeSpan.FromSeconds(30);

    public ProcessResult Run(string tool, IReadOnlyList<string> arguments, string? standardInput = null, bool check = true)
    {
        if (!Path.IsPathRooted(tool)) throw new ArgumentException($"tool path must be absolute: {tool}", nameof(tool));
        var psi = new ProcessStartInfo(tool)
        {
            RedirectStandardInput = standardInput is not null,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        // The tools we run print errors we parse; keep their language fixed.
        psi.Environment["LC_ALL"] = "C";

        using var process = new Process { StartInfo = psi };
        try { process.Start(); }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new EnvironmentException($"cannot run {tool}: {e.Message}");
        }
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (standardInput is not null)
        {
            try
            {
                process.StandardInput.Write(standardInput);
                process.StandardInput.Close();
            }
            catch (IOException) { /* the tool exited early; its stderr says why */ }
        }
        if (!process.WaitForExit(_timeout))
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            throw new ProcessException(Describe(tool, arguments), -1, "", $"{Describe(tool, arguments)} timed out after {_timeout.TotalSeconds:0} s");
        }
        process.WaitForExit();
        var result = new ProcessResult(process.ExitCode, stdout.Result, stderr.Result);
        if (check && result.ExitCode != 0)
        {
            var err = result.StandardError.Trim();
            throw new ProcessException(Describe(tool, arguments), result.ExitCode, err,
                $"{Describe(tool, arguments)} failed (exit {result.ExitCode}): {FirstLine(err)}")
            { Errno = Errno.FromMessage(err) };
        }
        return result;
    }

    public static string Describe(string tool, IReadOnlyList<string> arguments) =>
        string.Join(' ', [Path.GetFileName(tool), .. arguments]);

    static string FirstLine(string text)
    {
        var nl = text.IndexOf('\n');
        return nl < 0 ? text : text[..nl];
    }
}

/// <summary>Absolute paths of the external tools, found once. OpenVPN gives hooks no PATH.</summary>
public static class Tools
{
    public static string Find(string name, params string[] candidates)
    {
        foreach (var c in candidates)
            if (File.Exists(c)) return c;
        throw new EnvironmentException($"{name} not found (looked in {string.Join(", ", candidates)}); install it (Debian: apt-get install {PackageOf(name)})");
    }

    static string PackageOf(string name) => name switch { "ip" => "iproute2", "nft" => "nftables", _ => name };

    public static string Ip => _ip ??= Find("ip", "/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip");
    public static string Nft => _nft ??= Find("nft", "/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft");

    static string? _ip, _nft;
}
