using System.Text;
using TunnelRouter.Tests.EndToEnd;
using TunnelRouter.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace TunnelRouter.Tests.Package;

/// <summary>
/// The amd64 package as an admin meets it, in a clean Debian 12 root booted with its own systemd (<see cref="DebianContainer"/>),
/// whose network is a gateway namespace of the test's: a LAN host behind it, a far host beyond its plain uplink that
/// counts every LAN packet reaching it (in clear). The policy the admin writes sends the LAN into a table that fails
/// closed and has no route yet: its kill switch refuses the LAN's traffic. The package is installed, the policy edited,
/// the units enabled; then the package is upgraded, removed and purged while the LAN pings the far host.
/// </summary>
[Collection("package")]
public class CleanRootPackageSpecs(PackageBuilds builds, ITestOutputHelper output)
{
    const string Far = "198.51.100.2";

    const string Policy = """
        {
          "Tables": { "vpn": 200 },
          "FailClosed": [ "vpn" ],
          "Rules": [ "from 192.168.10.0/24 lookup vpn" ]
        }
        """;

    [Fact]
    public void In_a_clean_Debian_12_root_install_changes_nothing_an_upgrade_keeps_the_policy_and_the_kill_switch_and_purge_leaves_nothing()
    {
        var previous = builds.Deb("amd64", PackageBuilds.PreviousVersion);
        var current = builds.Deb("amd64");
        using var gw = new NetNs();
        using var lan = new NetNs();
        using var far = new NetNs();
        Wire(gw, lan, far);
        using var debian = new DebianContainer(gw);
        var log = new StringBuilder();
        RunResult Step(string what, params string[] args)
        {
            var run = debian.Run(args);
            log.AppendLine($"## {what}: {string.Join(' ', args)} -> exit {run.ExitCode}");
            log.Append(run.Stdout);
            log.Append(run.Stderr);
            return run;
        }
        try
        {
            var files = debian.Files();
            var kernel = Owned(gw);
            // The counter sees the LAN's traffic in clear while nothing refuses it.
            var control = Clear(far);
            lan.Exec("/usr/bin/ping", ["-n", "-q", "-c", "5", "-i", "0.05", Far]);
            var leakedWithoutPolicy = Clear(far) - control;
            log.AppendLine($"## before the package: the LAN's pings in clear at the far host: {leakedWithoutPolicy} (the counter works)");
            Assert.True(leakedWithoutPolicy > 0, "the far host counted none of the LAN's pings before any policy: the measurement sees nothing\n" + log);

            // Install: doctor runs, nothing changes, no unit is enabled.
            Step($"install the previous build ({PackageBuilds.PreviousVersion})", "dpkg", "-i", debian.Copy(previous)).ShouldSucceed();
            Assert.Contains($"tunnel-router {PackageBuilds.PreviousVersion}", Step("version", "tunnel-router", "--version").ShouldSucceed().Stdout);
            Assert.Equal(kernel, Owned(gw));
            Assert.Equal("disabled\ndisabled", Step("units enabled?", "systemctl", "is-enabled", "tunnel-router.service", "tunnel-router-watch.service").Stdout.Trim());

            // The admin edits the policy and enables the units: the kill switch and the rule into it are in place.
            File.WriteAllText(debian.Root + "/etc/tunnel-router/tunnel-router.json", Policy);
            Step("the admin enables the units", "systemctl", "enable", "--now", "tunnel-router.service", "tunnel-router-watch.service").ShouldSucceed();
            var applied = Owned(gw);
            log.AppendLine("## owned objects in the gateway's kernel:\n" + string.Join("\n", applied));
            Assert.Contains(applied, l => l.Contains("from 192.168.10.0/24 lookup 200 proto 147", StringComparison.Ordinal));
            // ip -N prints the route type as a number: 7, unreachable.
            Assert.Contains(applied, l => l.StartsWith("7 default table 200 proto 147 metric 4294967295", StringComparison.Ordinal));

            // The upgrade, with the LAN pinging: nothing in clear, every owned object still there, the unit still active.
            var upgrade = WithTraffic(lan, far, () => Step($"upgrade to {builds.Version}", "dpkg", "-i", debian.Copy(current)), out var sent, out var inClear);
            log.AppendLine($"## across the upgrade: {sent} pings sent, {inClear} in clear");
            upgrade.ShouldSucceed();
            Assert.Contains($"tunnel-router {builds.Version}", Step("version", "tunnel-router", "--version").ShouldSucceed().Stdout);
            Assert.Equal(Policy, File.ReadAllText(debian.Root + "/etc/tunnel-router/tunnel-router.json"));
            Assert.Equal(applied, Owned(gw));
            Assert.Equal("active\nactive", Step("units active?", "systemctl", "is-active", "tunnel-router.service", "tunnel-router-watch.service").Stdout.Trim());
            Assert.True(sent > 0 && inClear == 0, $"{inClear} of {sent} LAN pings reached the far host in clear across the upgrade\n{log}");

            Step("doctor", "tunnel-router", "doctor").ShouldSucceed();
            // nspawn mounts /proc/sys read-only in the container, where the demo's lab could not switch on forwarding in
            // its namespaces: the demo runs in the same root by chroot, in the gateway's network namespace.
            var demo = debian.Chroot(gw, "tunnel-router", "demo");
            log.AppendLine($"## demo (chroot into the root): tunnel-router demo -> exit {demo.ExitCode}\n{demo.Stdout}{demo.Stderr}");
            demo.ShouldSucceed();

            // The leak matrix's rows under a real systemd (docs/leak-matrix.md): the shipped units' own restarts and stops,
            // a restart after a typo, with the LAN pinging every 20 ms; the far host counts what arrives in clear.
            var rows = new List<(string Event, long Sent, long InClear)>();
            void Row(string what, Action act)
            {
                WithTraffic(lan, far, () => { act(); return 0; }, out var rowSent, out var rowClear);
                rows.Add((what, rowSent, rowClear));
                log.AppendLine($"## row: {what}: {rowSent} pings sent, {rowClear} in clear");
            }
            Row("systemctl restart tunnel-router", () => Step("restart", "systemctl", "restart", "tunnel-router.service").ShouldSucceed());
            Row("systemctl restart tunnel-router-watch", () => Step("restart watch", "systemctl", "restart", "tunnel-router-watch.service").ShouldSucceed());
            Row("a typo in the policy, then systemctl restart tunnel-router", () =>
            {
                File.WriteAllText(debian.Root + "/etc/tunnel-router/tunnel-router.json", Policy.Replace("],", "]", StringComparison.Ordinal));
                Assert.NotEqual(0, Step("restart on the typo", "systemctl", "restart", "tunnel-router.service").ExitCode);
            });
            Assert.Equal(applied, Owned(gw));
            File.WriteAllText(debian.Root + "/etc/tunnel-router/tunnel-router.json", Policy);
            Row("the typo mended, systemctl restart tunnel-router", () => Step("restart mended", "systemctl", "restart", "tunnel-router.service").ShouldSucceed());
            Row("systemctl stop tunnel-router-watch tunnel-router, then start", () =>
            {
                Step("stop", "systemctl", "stop", "tunnel-router-watch.service", "tunnel-router.service").ShouldSucceed();
                Step("start", "systemctl", "start", "tunnel-router.service", "tunnel-router-watch.service").ShouldSucceed();
            });
            Assert.Equal(applied, Owned(gw));

            // Remove stops the units (flush): the kill switch and its rule stay, the policy stays.
            var remove = WithTraffic(lan, far, () => Step("remove", "dpkg", "-r", "tunnel-router"), out var sentRemove, out var clearRemove);
            log.AppendLine($"## across the remove: {sentRemove} pings sent, {clearRemove} in clear");
            remove.ShouldSucceed();
            Assert.True(File.Exists(debian.Root + "/etc/tunnel-router/tunnel-router.json"), "remove took the policy\n" + log);
            Assert.False(File.Exists(debian.Root + "/usr/sbin/tunnel-router"));
            Assert.True(sentRemove > 0 && clearRemove == 0, $"{clearRemove} of {sentRemove} LAN pings in clear across the remove\n{log}");
            Assert.Equal(applied, Owned(gw));

            // Purge: nothing of the package is left in the root.
            Step("purge", "dpkg", "-P", "tunnel-router").ShouldSucceed();
            var left = debian.Files();
            var added = left.Except(files).ToList();
            var lost = files.Except(left).ToList();
            log.AppendLine($"## after the purge, beside the clean root: {added.Count} paths added, {lost.Count} removed{string.Concat(added.Select(p => "\n+ " + p))}{string.Concat(lost.Select(p => "\n- " + p))}");
            Assert.Empty(added);
            Assert.Empty(lost);
            Assert.Equal("", Step("dpkg's record", "dpkg-query", "-W", "-f=${db:Status-Abbrev}", "tunnel-router").Stdout.Trim());

            // install.sh, not the package, in the same root: its --uninstall stops and disables the running units under
            // this systemd while the LAN pings. The kill switch and the rule into it stay; nothing leaves in clear.
            var src = debian.Root + "/root/src";
            Directory.CreateDirectory(src);
            foreach (var dir in new[] { "hooks", "contrib", "scripts" }) Sh.Run("/bin/cp", ["-a", Repo.File(dir), src + "/" + dir]).ShouldSucceed();
            File.Copy(Repo.File("install.sh"), src + "/install.sh");
            var binary = debian.Copy(Prerequisites.Binary);
            Step("install.sh", "/bin/sh", "-c", $"cd /root/src && ./install.sh --binary {binary}").ShouldSucceed();
            File.WriteAllText(debian.Root + "/etc/tunnel-router/tunnel-router.json", Policy);
            Step("the admin enables install.sh's units", "systemctl", "enable", "--now", "tunnel-router.service", "tunnel-router-watch.service").ShouldSucceed();
            Row("install.sh --uninstall (stops and disables the units)", () => Step("uninstall", "/bin/sh", "-c", "cd /root/src && ./install.sh --uninstall").ShouldSucceed());
            Assert.False(File.Exists(debian.Root + "/usr/local/sbin/tunnel-router"), "install.sh --uninstall left the binary\n" + log);
            Assert.Equal(applied, Owned(gw));

            var table = new StringBuilder("| event (a real systemd, Debian 12 root) | LAN pings sent | in clear at the far host |\n|---|---|---|\n");
            foreach (var (what, rowSent, rowClear) in rows) table.AppendLine($"| {what} | {rowSent} | {rowClear} |");
            output.WriteLine(table.ToString());
            Assert.All(rows, r => Assert.True(r.Sent > 0 && r.InClear == 0, $"{r.Event}: {r.InClear} of {r.Sent} LAN pings in clear\n{table}\n{log}"));
        }
        finally
        {
            output.WriteLine(string.Join("\n", builds.Timings));
            output.WriteLine(debian.Timing);
            output.WriteLine(log.ToString());
        }
    }

