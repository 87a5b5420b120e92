using TunnelRouter.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace TunnelRouter.Tests.Package;

/// <summary>
/// The arm64 package's binary (native AOT, cross compiled here) run under qemu-user on this x86-64 host, in a throwaway
/// network namespace: its help and version, and plan, apply and flush of a small policy, read back from the kernel.
/// qemu-user translates only link, address and route messages on a NETLINK_ROUTE socket (rules and the rest answer
/// EOPNOTSUPP), so the kernel specs run the ip backend (the host's /usr/sbin/ip, forked by the emulated binary); the
/// netlink backend under qemu-user is specified to fail with one line and change nothing.
/// </summary>
[Collection("package")]
public class Arm64QemuSpecs(PackageBuilds builds, ITestOutputHelper output)
{
    const string Qemu = "/usr/bin/qemu-aarch64-static";

    string Binary()
    {
        if (Arm64FactAttribute.Missing() is { } missing) throw new InvalidOperationException(missing);
        var deb = builds.Deb("arm64");
        var dir = Path.Combine(builds.Out, "arm64-extracted");
        if (!File.Exists(Path.Combine(dir, "usr/sbin/tunnel-router")) || File.GetLastWriteTimeUtc(deb) > Directory.GetCreationTimeUtc(dir))
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
            Sh.Run("/usr/bin/dpkg-deb", ["-x", deb, dir]).ShouldSucceed();
        }
        var bin = Path.Combine(dir, "usr/sbin/tunnel-router");
        var header = new byte[20];
        using (var f = File.OpenRead(bin)) f.ReadExactly(header);
        // ELF, e_machine 183 (EM_AARCH64): an arm64 executable, not the host's.
        Assert.Equal(183, BitConverter.ToUInt16(header, 18));
        return bin;
    }

    /// <summary>The arm64 binary under qemu-user. qemu-user (Debian 12's 7.2) sometimes deadlocks a multithreaded program's
    /// child between fork and exec (seen here twice in a few dozen runs of the ip backend, the child a copy of the emulated
    /// program that never becomes ip): such a run is killed after 30 s and run again, up to three times, and said so.
    /// Every command here is idempotent, and what the specs check is the kernel read back afterwards.</summary>
    RunResult Run(NetNs? ns, string[] args, Dictionary<string, string>? env = null)
    {
        string[] argv = ["-L", "/usr/aarch64-linux-gnu", Binary(), .. args];
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var run = ns is null ? Sh.Run(Qemu, argv, env, timeoutMs: 30_000)
                    : Sh.Run("/usr/sbin/ip", ["netns", "exec", ns.Name, Qemu, .. argv], env, timeoutMs: 30_000);
                output.WriteLine($"$ qemu-aarch64-static tunnel-router {string.Join(' ', args)} -> exit {run.ExitCode}\n{run.Stdout}{run.Stderr}");
                return run;
            }
            catch (TimeoutException) when (attempt < 3)
            {
                output.WriteLine($"$ qemu-aarch64-static tunnel-router {string.Join(' ', args)}: hung under qemu-user (attempt {attempt}), killed, run again");
            }
        }
    }

    static string WritePolicy(NetNs ns)
    {
        var path = Path.Combine(ns.StateDir, "policy.json");
        File.WriteAllText(path, """
            {
              "Tables": { "vpn": 200 },
              "FailClosed": [ "vpn" ],
              "Rules": [ "from 10.10.10.0/24 lookup vpn" ],
              "Routes": [ "default via 192.0.2.2 table vpn" ]
            }
            """);
        return path;
    }

    static NetNs Gateway()
    {
        var ns = new NetNs();
        ns.Ip("link", "add", "eth0", "type", "veth", "peer", "name", "eth1");
        ns.Ip("addr", "add", "192.0.2.1/24", "dev", "eth0");
        ns.Ip("link", "set", "eth0", "up");
        ns.Ip("link", "set", "eth1", "up");
        return ns;
    }

    static List<string> Owned(NetNs ns) => CleanRootPackageSpecs.Owned(ns);

    [Arm64Fact]
    public void The_arm64_binary_prints_its_help_and_the_project_files_version_under_qemu()
    {
        var help = Run(null, ["--help"]);
        var version = Run(null, ["--version"]);

        Assert.Equal(0, help.ExitCode);
        Assert.Contains("apply", help.Stdout);
        Assert.Equal($"tunnel-router {builds.Version}", version.Stdout.Trim());
        output.WriteLine(string.Join("\n", builds.Timings));
    }

    [Arm64Fact]
    public void Under_qemu_the_arm64_binary_plans_applies_and_flushes_a_small_policy_in_a_throwaway_namespace()
    {
        using var ns = Gateway();
        var policy = WritePolicy(ns);
        var env = TunnelRouterProcess.Environment(ns, new Dictionary<string, string> { ["TUNNEL_ROUTER_BACKEND"] = "ip" });

        var plan = Run(ns, ["plan", "--config", policy], env);
        Assert.Equal(2, plan.ExitCode);
        Assert.Contains("ip -4 rule add from 10.10.10.0/24 pref 2000 lookup vpn protocol tunnel-router", plan.Stdout);
        Assert.Contains("ip -4 route add default via 192.0.2.2 table vpn proto tunnel-router", plan.Stdout);
        Assert.Empty(Owned(ns));

        Run(ns, ["apply", "--config", policy], env).ShouldSucceed();
        var applied = Owned(ns);
        output.WriteLine("kernel after apply:\n" + string.Join("\n", applied));
        Assert.Contains("2000:\tfrom 10.10.10.0/24 lookup 200 proto 147", applied);
        Assert.Contains("default via 192.0.2.2 dev eth0 table 200 proto 147", applied);
        // ip -N prints the route type as a number: 7, unreachable.
        Assert.Contains(applied, l => l.StartsWith("7 default table 200 proto 147 metric 4294967295", StringComparison.Ordinal));
        Assert.Equal(0, Run(ns, ["plan", "--config", policy], env).ExitCode);

        Run(ns, ["flush", "--config", policy], env).ShouldSucceed();
        var flushed = Owned(ns);
        output.WriteLine("kernel after flush:\n" + string.Join("\n", flushed));
        Assert.DoesNotContain(flushed, l => l.Contains("via 192.0.2.2", StringComparison.Ordinal));
        Assert.Contains("2000:\tfrom 10.10.10.0/24 lookup 200 proto 147", flushed);

        Run(ns, ["flush", "--all", "--config", policy], env).ShouldSucceed();
        Assert.Empty(Owned(ns));
    }

    [Arm64Fact]
    public void Under_qemu_the_netlink_backend_fails_with_one_line_and_changes_nothing()
    {
        using var ns = Gateway();
        var policy = WritePolicy(ns);
        var before = ns.Dump();

        var apply = Run(ns, ["apply", "--config", policy], TunnelRouterProcess.Environment(ns, new Dictionary<string, string> { ["TUNNEL_ROUTER_BACKEND"] = "netlink" }));

        Assert.NotEqual(0, apply.ExitCode);
        Assert.Single(apply.Stderr.Trim().Split('\n'));
        Assert.Contains("netlink", apply.Stderr);
        Assert.Equal(before, ns.Dump());
    }
}
