using TunnelRouter.Host;
using TunnelRouter.Kernel;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>External tools run through one runner: absolute path, argument list, one deadline for the input
/// and the exit, a cleared environment, stderr kept in the exception.</summary>
public class ProcessRunnerSpecs
{
    const string Sh = "/bin/sh";

    [Fact]
    public void I_can_run_a_tool_with_input_and_get_its_output()
    {
        var result = new ProcessRunner().Run("/bin/cat", [], "table inet tunnel_router\n");

        Assert.Equal((0, "table inet tunnel_router\n", ""), (result.ExitCode, result.StandardOutput, result.StandardError));
    }

    [Fact]
    public void Arguments_reach_the_tool_as_they_are_without_a_shell()
    {
        string[] args = ["a b", "it's", "\"q\"", "$HOME", "back\\slash", "*", ""];

        var result = new ProcessRunner().Run("/usr/bin/printf", ["[%s]", .. args]);

        Assert.Equal(string.Concat(args.Select(a => $"[{a}]")), result.StandardOutput);
    }

    [Fact]
    public void A_tool_that_never_reads_its_input_is_killed_at_the_deadline_and_named()
    {
        // More than a pipe holds (64 KiB): writing would block for ever if the deadline did not cover it.
        var input = new string('x', 1 << 20);

        var e = Assert.Throws<ProcessException>(() =>
            new ProcessRunner(TimeSpan.FromSeconds(1)).Run(Sh, ["-c", "echo started >&2; exec sleep 600"], input));

        Assert.Equal("sh -c echo started >&2; exec sleep 600 did not finish within 1 s and was killed; it had said: started", e.Message);
        Assert.Equal(-1, e.ExitCode);
    }

    [Fact]
    public void The_deadline_kills_the_tool_s_children_too()
    {
        var pidFile = Path.Combine(Directory.CreateTempSubdirectory("tunnel-router-runner-").FullName, "pid");

        Assert.Throws<ProcessException>(() => new ProcessRunner(TimeSpan.FromSeconds(1))
            .Run(Sh, ["-c", $"sleep 600 & echo $! > {pidFile}; wait"]));

        var child = int.Parse(File.ReadAllText(pidFile).Trim());
        Assert.True(WaitUntilGone(child), $"the tool's child {child} outlived the deadline");
        Directory.Delete(Path.GetDirectoryName(pidFile)!, recursive: true);
    }

    [Fact]
    public void A_tool_sees_only_LC_ALL_and_what_the_caller_passes_not_this_process_s_environment()
    {
        // Harmless for other tests' children while it is set: this process's environment is shared.
        Environment.SetEnvironmentVariable("MODPROBE_OPTIONS", "-q");
        try
        {
            var bare = new ProcessRunner().Run("/usr/bin/env", []).StandardOutput;
            var given = new ProcessRunner().Run("/usr/bin/env", [], environment: new Dictionary<string, string> { ["dev"] = "tun0" }).StandardOutput;

            Assert.Equal(["LC_ALL=C"], Lines(bare));
            Assert.Equal(["LC_ALL=C", "dev=tun0"], Lines(given).Order(StringComparer.Ordinal));
        }
        finally { Environment.SetEnvironmentVariable("MODPROBE_OPTIONS", null); }
    }

    [Fact]
    public void A_failing_tool_s_stderr_exit_code_and_errno_are_in_the_exception()
    {
        var e = Assert.Throws<ProcessException>(() =>
            new ProcessRunner().Run(Sh, ["-c", "echo 'RTNETLINK answers: File exists' >&2; echo more >&2; exit 2"]));

        Assert.Equal("sh -c echo 'RTNETLINK answers: File exists' >&2; echo more >&2; exit 2 failed (exit 2): RTNETLINK answers: File exists", e.Message);
        Assert.Equal((2, "RTNETLINK answers: File exists\nmore", TunnelRouter.Errno.EEXIST), (e.ExitCode, e.StandardError, e.Errno));
        Assert.IsAssignableFrom<TunnelRouterException>(e);
    }

    [Fact]
    public void Without_check_a_failing_tool_is_a_result()
    {
        var result = new ProcessRunner().Run(Sh, ["-c", "echo out; echo err >&2; exit 3"], check: false);

        Assert.Equal((3, "out\n", "err\n"), (result.ExitCode, result.StandardOutput, result.StandardError));
    }

    [Fact]
    public void A_missing_tool_is_one_readable_line()
    {
        var e = Assert.Throws<EnvironmentException>(() => new ProcessRunner().Run("/nonexistent/ip", ["route"]));

        Assert.Equal("cannot run /nonexistent/ip: No such file or directory", e.Message);
    }

    [Fact]
    public void A_relative_tool_path_is_refused()
    {
        Assert.Throws<ArgumentException>(() => new ProcessRunner().Run("ip", ["route"]));
    }

    [Fact]
    public void Cancelling_kills_the_tool_and_says_so_as_a_cancellation()
    {
        using var cancel = new CancellationTokenSource();
        cancel.CancelAfter(TimeSpan.FromMilliseconds(200));

        Assert.ThrowsAny<OperationCanceledException>(() => new ProcessRunner().Run("/bin/sleep", ["600"], cancellation: cancel.Token));
    }

    static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>Waits (up to a minute: this is not a timing assertion) for a killed process to be gone or a zombie.</summary>
    static bool WaitUntilGone(int pid)
    {
        for (var i = 0; i < 600; i++)
        {
            var stat = $"/proc/{pid}/stat";
            if (!File.Exists(stat)) return true;
            try
            {
                var text = File.ReadAllText(stat);
                if (text[(text.LastIndexOf(')') + 2)..].StartsWith('Z')) return true;
            }
            catch (IOException) { return true; }
            Thread.Sleep(100);
        }
        return false;
    }
}