    /// <summary>Runs <paramref name="act"/> while the LAN host pings the far host every 20 ms; counts what was sent and
    /// what the far host saw in clear meanwhile.</summary>
    static T WithTraffic<T>(NetNs lan, NetNs far, Func<T> act, out long sent, out long inClear)
    {
        var start = Clear(far);
        T result;
        using (var ping = new PingLoop(lan, Far, v6: false, intervalMs: 20, maxSeconds: 120))
        {
            Thread.Sleep(300);
            result = act();
            Thread.Sleep(500);
            sent = ping.Stop();
        }
        inClear = Clear(far) - start;
        return result;
    }

    static long Clear(NetNs far) => OpenVpnLab.Counter(far, "seen", 0);

    /// <summary>The routes and rules with tunnel-router's protocol (147) in a namespace, as ip -N prints them.</summary>
    internal static List<string> Owned(NetNs gw) =>
    [
        .. new[] { "-4", "-6" }.SelectMany(f => Lines(Sh.Ip("-N", "-n", gw.Name, f, "rule", "show"))
            .Concat(Lines(Sh.Ip("-N", "-n", gw.Name, f, "route", "show", "table", "all")))).Where(l => l.Contains("proto 147", StringComparison.Ordinal)),
    ];

    static IEnumerable<string> Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>LAN 192.168.10.2 behind the gateway (192.168.10.1), whose plain uplink leads to the far host, which counts
    /// every packet from the LAN.</summary>
    static void Wire(NetNs gw, NetNs lan, NetNs far)
    {
        Sh.Ip("link", "add", "lan0", "netns", gw.Name, "type", "veth", "peer", "name", "eth0", "netns", lan.Name);
        Sh.Ip("link", "add", "up0", "netns", gw.Name, "type", "veth", "peer", "name", "eth0", "netns", far.Name);
        gw.Ip("addr", "add", "192.168.10.1/24", "dev", "lan0");
        gw.Ip("addr", "add", "198.51.100.1/24", "dev", "up0");
        lan.Ip("addr", "add", "192.168.10.2/24", "dev", "eth0");
        far.Ip("addr", "add", $"{Far}/24", "dev", "eth0");
        foreach (var (ns, dev) in new[] { (gw, "lan0"), (gw, "up0"), (lan, "eth0"), (far, "eth0") }) ns.Ip("link", "set", dev, "up");
        lan.Ip("route", "add", "default", "via", "192.168.10.1");
        gw.Ip("route", "add", "default", "via", Far);
        far.Ip("route", "add", "192.168.10.0/24", "via", "198.51.100.1");
        gw.Exec("/usr/sbin/sysctl", ["-qw", "net.ipv4.ip_forward=1"]).ShouldSucceed();
        far.Exec("/usr/sbin/nft", ["-f", "-"], stdin: """
            table inet lab {
                chain seen {
                    type filter hook prerouting priority 0;
                    ip saddr 192.168.10.0/24 counter
                }
            }
            """).ShouldSucceed();
    }
}
