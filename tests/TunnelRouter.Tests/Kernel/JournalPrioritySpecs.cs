using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.Hardening;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary>When stderr is the journal (JOURNAL_STREAM names the stream fd 2 is open on), every line carries its syslog
/// priority, so 'journalctl -p warning' finds the warnings; anywhere else the lines are as they were. This host runs no
/// systemd-journald, so the stream is a file and the prefixes are read from it.</summary>
[BackendIndependent]
public class JournalPrioritySpecs
{
    /// <summary>The binary with its stderr on a file, and JOURNAL_STREAM set to that file's dev:inode (as systemd sets it for
    /// a unit's stream), or to another's.</summary>
    static string[] Lines(NetNs ns, string[] args, bool matching)
    {
        var err = Path.Combine(ns.StateDir, "stderr.txt");
        var other = Path.Combine(ns.StateDir, "other.txt");
        File.WriteAllText(other, "");
        var stream = matching ? "$(/usr/bin/stat -L -c %d:%i /proc/self/fd/2)" : $"$(/usr/bin/stat -c %d:%i {other})";
        Sh.Run("/bin/sh", ["-c", $"exec 2>{err}; export JOURNAL_STREAM={stream}; exec /usr/sbin/ip netns exec {ns.Name} \"$@\"", "sh", Prerequisites.Binary, .. args],
            Environment(ns));
        return File.ReadAllText(err).Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    [Fact]
    public void Each_line_carries_its_syslog_priority_when_stderr_is_the_journal()
    {
        using var ns = new NetNs();
        AddVeth(ns, "wan", "192.168.1.2/24");
        var broken = WritePolicy(ns, """{ "Tables": { "wan": 100 }, "Routes": [ "default via 192.168.1.1 tabel wan" ] }""");
        var good = WritePolicy(ns, Hardening.Policy(["default via 192.168.1.1 table wan"], []), "good.json");

        var error = Lines(ns, ["plan", "-c", broken], matching: true);
        var warning = Lines(ns, ["plan", "-v"], matching: true);
        var info = Lines(ns, ["apply", "-v", "-c", good], matching: true);

        Assert.Contains(error, l => l.StartsWith("<3>tunnel-router: error: ", StringComparison.Ordinal));
        Assert.Contains(warning, l => l.StartsWith("<4>", StringComparison.Ordinal) && l.Contains("no policy file"));
        Assert.Contains(info, l => l.StartsWith("<6>[#] ip -4 route add default via 192.168.1.1", StringComparison.Ordinal));
        Assert.Contains(info, l => l.StartsWith("<7>", StringComparison.Ordinal));
        Assert.All(error.Concat(warning).Concat(info), l => Assert.Matches("^<[3467]>", l));
    }

    [Fact]
    public void Lines_have_no_prefix_when_journal_stream_names_another_stream()
    {
        using var ns = new NetNs();
        var broken = WritePolicy(ns, """{ "Tables": { "wan": 100 }, "Routes": [ "default via 192.168.1.1 tabel wan" ] }""");

        var lines = Lines(ns, ["plan", "-c", broken], matching: false);

        Assert.Contains(lines, l => l.StartsWith("tunnel-router: error: ", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.StartsWith('<'));
    }
}
