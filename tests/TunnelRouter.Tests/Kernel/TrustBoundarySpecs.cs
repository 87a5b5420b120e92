using System.Diagnostics;
using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.Hardening;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary>
/// Issue 16 against the published binary: local users who own a directory, a log, a lock or a name file on
/// root's way must not steer what root reads, writes or applies; concurrent hooks must not share a table id;
/// one tunnel's hook must not remove another's state.
/// </summary>
public class TrustBoundarySpecs
{
    const UnixFileMode Mode644 = (UnixFileMode)0b110_100_100, Mode755 = (UnixFileMode)0b111_101_101, Mode777 = (UnixFileMode)0b111_111_111;

    internal static Dictionary<string, string> Hook(string dev = "tun0", string v4 = "10.10.10.1", string scriptType = "up", string netmask = "255.255.255.0")
    {
        var env = SubnetEnv(dev, v4, netmask, null, 64, scriptType);
        env["TUNNEL_ROUTER_POOLRULES"] = "true";
        return env;
    }

    internal static string Good => Hardening.Policy(["default via 192.168.1.1 dev wan table wan"], []);
    static string Evil => Hardening.Policy(["default via 192.168.1.66 dev wan table main"], [], "\"wan\": 100");

    internal static NetNs Prepared()
    {
        var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24");
        AddVeth(ns, "wan", "192.168.1.2/24");
        return ns;
    }

    internal static void Chown(string path, string user = "nobody") => Sh.Run("/usr/bin/chown", ["-h", user, path]).ShouldSucceed();

