using System.Text.RegularExpressions;
using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Kernel.TrustBoundarySpecs;
using static TunnelRouter.Tests.Support.Hardening;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary>
/// Issue 22 against the published binary: a root tool that writes and reads only what it must. Directories made with
/// their final mode, export never writing through a link, reading commands writing nothing and quoting no secret, kernel
/// names with control characters as data, OpenVPN's config read like any other file.
/// </summary>
public class TrustBoundaryRound2Specs
{
    static string Secret(NetNs ns)
    {
        var secret = Path.Combine(ns.StateDir, "shadow");
        File.WriteAllText(secret, "root:$6$not-for-you:19000:0:99999:7:::\n");
        File.SetUnixFileMode(secret, (UnixFileMode)0b110_000_000);
        return secret;
    }

    // ---- Finding 1: directories made 0777 then narrowed -------------------------------------------------------------

    [Fact]
    [BackendIndependent]
    public void Every_directory_the_hook_makes_under_umask_0_is_made_with_its_final_mode_never_0777()
    {
        using var ns = Prepared();
        var run = Path.Combine(ns.StateDir, "run");
        var trace = Path.Combine(ns.StateDir, "mkdir.trace");
        var env = Full(ns, Hook());
        env["TUNNEL_ROUTER_LOCKFILE"] = Path.Combine(run, "lock");

        ns.Exec("/usr/bin/timeout", ["20", "/bin/sh", "-c", "umask 000; exec /usr/bin/strace -f -qq -e trace=mkdir,mkdirat -o \"$0\" \"$@\"",
            trace, Prerequisites.Binary, "up"], env).ShouldSucceed();

        var made = Regex.Matches(File.ReadAllText(trace), "mkdir(?:at)?\\((?:AT_FDCWD, )?\"([^\"]+)\", (0[0-7]+)\\)")
            .Select(m => (Path: m.Groups[1].Value, Mode: m.Groups[2].Value)).Where(m => m.Path.StartsWith(ns.StateDir)).ToList();
        Assert.Contains(made, m => m.Path == run && m.Mode == "0755");
        Assert.Contains(made, m => m.Path == Path.Combine(run, "tunnels") && m.Mode == "0700");
        Assert.All(made, m => Assert.True(m.Mode is "0755" or "0700", $"{m.Path} was made {m.Mode}"));
        Assert.Equal((UnixFileMode)0b111_101_101, File.GetUnixFileMode(run));
        Assert.Equal((UnixFileMode)0b111_000_000, File.GetUnixFileMode(Path.Combine(run, "tunnels")));
    }

    // ---- Finding 2: export --out follows symlinks ------------------------------------------------------------------

