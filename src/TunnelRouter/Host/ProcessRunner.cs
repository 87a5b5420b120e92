using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using CliWrap;

namespace TunnelRouter.Host;

/// <summary>The result of a finished process.</summary>
public sealed record ProcessResult(int ExitCode, string StandardOutput, string StandardError);

/// <summary>A tool failed: carries the command line, exit code and what it printed on stderr.</summary>
public sealed class ProcessException(string command, int exitCode, string standardError, string message)
    : KernelException(message)
{
    public string Command { get; } = command;
    public int ExitCode { get; } = exitCode;
    public string StandardError { get; } = standardError;

    /// <summary>"ip -4 route show failed (exit 2): Error: ..." with the errno iproute2's words stand for.</summary>
    public static ProcessException Failed(string tool, IReadOnlyList<string> arguments, ProcessResult result)
    {
        var err = result.StandardError.Trim();
        var command = ProcessRunner.Describe(tool, arguments);
        return new ProcessException(command, result.ExitCode, err, $"{command} failed (exit {result.ExitCode}): {FirstLine(err)}")
            { Errno = TunnelRouter.Errno.FromMessage(err) };
    }

    internal static string FirstLine(string text)
    {
        var nl = text.IndexOf('\n');
        return nl < 0 ? text : text[..nl];
    }
}

/// <summary>
/// Every external tool (ip, nft, modprobe) runs here, through CliWrap: an absolute tool path, an argument
/// list (never a shell), optional standard input, captured output, and stderr kept in the exception.
/// One deadline covers writing stdin and waiting for the exit: a tool that stops reading its input (an
/// <c>nft -f -</c> fed more than a pipe holds) is killed with its children when it passes, instead of
/// hanging while this process holds the host lock.
/// Children get an empty environment plus <c>LC_ALL=C</c>: a hook's environment is OpenVPN's, and
/// variables such as <c>MODPROBE_OPTIONS</c> or <c>LD_PRELOAD</c> must not reach the tools run as root.
/// The OpenVPN hook's netlink path never calls <see cref="Run"/>, so it never loads CliWrap.
/// </summary>
public sealed class ProcessRunner(TimeSpan? timeout = null)
{
    readonly TimeSpan _timeout = timeout ?? TimeSpan.FromSeconds(30);

    /// <param name="environment">variables the child gets on top of <c>LC_ALL=C</c>; nothing else is inherited.</param>
    /// <param name="cancellation">ends the run early (the demo's Ctrl-C): the child is killed and
    /// <see cref="OperationCanceledException"/> thrown.</param>
    public ProcessResult Run(string tool, IReadOnlyList<string> arguments, string? standardInput = null, bool check = true,
        IReadOnlyDictionary<string, string>? environment = null, CancellationToken cancellation = default)
    {
        if (!Path.IsPathRooted(tool)) throw new ArgumentException($"tool path must be absolute: {tool}", nameof(tool));
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        var command = CliWrap.Cli.Wrap(tool)
            .WithArguments(arguments)
            .WithStandardInputPipe(standardInput is null ? PipeSource.Null : PipeSource.FromString(standardInput, Encoding.UTF8))
            .WithStandardOutputPipe(PipeTarget.ToStringBuilder(stdout, Encoding.UTF8))
            .WithStandardErrorPipe(PipeTarget.ToStringBuilder(stderr, Encoding.UTF8))
            .WithValidation(CommandResultValidation.None);

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        deadline.CancelAfter(_timeout);
        int exitCode;
        try
        {
            // CliWrap's environment setting only adds or removes named variables; the start info is where the
            // inherited ones can be dropped all at once.
            exitCode = command.ExecuteAsync(startInfo => OnlyOwnEnvironment(startInfo, environment), null, deadline.Token)
                .GetAwaiter().GetResult().ExitCode;
        }
        catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
        {
            var err = stderr.ToString().Trim();
            var said = err.Length > 0 ? $"; it had said: {ProcessException.FirstLine(err)}" : "";
            throw new ProcessException(Describe(tool, arguments), -1, err,
                $"{Describe(tool, arguments)} did not finish within {_timeout.TotalSeconds:0.#} s and was killed{said}");
        }
        catch (Win32Exception e)
        {
            // The framework's own message is a resource key in this build; errno's words are not.
            var errno = (e.InnerException as Win32Exception ?? e).NativeErrorCode;
            throw new EnvironmentException($"cannot run {tool}: {Marshal.GetPInvokeErrorMessage(errno)}");
        }

        var result = new ProcessResult(exitCode, stdout.ToString(), stderr.ToString());
        if (check && result.ExitCode != 0) throw ProcessException.Failed(tool, arguments, result);
        return result;
    }

    /// <summary>Runs a long-lived tool (<c>nft monitor</c>) until it exits or <paramref name="cancellation"/> ends it,
    /// handing each line of its output to <paramref name="onLine"/> as it comes. No deadline: it is meant to run.</summary>
    public Task Listen(string tool, IReadOnlyList<string> arguments, Action<string> onLine, CancellationToken cancellation)
    {
        if (!Path.IsPathRooted(tool)) throw new ArgumentException($"tool path must be absolute: {tool}", nameof(tool));
        var command = CliWrap.Cli.Wrap(tool)
            .WithArguments(arguments)
            .WithStandardOutputPipe(PipeTarget.ToDelegate(onLine, Encoding.UTF8))
            .WithValidation(CommandResultValidation.None);
        return command.ExecuteAsync(startInfo => OnlyOwnEnvironment(startInfo, null), null, cancellation);
    }

    static void OnlyOwnEnvironment(ProcessStartInfo startInfo, IReadOnlyDictionary<string, string>? environment)
    {
        startInfo.Environment.Clear();
        if (environment is not null)
            foreach (var (key, value) in environment) startInfo.Environment[key] = value;
        // The tools we run print errors we parse; keep their language fixed.
        startInfo.Environment["LC_ALL"] = "C";
    }

    public static string Describe(string tool, IReadOnlyList<string> arguments) =>
        string.Join(' ', [Path.GetFileName(tool), .. arguments]);
}