    internal static string SingleErrorLine(RunResult run)
    {
        Assert.NotEqual(0, run.ExitCode);
        var line = Assert.Single(run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("tunnel-router: error: ", line);
        return line;
    }

    /// <summary>The binary under a wall-clock bound: a hang shows as exit 124, not as a stuck suite.</summary>
    internal static RunResult Bounded(NetNs ns, string[] args, Dictionary<string, string>? env = null, string prefix = "") =>
        ns.Exec("/usr/bin/timeout", ["20", "/bin/sh", "-c", prefix + "exec \"$0\" \"$@\"", Prerequisites.Binary, .. args], Full(ns, env));

    internal static Dictionary<string, string> Full(NetNs ns, Dictionary<string, string>? env) => TunnelRouterProcess.Environment(ns, env);

    // ---- Finding 2: StrictModes checks what it parses -------------------------------------------------------

    [Fact]
    public void A_policy_behind_a_symlink_a_user_keeps_swapping_is_never_applied()
    {
        using var ns = Prepared();
        // /srv/deploy/current -> releases/good or releases/evil, /srv/deploy owned by the deploying user.
        var deploy = Path.Combine(ns.StateDir, "srv", "deploy");
        Directory.CreateDirectory(Path.Combine(deploy, "good"));
        Directory.CreateDirectory(Path.Combine(deploy, "evil"));
        File.SetUnixFileMode(Path.Combine(ns.StateDir, "srv"), Mode755);
        File.SetUnixFileMode(ns.StateDir, Mode755);
        foreach (var (d, text) in new[] { ("good", Good), ("evil", Evil) })
        {
            File.WriteAllText(Path.Combine(deploy, d, "policy.json"), text);
            File.SetUnixFileMode(Path.Combine(deploy, d, "policy.json"), Mode644);
        }
        Chown(deploy);
        Chown(Path.Combine(deploy, "evil"));
        Chown(Path.Combine(deploy, "evil", "policy.json"));
        File.CreateSymbolicLink(Path.Combine(deploy, "current"), "good");
        Chown(Path.Combine(deploy, "current"));
        var before = ns.Dump();
        // The user swaps the link as fast as it can, for as long as root keeps running plan and apply.
        var stop = Path.Combine(ns.StateDir, "stop");
        var swapper = Process.Start(new ProcessStartInfo("/usr/bin/setpriv",
        [
            "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/bin/sh", "-c",
            $"cd {deploy} && while [ ! -e {stop} ]; do ln -sfn evil current.new && mv -T current.new current; ln -sfn good current.new && mv -T current.new current; done",
        ]))!;
        var results = new List<RunResult>();
        try
        {
            for (var i = 0; i < 40; i++)
            {
                results.Add(Run(ns, [i % 2 == 0 ? "plan" : "apply", "--config", Path.Combine(deploy, "current", "policy.json")]));
            }
        }
        finally
        {
            File.WriteAllText(stop, "");
            swapper.WaitForExit(10_000);
            if (!swapper.HasExited) swapper.Kill(true);
        }

        Assert.All(results, r => Assert.Contains($"its directory {deploy} is owned by uid", SingleErrorLine(r)));
        Assert.Equal(before, ns.Dump());
    }

    [Fact]
    public void A_release_symlink_in_root_owned_directories_is_followed_and_applied()
    {
        using var ns = Prepared();
        var deploy = Path.Combine(ns.StateDir, "srv", "deploy");
        Directory.CreateDirectory(Path.Combine(deploy, "r1"));
        File.WriteAllText(Path.Combine(deploy, "r1", "policy.json"), Good);
        File.SetUnixFileMode(Path.Combine(deploy, "r1", "policy.json"), Mode644);
        File.CreateSymbolicLink(Path.Combine(deploy, "current"), "r1");

        Run(ns, ["apply", "--config", Path.Combine(deploy, "current", "policy.json")]).ShouldSucceed();

        Assert.Contains("default via 192.168.1.1", ns.Ip("route", "show", "table", "100"));
    }

    [Theory]
    [InlineData("fifo")]
    [InlineData("char device")]
    public void A_policy_that_is_not_a_regular_file_is_refused_without_blocking(string kind)
    {
        using var ns = Prepared();
        var path = Path.Combine(ns.StateDir, "policy.json");
        if (kind == "fifo") Sh.Run("/usr/bin/mkfifo", ["-m", "0644", path]).ShouldSucceed();
        else File.CreateSymbolicLink(path, "/dev/kmsg");

        var run = Bounded(ns, ["plan", "--config", path]);

        Assert.NotEqual(124, run.ExitCode);
        Assert.Contains("not a regular file", SingleErrorLine(run));
    }

    [Fact]
    public void A_400_MB_policy_is_refused_before_it_is_read()
    {
        using var ns = Prepared();
        var path = Path.Combine(ns.StateDir, "policy.json");
        // Sparse: no disk is used, but the size is what a reader would have to read.
        using (var f = File.Create(path)) f.SetLength(400L << 20);
        File.SetUnixFileMode(path, Mode644);

        var line = SingleErrorLine(Bounded(ns, ["plan", "--config", path]));

        Assert.Contains("419430400 bytes, more than", line);
    }

    // ---- Finding 3: the log file ---------------------------------------------------------------------------

    [Fact]
    public void The_log_is_created_0640_under_umask_0_and_a_symlink_at_its_name_is_not_followed()
    {
        using var ns = Prepared();
        var logs = Path.Combine(ns.StateDir, "log");
        Directory.CreateDirectory(logs);
        var log = Path.Combine(logs, "tunnel-router.log");
        var env = Hook();
        env["TUNNEL_ROUTER_LOGFILE"] = log;

        Bounded(ns, ["up"], env, "umask 000; ").ShouldSucceed();

        Assert.Equal((UnixFileMode)0b110_100_000, File.GetUnixFileMode(log));
        Assert.Contains("[INF] [#] ip -4 route add 10.10.10.0/24 dev tun0", File.ReadAllText(log));

        // A root-only file behind a symlink at the log's name: not a line goes into it, one warning, exit 0.
        var secret = Path.Combine(ns.StateDir, "secret");
        File.WriteAllText(secret, "root only\n");
        File.SetUnixFileMode(secret, (UnixFileMode)0b110_000_000);
        File.Delete(log);
        File.CreateSymbolicLink(log, secret);

        var down = Hook(scriptType: "down");
        down["TUNNEL_ROUTER_LOGFILE"] = log;
        var run = Bounded(ns, ["down"], down).ShouldSucceed();

        Assert.Equal("root only\n", File.ReadAllText(secret));
        Assert.Single(run.Stderr.Split('\n'), l => l.StartsWith("tunnel-router: warning: ") && l.Contains("logging to stderr only"));
    }

    [Theory]
    [InlineData("fifo")]
    [InlineData("owned by nobody")]
    [InlineData("directory 0777")]
    public void A_log_someone_else_controls_is_one_warning_and_the_run_goes_on(string kind)
    {
        using var ns = Prepared();
        var logs = Path.Combine(ns.StateDir, "log");
        Directory.CreateDirectory(logs);
        var log = Path.Combine(logs, "tunnel-router.log");
        switch (kind)
        {
            case "fifo": Sh.Run("/usr/bin/mkfifo", [log]).ShouldSucceed(); break;
            case "owned by nobody": File.WriteAllText(log, ""); Chown(log); break;
            case "directory 0777": File.SetUnixFileMode(logs, Mode777); break;
        }
        var env = Hook();
        env["TUNNEL_ROUTER_LOGFILE"] = log;

        var run = Bounded(ns, ["up"], env).ShouldSucceed();

        Assert.Single(run.Stderr.Split('\n'), l => l.StartsWith("tunnel-router: warning: "));
        Assert.Contains("10.10.10.0/24", ns.Ip("route", "show", "table", "200"));
    }

    [Fact]
    public void A_reader_holding_a_lock_on_the_log_does_not_silence_it()
    {
        using var ns = Prepared();
        var log = Path.Combine(ns.StateDir, "tunnel-router.log");
        File.WriteAllText(log, "");
        File.SetUnixFileMode(log, (UnixFileMode)0b110_100_100);
        var stop = Path.Combine(ns.StateDir, "stop");
        var holder = Process.Start(new ProcessStartInfo("/usr/bin/flock",
            ["-s", log, "/bin/sh", "-c", $"touch {stop}.held; while [ ! -e {stop} ]; do sleep 0.05; done"]))!;
        try
        {
            while (!File.Exists(stop + ".held")) Thread.Sleep(10);
            var env = Hook();
            env["TUNNEL_ROUTER_LOGFILE"] = log;

            Bounded(ns, ["up"], env).ShouldSucceed();
        }
        finally
        {
            File.WriteAllText(stop, "");
            holder.WaitForExit(10_000);
        }

        Assert.Contains("[#] ip -4 route add 10.10.10.0/24", File.ReadAllText(log));
    }

    // ---- Finding 4: name drop-ins ----------------------------------------------------------------------------

    [Fact]
    public void A_symlink_at_the_drop_ins_name_is_refused_and_its_target_left_alone()
    {
        using var ns = Prepared();
        var dropIns = Path.Combine(ns.StateDir, "iproute2", "rt_tables.d");
        Directory.CreateDirectory(dropIns);
        var secret = Path.Combine(ns.StateDir, "shadow");
        File.WriteAllText(secret, "secret\n");
        File.SetUnixFileMode(secret, (UnixFileMode)0b110_000_000);
        File.CreateSymbolicLink(Path.Combine(dropIns, "tunnel-router.conf"), secret);
        var before = ns.Dump();

        var line = SingleErrorLine(Run(ns, ["up"], Hook()));

        Assert.Contains("symlink", line);
        Assert.Equal("secret\n", File.ReadAllText(secret));
        Assert.Equal((UnixFileMode)0b110_000_000, File.GetUnixFileMode(secret));
        Assert.Equal(before, ns.Dump());
    }

    [Theory]
    [InlineData("iproute2 0777")]
    [InlineData("rt_tables.d 0777")]
    [InlineData("rt_tables.d owned by nobody")]
    [InlineData("old drop-in owned by nobody")]
    public void Names_are_not_written_where_others_could_steer_the_write(string kind)
    {
        using var ns = Prepared();
        var dir = Path.Combine(ns.StateDir, "iproute2");
        var dropIns = Path.Combine(dir, "rt_tables.d");
        Directory.CreateDirectory(dropIns);
        switch (kind)
        {
            case "iproute2 0777": File.SetUnixFileMode(dir, Mode777); break;
            case "rt_tables.d 0777": File.SetUnixFileMode(dropIns, Mode777); break;
            case "rt_tables.d owned by nobody": Chown(dropIns); break;
            case "old drop-in owned by nobody":
                File.WriteAllText(Path.Combine(dropIns, "tunnel-router.conf"), "201 other\n");
                Chown(Path.Combine(dropIns, "tunnel-router.conf"));
                break;
        }
        var before = ns.Dump();

        SingleErrorLine(Run(ns, ["up"], Hook()));

        Assert.Equal(before, ns.Dump());
    }

    [Fact]
    public void The_drop_ins_are_0644_under_umask_0_with_no_temporary_file_left()
    {
        using var ns = Prepared();
        var dir = Path.Combine(ns.StateDir, "iproute2");

        Bounded(ns, ["up"], Hook(), "umask 000; ").ShouldSucceed();

        var files = Directory.GetFiles(dir, "*", SearchOption.AllDirectories);
        Assert.Equal(["rt_protos.d/tunnel-router.conf", "rt_tables.d/tunnel-router.conf"],
            files.Select(f => Path.GetRelativePath(dir, f)).Order().ToArray());
        Assert.All(files, f => Assert.Equal(Mode644, File.GetUnixFileMode(f)));
        Assert.All(Directory.GetDirectories(dir), d => Assert.Equal(Mode755, File.GetUnixFileMode(d)));
    }

    // ---- Finding 5: names resolved under the lock ------------------------------------------------------------

    [Fact]
    public void Two_hooks_naming_two_new_tables_at_once_take_two_free_ids()
    {
        for (var attempt = 0; attempt < 5; attempt++)
        {
            using var ns = new NetNs();
            ns.AddTun("tunA", "10.10.10.1/24");
            ns.AddTun("tunB", "10.20.20.1/24");
            var a = Hook("tunA");
            a["TUNNEL_ROUTER_TABLE"] = "vpnA";
            var b = Hook("tunB", "10.20.20.1");
            b["TUNNEL_ROUTER_TABLE"] = "vpnB";

            var results = RunAtOnce(ns, [(["up"], a), (["up"], b)]);

            Assert.All(results, r => Assert.Equal(0, r.ExitCode));
            var names = File.ReadAllLines(Path.Combine(ns.StateDir, "iproute2", "rt_tables.d", "tunnel-router.conf"))
                .Where(l => !l.StartsWith('#')).Select(l => l.Split(' ', '\t')[0]).ToList();
            Assert.Equal(["200", "201"], names.Order());
        }
    }

    [Fact]
    public void A_table_id_given_that_another_name_holds_is_one_line_naming_the_file_and_the_fix()
    {
        using var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24");
        ns.AddTun("tun1", "10.20.20.1/24");
        Run(ns, ["up"], Hook("tun0")).ShouldSucceed();
        var second = Hook("tun1", "10.20.20.1");
        second["TUNNEL_ROUTER_TABLE"] = "vpn2";
        second["TUNNEL_ROUTER_TABLEID"] = "200";

        var run = Run(ns, ["up"], second);

        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains(Path.Combine(ns.StateDir, "iproute2", "rt_tables.d", "tunnel-router.conf") + " already names 'vpn'", run.Stderr);
        Assert.Contains("leave TableId unset", run.Stderr);
        Assert.Single(run.Stderr.Trim().Split('\n'));
    }

    [Fact]
    public void Thirty_two_hooks_at_once_write_each_name_once()
    {
        using var ns = new NetNs();
        var runs = new List<(string[], Dictionary<string, string>)>();
        for (var i = 0; i < 32; i++)
        {
            ns.AddTun($"tun{i}", $"10.{i}.0.1/24");
            runs.Add((["up"], Hook($"tun{i}", $"10.{i}.0.1")));
        }

        var results = RunAtOnce(ns, runs);

        Assert.All(results, r => Assert.True(r.ExitCode == 0, r.Stderr));
        var text = File.ReadAllText(Path.Combine(ns.StateDir, "iproute2", "rt_tables.d", "tunnel-router.conf"));
        Assert.Single(text.Split('\n'), l => l == "200\tvpn");
    }

    // ---- Finding 6: one tunnel's hook never removes another's state -------------------------------------------

    [Fact]
    public void A_late_down_of_the_tunnel_that_had_the_device_before_leaves_the_new_tunnels_state()
    {
        using var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24");
        Run(ns, ["up"], Hook("tun0", "10.10.10.1")).ShouldSucceed();
        // OpenVPN A closes tun0 (its routes go with the device); B gets tun0 with its own pool.
        ns.Ip("link", "del", "tun0");
        ns.AddTun("tun0", "10.20.20.1/24");
        Run(ns, ["up"], Hook("tun0", "10.20.20.1")).ShouldSucceed();
        var withB = ns.Dump();

        Run(ns, ["down"], Hook("tun0", "10.10.10.1", "down")).ShouldSucceed();

        Assert.Equal(withB, ns.Dump());
        Assert.Contains("from 10.20.20.0/24 lookup 200", ns.Ip("rule", "show"));
        Assert.DoesNotContain("10.10.10.0/24", ns.Ip("rule", "show"));
    }

    [Fact]
    public void A_p2p_tunnel_whose_address_lies_in_another_tunnels_pool_leaves_that_pool_rule()
    {
        using var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24");
        ns.AddTun("tun1", "10.10.10.77/32");
        Run(ns, ["up"], Hook("tun0", "10.10.10.1")).ShouldSucceed();
        var p2p = new Dictionary<string, string>
        {
            ["script_type"] = "up", ["dev"] = "tun1", ["ifconfig_local"] = "10.10.10.77", ["ifconfig_remote"] = "10.10.10.78",
            ["TUNNEL_ROUTER_POOLRULES"] = "true",
        };

        Run(ns, ["up"], p2p).ShouldSucceed();
        p2p["script_type"] = "down";
        Run(ns, ["down"], p2p).ShouldSucceed();

        Assert.Contains("from 10.10.10.0/24 lookup 200", ns.Ip("rule", "show"));
        Assert.Contains("10.10.10.0/24 dev tun0", ns.Ip("route", "show", "table", "200"));
    }

    // ---- Finding 7: the lock ----------------------------------------------------------------------------------

    [Fact]
    public void A_lock_left_wider_than_0600_is_narrowed()
    {
        using var ns = Prepared();
        var lockFile = Path.Combine(ns.StateDir, "lock");
        File.WriteAllText(lockFile, "");
        File.SetUnixFileMode(lockFile, (UnixFileMode)0b110_100_100);

        Bounded(ns, ["up"], Hook(), "umask 000; ").ShouldSucceed();

        Assert.Equal((UnixFileMode)0b110_000_000, File.GetUnixFileMode(lockFile));
    }

    [Theory]
    [InlineData("fifo owned by nobody")]
    [InlineData("file owned by nobody")]
    [InlineData("directory 0777")]
    [InlineData("directory a symlink")]
    [InlineData("directory owned by nobody")]
    public void A_lock_someone_else_controls_is_refused_before_any_change(string kind)
    {
        using var ns = Prepared();
        var real = Path.Combine(ns.StateDir, "run");
        Directory.CreateDirectory(real);
        var dir = real;
        var lockFile = Path.Combine(real, "lock");
        switch (kind)
        {
            case "fifo owned by nobody": Sh.Run("/usr/bin/mkfifo", ["-m", "0666", lockFile]).ShouldSucceed(); Chown(lockFile); break;
            case "file owned by nobody": File.WriteAllText(lockFile, ""); Chown(lockFile); break;
            case "directory 0777": File.SetUnixFileMode(real, Mode777); break;
            case "directory owned by nobody": Chown(real); break;
            case "directory a symlink":
                dir = Path.Combine(ns.StateDir, "run-link");
                File.CreateSymbolicLink(dir, real);
                lockFile = Path.Combine(dir, "lock");
                break;
        }
        var before = ns.Dump();
        var env = Hook();
        env["TUNNEL_ROUTER_LOCKFILE"] = lockFile;

        var run = Bounded(ns, ["up"], env);

        Assert.NotEqual(124, run.ExitCode);
        Assert.Contains("refusing", SingleErrorLine(run));
        Assert.Equal(before, ns.Dump());
    }

    // ---- Finding 8: kernel changes do not stay behind a name that cannot be written ------------------------------

    [Fact]
    public void When_the_name_drop_in_cannot_be_written_up_fails_before_the_kernel_changes()
    {
        using var ns = Prepared();
        // Something that is not a file where the drop-in goes: as a read-only /etc/iproute2 or ENOSPC, the write fails.
        Directory.CreateDirectory(Path.Combine(ns.StateDir, "iproute2", "rt_tables.d", "tunnel-router.conf"));
        var before = ns.Dump();

        SingleErrorLine(Run(ns, ["up"], Hook()));

        Assert.Equal(before, ns.Dump());
    }

    [Fact]
    public void When_the_kernel_refuses_a_change_the_names_written_for_it_are_taken_back()
    {
        using var ns = Prepared();
        // tun9 does not exist: the route add fails after the names were written.
        var run = Run(ns, ["up"], Hook("tun9"));

        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("rolled back", run.Stderr);
        Assert.False(Directory.Exists(Path.Combine(ns.StateDir, "iproute2")), "names stayed behind a failed up");
    }

    // ---- Finding 10 and 11 -------------------------------------------------------------------------------------

    [Theory]
    [InlineData("16", "12")]
    [InlineData("147", "147")]
    [InlineData("187", "148")]
    public void Protocol_numbers_of_others_or_equal_ones_are_refused_and_flush_removes_nothing(string protocol, string hookProtocol)
    {
        using var ns = Prepared();
        ns.Ip("route", "add", "192.0.2.0/24", "dev", "wan", "proto", "16");
        ns.Ip("route", "add", "198.51.100.0/24", "dev", "wan", "proto", "12");
        var before = ns.Dump();

        var line = SingleErrorLine(Run(ns, ["flush", $"Protocol={protocol}", $"HookProtocol={hookProtocol}"]));

        Assert.Contains("Protocol", line);
        Assert.Equal(before, ns.Dump());
    }

    [Fact]
    public void A_device_named_flush_is_brought_up_and_nothing_is_flushed()
    {
        using var ns = Prepared();
        Run(ns, ["up"], Hook()).ShouldSucceed();
        ns.AddTun("flush", "10.200.0.1/24");
        var env = Hook("flush", "10.200.0.1");

        Run(ns, ["flush", "1500", "0", "10.200.0.1", "255.255.255.0", "init"], env).ShouldSucceed();

        var table = ns.Ip("route", "show", "table", "200");
        Assert.Contains("10.10.10.0/24 dev tun0", table);
        Assert.Contains("10.200.0.0/24 dev flush", table);
    }

    // ---- Defence in depth -------------------------------------------------------------------------------------

    [Fact]
    public void EEXIST_for_a_rule_the_kernel_only_counts_as_a_duplicate_is_a_failure_not_success()
    {
        using var ns = Prepared();
        // The kernel compares only the selectors a new rule has: after 'from 10.0.0.0/8 pref 2000 lookup wan' it
        // answers EEXIST to 'from all pref 2000 lookup wan', which is then not there.
        var policy = WritePolicy(ns, Hardening.Policy(["default via 192.168.1.1 dev wan table wan"],
            ["from 10.0.0.0/8 pref 2000 lookup wan", "from all pref 2000 lookup wan"]));
        var before = ns.Dump();

        var run = Run(ns, ["apply", "--config", policy]);

        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("counts another rule as this one", run.Stderr);
        Assert.Contains("rolled back", run.Stderr);
        Assert.Equal(before, ns.Dump());
    }

    [Fact]
    public void An_unknown_variable_with_an_escape_sequence_is_printed_escaped()
    {
        using var ns = Prepared();

        var run = Run(ns, ["up"], new Dictionary<string, string>(Hook()) { ["TUNNEL_ROUTER_\u001b[31mEVIL"] = "1" });

        Assert.DoesNotContain('\u001b', run.Stderr);
        Assert.Contains("TUNNEL_ROUTER_\\x1b[31mEVIL", SingleErrorLine(run));
    }
}