    [Theory]
    [BackendIndependent]
    [InlineData("a symlink in a directory a user owns")]
    [InlineData("a directory others may write")]
    public void Export_never_writes_into_a_tree_others_can_write_nor_through_a_symlink(string kind)
    {
        using var ns = Prepared();
        var policy = WritePolicy(ns, Good);
        var secret = Secret(ns);
        var clean = Path.Combine(ns.StateDir, "clean");
        Run(ns, ["export", "--format", "networkd", "--out", clean, "-c", policy]).ShouldSucceed();
        var first = Directory.EnumerateFiles(clean, "*", SearchOption.AllDirectories).Order().First();
        var relative = Path.GetRelativePath(clean, first);

        var out_ = Path.Combine(ns.StateDir, "out");
        var file = Path.Combine(out_, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        var dir = Path.GetDirectoryName(file)!;
        if (kind.StartsWith("a symlink"))
        {
            File.CreateSymbolicLink(file, secret);
            Chown(dir);
        }
        else File.SetUnixFileMode(dir, (UnixFileMode)0b111_111_111);

        var run = Run(ns, ["export", "--format", "networkd", "--out", out_, "-c", policy]);

        Assert.Contains("refusing", SingleErrorLine(run));
        Assert.Equal("root:$6$not-for-you:19000:0:99999:7:::\n", File.ReadAllText(secret));
        Assert.Equal((UnixFileMode)0b110_000_000, File.GetUnixFileMode(secret));
    }

    // ---- Finding 3: "read-only" commands write and disclose ----------------------------------------------------------

    [Theory]
    [InlineData("status")]
    [InlineData("plan")]
    [InlineData("explain")]
    [InlineData("doctor")]
    public void A_reading_command_neither_creates_nor_remodes_the_log_file(string command)
    {
        using var ns = Prepared();
        var created = Path.Combine(ns.StateDir, "new.log");
        var existing = Path.Combine(ns.StateDir, "root-only");
        File.WriteAllText(existing, "kept\n");
        File.SetUnixFileMode(existing, (UnixFileMode)0b110_000_000);
        string[] args = command == "explain" ? ["explain", "--from", "10.10.10.5", "--to", "192.168.1.9"] : [command];

        Run(ns, [.. args, "--log-file", created]);
        Run(ns, [.. args, "--log-file", existing]);

        Assert.False(File.Exists(created));
        Assert.Equal((UnixFileMode)0b110_000_000, File.GetUnixFileMode(existing));
        Assert.Equal("kept\n", File.ReadAllText(existing));
    }

    [Fact]
    public void A_prefix_file_or_policy_not_everyone_may_read_is_named_by_line_never_quoted()
    {
        using var ns = Prepared();
        var secret = Secret(ns);

        var prefixes = Run(ns, ["plan", $"PrefixLists:0:File={secret}", "PrefixLists:0:Route=dev lo"]);
        var policy = Run(ns, ["plan", "-c", secret]);

        Assert.Contains($"{secret}:1: the line is not a prefix", SingleErrorLine(prefixes));
        Assert.Contains("line 1, column 1: expected '{'", SingleErrorLine(policy));
        Assert.DoesNotContain("not-for-you", prefixes.Stderr + policy.Stderr);
        Assert.DoesNotContain("root", (prefixes.Stderr + policy.Stderr).Replace("chown root", ""));
    }

    /// <summary>A file that is valid JSON but not a policy, not everyone may read (a secret of another program's): the errors
    /// name the key and what was expected, never a word of it; the same file readable by everyone quotes them.</summary>
    [Fact]
    public void A_valid_JSON_file_not_everyone_may_read_is_named_by_key_never_quoted()
    {
        using var ns = Prepared();
        var secret = Path.Combine(ns.StateDir, "secret.json");
        File.WriteAllText(secret, """
            { "not-for-you-key": 1, "Rules": [ "from not-for-you lookup main" ], "Uplinks": [ { "Interface": "not-for-you!" } ],
              "Tables": { "not-for-you": 0 } }
            """);
        File.SetUnixFileMode(secret, (UnixFileMode)0b110_000_000);

        var hidden = Run(ns, ["plan", "-c", secret]);

        Assert.NotEqual(0, hidden.ExitCode);
        Assert.DoesNotContain("not-for-you", hidden.Stdout + hidden.Stderr);
        Assert.Contains($"{secret}: a key: unknown key", hidden.Stderr);
        Assert.Contains($"{secret}: Rules[0]: word 2 '…'", hidden.Stderr);
        Assert.Contains($"{secret}: Uplinks[0].Interface: '…' is not a valid interface name", hidden.Stderr);

        File.SetUnixFileMode(secret, (UnixFileMode)0b110_100_100);
        var shown = Run(ns, ["plan", "-c", secret]);

        Assert.Contains($"{secret}: not-for-you-key: unknown key", shown.Stderr);
        Assert.Contains("word 2 'not-for-you'", shown.Stderr);
    }

    /// <summary>iproute2's name files are read like every other file root reads: a FIFO or /dev/zero at rt_tables' name
    /// stops the run with one line; a symlink to a regular file of root's is followed (distributions link /etc).</summary>
    [Theory]
    [InlineData("fifo")]
    [InlineData("/dev/zero")]
    [InlineData("link to a regular file")]
    public void A_FIFO_or_device_at_rt_tables_is_refused_in_one_line_and_a_symlink_to_a_file_is_read(string kind)
    {
        using var ns = Prepared();
        var dir = Path.Combine(ns.StateDir, "iproute2");
        Directory.CreateDirectory(dir);
        var tables = Path.Combine(dir, "rt_tables");
        switch (kind)
        {
            case "fifo": Sh.Run("/usr/bin/mkfifo", [tables]).ShouldSucceed(); break;
            case "/dev/zero": File.CreateSymbolicLink(tables, "/dev/zero"); break;
            default:
                File.WriteAllText(tables + ".real", "255 local\n254 main\n253 default\n0 unspec\n77 seventy\n");
                File.CreateSymbolicLink(tables, tables + ".real");
                break;
        }

        var run = Run(ns, ["plan", "Rules:0=from 10.0.0.0/24 lookup seventy"]);

        if (kind == "link to a regular file")
        {
            Assert.Equal(2, run.ExitCode);
            Assert.Contains("lookup seventy", run.Stdout);
        }
        else Assert.Contains($"{tables} is not a regular file", SingleErrorLine(run));
    }

    // ---- Finding 4: bounded work --------------------------------------------------------------------------------------

    [Fact]
    [BackendIndependent]
    public void A_million_bad_rules_are_twenty_errors_and_a_one_line_prefix_file_stops_at_the_line_cap()
    {
        using var ns = Prepared();
        var policy = WritePolicy(ns, "{\"Rules\": [" + string.Join(",", Enumerable.Repeat("\"x\"", 1_000_000)) + "]}");
        var oneLine = Path.Combine(ns.StateDir, "one-line.txt");
        File.WriteAllText(oneLine, new string('1', 32 << 20));

        var rules = Run(ns, ["plan", "-c", policy]);
        var prefixes = Run(ns, ["plan", $"PrefixLists:0:File={oneLine}", "PrefixLists:0:Route=dev lo"]);

        var lines = rules.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(22, lines.Length);
        Assert.Contains("999980 more line(s) not checked: stopped after 20 errors", lines[20]);
        Assert.Equal("tunnel-router: 21 errors; nothing was changed", lines[21]);
        Assert.Contains($"{oneLine}:1: the line is longer than 4096 characters", SingleErrorLine(prefixes));
    }

    // ---- Finding 5: control characters in kernel names ----------------------------------------------------------------

    [Fact]
    public void A_link_named_with_an_escape_sequence_crashes_nothing_and_is_printed_escaped()
    {
        using var ns = Prepared();
        ns.Ip("link", "add", "e\u001b[31m", "type", "veth", "peer", "name", "e-peer");
        var policy = WritePolicy(ns, Good);

        var apply = Run(ns, ["apply", "-c", policy]);
        var hook = Bounded(ns, ["up"], Hook());
        var explain = Run(ns, ["explain", "--from", "10.10.10.5", "--to", "192.168.1.9", "-c", policy]);
        var doctor = Run(ns, ["doctor", "-c", policy]);

        apply.ShouldSucceed();
        hook.ShouldSucceed();
        // explain exits 1 for a packet the kernel drops, doctor for a problem found; a crash was 134.
        Assert.InRange(explain.ExitCode, 0, 1);
        Assert.InRange(doctor.ExitCode, 0, 1);
        foreach (var r in new[] { apply, hook, explain, doctor })
            Assert.DoesNotContain('\u001b', r.Stdout + r.Stderr);
    }

    // ---- Finding 6: OpenVPN's config read without a type or size check -------------------------------------------------

    [Theory]
    [InlineData("fifo")]
    [InlineData("/dev/zero")]
    public void OpenVPNs_config_that_is_no_regular_file_is_read_as_without_the_option_at_once(string kind)
    {
        using var ns = Prepared();
        var config = kind == "fifo" ? Path.Combine(ns.StateDir, "server.conf") : kind;
        if (kind == "fifo") Sh.Run("/usr/bin/mkfifo", [config]).ShouldSucceed();
        var env = Hook();
        env["TUNNEL_ROUTER_CONFIG"] = WritePolicy(ns, """{ "Tables": { "vpn": 200 }, "Instances": [ { "Dev": "tun*", "Rules": [ "-4 iif ${dev} lookup vpn" ] } ] }""");
        env["config"] = config;
        env["remote_1"] = "192.168.1.77";
        env["trusted_ip"] = "192.168.1.77";

        var run = Bounded(ns, ["up"], env);

        Assert.NotEqual(124, run.ExitCode);
        run.ShouldSucceed();
    }
}
