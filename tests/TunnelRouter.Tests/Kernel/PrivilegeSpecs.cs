using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.Hardening;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary>Privileges, file permissions and how external tools are run: the hook runs as root on every
/// VPN start, so who may steer it, and what it runs, matter as much as what it does.</summary>
public class PrivilegeSpecs
{
    static Dictionary<string, string> Hook(string scriptType = "up")
    {
        var env = SubnetEnv("tun0", "10.10.10.1", "255.255.255.0", "fd00:4242:4242:4242::1", 64, scriptType);
        env["TUNNEL_ROUTER_POOLRULES"] = "true";
        return env;
    }

    static string PolicyA => Hardening.Policy(["default via 192.168.1.1 dev wan table wan"], ["from 10.10.10.0/24 lookup wan pref 2000"]);

    static NetNs Prepared(out string policy)
    {
        var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24", "fd00:4242:4242:4242::1/64");
        AddVeth(ns, "wan", "192.168.1.2/24");
        policy = WritePolicy(ns, PolicyA);
        return ns;
    }

    /// <summary>The binary where any user may run it: the checkout may sit under a directory only root can enter.</summary>
    static string PublicCopy()
    {
        var dir = Directory.CreateTempSubdirectory("tunnel-router-bin-").FullName;
        File.SetUnixFileMode(dir, (UnixFileMode)0b111_101_101);
        var bin = Path.Combine(dir, "tunnel-router");
        File.Copy(Prerequisites.Binary, bin);
        File.SetUnixFileMode(bin, (UnixFileMode)0b111_101_101);
        return bin;
    }

    static RunResult Unprivileged(NetNs ns, string[] setpriv, string bin, string[] args, Dictionary<string, string> env, string lockDir)
    {
        var full = new Dictionary<string, string>(env)
        {
            ["TUNNEL_ROUTER_IPROUTE2DIR"] = Path.Combine(ns.StateDir, "iproute2"),
            ["TUNNEL_ROUTER_CONFIG"] = "", // no policy file: the host's is never read
            ["TUNNEL_ROUTER_LOCKFILE"] = Path.Combine(lockDir, "lock"),
        };
        return ns.Exec("/usr/bin/setpriv", [.. setpriv, bin, .. args], full);
    }

    static void FailsNamingCapabilityAndPlugin(RunResult run)
    {
        Assert.NotEqual(0, run.ExitCode);
        var line = Assert.Single(run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("tunnel-router: error: ", line);
        Assert.True(line.Contains("CAP_NET_ADMIN") && line.Contains("down-root"), line);
    }

    [Fact]
    public void Without_CAP_NET_ADMIN_every_changing_command_fails_naming_the_capability_before_it_touches_anything()
    {
        using var ns = Prepared(out var policy);
        Run(ns, ["up"], Hook()).ShouldSucceed();
        Run(ns, ["apply", "--config", policy]).ShouldSucceed();
        var before = ns.Dump();
        var names = Directory.GetFiles(Path.Combine(ns.StateDir, "iproute2"), "*", SearchOption.AllDirectories)
            .ToDictionary(f => f, File.ReadAllText);
        var lockDir = Path.Combine(ns.StateDir, "unprivileged");
        // Root, but with CAP_NET_ADMIN gone from its bounding set: it could still write files, so a lock or
        // a name file appearing would show that the check came too late.
        string[] dropped = ["--bounding-set=-net_admin", "--inh-caps=-net_admin"];
        var other = WritePolicy(ns, Hardening.Policy(["default via 192.168.1.254 dev wan table wan"], [], "\"wan2\": 101"), "other.json");

        var runs = new (string[] Args, Dictionary<string, string> Env)[]
        {
            (["up"], Hook()), (["down"], Hook("down")), ([], Hook("down")), (["apply", "--config", other], []), (["flush"], []),
        };
        foreach (var (args, env) in runs)
        {
            var run = Unprivileged(ns, dropped, Prerequisites.Binary, args, env, lockDir);

            FailsNamingCapabilityAndPlugin(run);
            Assert.Equal(before, ns.Dump());
            Assert.False(Directory.Exists(lockDir), $"{string.Join(' ', args)} created the lock before checking the capability");
            Assert.Equal(names, Directory.GetFiles(Path.Combine(ns.StateDir, "iproute2"), "*", SearchOption.AllDirectories).ToDictionary(f => f, File.ReadAllText));
        }
    }

    [Fact]
    public void Down_as_user_nobody_without_the_down_root_plugin_fails_clearly_and_changes_nothing()
    {
        using var ns = Prepared(out _);
        Run(ns, ["tun0", "1500", "0", "10.10.10.1", "255.255.255.0", "init"], Hook()).ShouldSucceed();
        var before = ns.Dump();
        var bin = PublicCopy();
        var lockDir = Path.Combine(ns.StateDir, "nobody");

        try
        {
            // As OpenVPN runs --down after "user nobody": its arguments, script_type=down, no PATH.
            var run = Unprivileged(ns, ["--reuid=nobody", "--regid=nogroup", "--clear-groups"], bin,
                ["tun0", "1500", "0", "10.10.10.1", "255.255.255.0", "init"], Hook("down"), lockDir);

            FailsNamingCapabilityAndPlugin(run);
            Assert.Equal(before, ns.Dump());
            Assert.False(Directory.Exists(lockDir));
        }
        finally { Directory.Delete(Path.GetDirectoryName(bin)!, recursive: true); }
    }

    public static TheoryData<string, string> UnsafePolicyFiles => new()
    {
        { "file 0666", "is writable by group or others" },
        { "file 0620", "is writable by group or others" },
        { "file owned by nobody", "is owned by uid 65534" },
        { "directory 0777", "is writable by group or others" },
        { "grandparent 0777", "is writable by group or others" },
        { "directory owned by nobody", "is owned by uid 65534" },
        { "symlink to a file in a 0777 directory", "is writable by group or others" },
    };

    [Theory]
    [MemberData(nameof(UnsafePolicyFiles))]
    public void A_policy_others_could_write_is_refused_as_sshd_StrictModes_refuses_it(string layout, string message)
    {
        using var ns = Prepared(out _);
        var root = Path.Combine(ns.StateDir, "etc");
        var dir = Path.Combine(root, "tunnel-router");
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, "tunnel-router.json");
        File.WriteAllText(path, PolicyA);
        const UnixFileMode Safe = (UnixFileMode)0b110_100_100;
        File.SetUnixFileMode(path, Safe);
        switch (layout)
        {
            case "file 0666": File.SetUnixFileMode(path, (UnixFileMode)0b110_110_110); break;
            case "file 0620": File.SetUnixFileMode(path, (UnixFileMode)0b110_010_000); break;
            case "file owned by nobody": Chown(path); break;
            case "directory 0777": File.SetUnixFileMode(dir, (UnixFileMode)0b111_111_111); break;
            case "grandparent 0777": File.SetUnixFileMode(root, (UnixFileMode)0b111_111_111); break;
            case "directory owned by nobody": Chown(dir); break;
            case "symlink to a file in a 0777 directory":
                var open = Path.Combine(ns.StateDir, "open");
                Directory.CreateDirectory(open);
                File.SetUnixFileMode(open, (UnixFileMode)0b111_111_111);
                File.Move(path, Path.Combine(open, "real.json"));
                File.CreateSymbolicLink(path, Path.Combine(open, "real.json"));
                break;
        }
        var before = ns.Dump();

        var run = Run(ns, ["apply", "--config", path]);

        Assert.NotEqual(0, run.ExitCode);
        var line = Assert.Single(run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("tunnel-router: error: ", line);
        Assert.Contains(message, line);
        Assert.Contains("refusing it", line);
        Assert.Equal(before, ns.Dump());
    }

    static void Chown(string path) => Sh.Run("/usr/bin/chown", ["nobody", path]).ShouldSucceed();

    [Fact]
    public void A_policy_in_a_root_owned_sticky_directory_is_accepted()
    {
        using var ns = Prepared(out _);
        // Like /tmp: world-writable, but with the sticky bit nobody can replace what root put there.
        var sticky = Path.Combine(ns.StateDir, "sticky");
        Directory.CreateDirectory(sticky);
        File.SetUnixFileMode(sticky, (UnixFileMode)0b1_111_111_111);
        var mine = Path.Combine(sticky, "mine");
        Directory.CreateDirectory(mine);
        File.SetUnixFileMode(mine, (UnixFileMode)0b111_101_101);
        var path = Path.Combine(mine, "policy.json");
        File.WriteAllText(path, PolicyA);
        File.SetUnixFileMode(path, (UnixFileMode)0b110_100_100);

        Run(ns, ["apply", "--config", path]).ShouldSucceed();
    }

    [Fact]
    public void Lock_and_name_files_are_not_writable_by_others_even_under_umask_0()
    {
        using var ns = Prepared(out var policy);
        var run = Path.Combine(ns.StateDir, "run", "tunnel-router");
        var names = Path.Combine(ns.StateDir, "iproute2");
        var env = new Dictionary<string, string>(Hook())
        {
            ["TUNNEL_ROUTER_IPROUTE2DIR"] = names,
            ["TUNNEL_ROUTER_CONFIG"] = "", // no policy file: the host's is never read
            ["TUNNEL_ROUTER_LOCKFILE"] = Path.Combine(run, "lock"),
        };

        ns.Exec("/bin/sh", ["-c", "umask 000; exec \"$0\" \"$@\"", Prerequisites.Binary, "up"], env).ShouldSucceed();
        env["TUNNEL_ROUTER_CONFIG"] = policy;
        ns.Exec("/bin/sh", ["-c", "umask 000; exec \"$0\" \"$@\"", Prerequisites.Binary, "apply"], env).ShouldSucceed();

        Assert.Equal((UnixFileMode)0b110_000_000, File.GetUnixFileMode(Path.Combine(run, "lock")));
        Assert.Equal((UnixFileMode)0b111_101_101, File.GetUnixFileMode(run));
        var written = Directory.GetFileSystemEntries(names, "*", SearchOption.AllDirectories);
        Assert.NotEmpty(written);
        Assert.All(written, f => Assert.True((File.GetUnixFileMode(f) & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) == 0,
            $"{f} is {File.GetUnixFileMode(f)}"));
    }

    [Fact]
    public void External_tools_run_by_absolute_path_and_never_through_a_shell()
    {
        using var ns = Prepared(out var policy);
        // A PATH full of impostors: if anything were looked up through PATH (or run through sh), they would
        // leave a mark.
        var fake = Directory.CreateTempSubdirectory("tunnel-router-fakepath-").FullName;
        var marks = Path.Combine(fake, "ran");
        foreach (var tool in new[] { "ip", "sh", "bash", "nft", "sysctl", "iptables" })
        {
            File.WriteAllText(Path.Combine(fake, tool), $"#!/bin/sh\necho {tool} >> {marks}\nexit 1\n");
            File.SetUnixFileMode(Path.Combine(fake, tool), (UnixFileMode)0b111_101_101);
        }
        var trace = Path.Combine(ns.StateDir, "trace");
        try
        {
            var commands = new (string[] Args, Dictionary<string, string> Env)[]
            {
                (["up"], Hook()), (["apply", "--config", policy], []), (["status"], []), (["plan", "--config", policy], []),
                (["doctor", "--config", policy], []), (["explain", "--from", "10.10.10.5", "--to", "192.0.2.1", "--iif", "tun0"], []),
                (["down"], Hook("down")), (["flush"], []),
            };
            var executed = new List<string>();
            foreach (var (args, env) in commands)
            {
                var full = new Dictionary<string, string>(env)
                {
                    ["PATH"] = fake,
                    ["TUNNEL_ROUTER_IPROUTE2DIR"] = Path.Combine(ns.StateDir, "iproute2"),
                    ["TUNNEL_ROUTER_CONFIG"] = "", // no policy file: the host's is never read
                    ["TUNNEL_ROUTER_LOCKFILE"] = Path.Combine(ns.StateDir, "lock"),
                };
                var run = ns.Exec("/usr/bin/strace", ["-f", "-qq", "-e", "trace=execve", "-o", trace, Prerequisites.Binary, .. args], full);
                Assert.True(run.ExitCode is 0 or 1 or 2, $"{string.Join(' ', args)}: exit {run.ExitCode}: {run.Stderr}");
                executed.AddRange(File.ReadLines(trace).Where(l => l.Contains("execve(\""))
                    .Select(l => l[(l.IndexOf("execve(\"") + 8)..].Split('"')[0]));
            }

            Assert.False(File.Exists(marks), "an impostor on PATH ran: " + (File.Exists(marks) ? File.ReadAllText(marks) : ""));
            var tools = executed.Where(e => e != Prerequisites.Binary).Distinct().ToList();
            Assert.NotEmpty(tools);
            Assert.All(tools, t => Assert.True(Path.IsPathRooted(t) && Path.GetFileName(t) is "ip" or "nft", $"ran {t}"));
            Assert.DoesNotContain(tools, t => Path.GetFileName(t) is "sh" or "bash" or "dash");
        }
        finally { Directory.Delete(fake, recursive: true); }
    }
}
