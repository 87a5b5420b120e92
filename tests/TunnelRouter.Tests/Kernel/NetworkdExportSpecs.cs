using System.Diagnostics;
using System.Text.RegularExpressions;
using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary>
/// export --format networkd, proven with Debian's own systemd-networkd: it runs in a namespace of its own (a
/// private mount namespace with its runtime directory on a tmpfs, and /sys read-only there so that it does not
/// wait for udev, which a test namespace has not), reads the exported drop-ins beside the admin's .network file,
/// and must make the rules and routes that apply makes for the same policy.
/// </summary>
public partial class NetworkdExportSpecs
{
    const string Networkd = "/lib/systemd/systemd-networkd";

    static NetNs Server()
    {
        var ns = new NetNs();
        Hardening.AddVeth(ns, "eth1");
        return ns;
    }

    [GeneratedRegex(@" proto \S+| metric 1024| pref medium|\s+$")]
    private static partial Regex Ownership();

    /// <summary>The policy's part of the kernel: its rules and table 200, whoever made them.</summary>
    static string[] Routing(NetNs ns) =>
        new[] { "-4", "-6" }.SelectMany(f =>
                ns.Ip(f, "rule", "show").Split('\n').Where(l => l.StartsWith("20"))
                    // Until a route is in it the table does not exist, and ip says so on stderr: empty, for the poll.
                    .Concat(ns.Exec("/usr/sbin/ip", [f, "route", "show", "table", "200"]).Stdout.Split('\n')))
            .Select(l => Ownership().Replace(l.Trim(), "")).Where(l => l.Length > 0).ToArray();

    [Fact]
    public void Systemd_networkd_on_the_exported_drop_ins_makes_the_rules_and_routes_apply_makes()
    {
        using var applied = Server();
        applied.Ip("addr", "add", "192.168.1.100/24", "dev", "eth1");
        applied.Ip("-6", "addr", "add", "fd00:1010:1010:1010::100/64", "dev", "eth1", "nodad");
        var policy = Topology.Example(applied, "eduvpn-nat-router.json");
        Run(applied, ["apply", "-c", policy]).ShouldSucceed();
        var exported = Path.Combine(applied.StateDir, "export");
        Run(applied, ["export", "--format", "networkd", "--out", exported, "-c", policy]).ShouldSucceed();
        var dropIn = Path.Combine(exported, "etc/systemd/network/eth1.network.d/tunnel-router.conf");
        Assert.True(File.Exists(dropIn), string.Join("\n", Directory.GetFiles(exported, "*", SearchOption.AllDirectories)));

        // The admin's own .network for eth1, and the export as its drop-in.
        using var networkd = Server();
        var config = Path.Combine(networkd.StateDir, "network");
        Directory.CreateDirectory(Path.Combine(config, "10-eth1.network.d"));
        File.WriteAllText(Path.Combine(config, "10-eth1.network"),
            "[Match]\nName=eth1\n\n[Network]\nAddress=192.168.1.100/24\nAddress=fd00:1010:1010:1010::100/64\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n");
        File.Copy(dropIn, Path.Combine(config, "10-eth1.network.d", "tunnel-router.conf"));
        var psi = new ProcessStartInfo("/usr/sbin/ip") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in (string[])["netns", "exec", networkd.Name, "/usr/bin/unshare", "-m", "--propagation", "private", "/bin/sh", "-c",
                     "mount -t tmpfs tmpfs /run && mount -o remount,bind,ro /sys && mkdir -p /run/systemd/network && cp -r \"$0\"/. /run/systemd/network/ && exec " + Networkd,
                     config])
            psi.ArgumentList.Add(a);
        psi.Environment.Clear();
        var log = new System.Text.StringBuilder();
        using var p = new Process { StartInfo = psi };
        p.ErrorDataReceived += (_, e) => { lock (log) log.Append(e.Data).Append('\n'); };
        p.OutputDataReceived += (_, _) => { };
        p.Start();
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        try
        {
            // networkd configures the link in its own time: wait until it has (or gave up), then compare.
            var want = Routing(applied);
            var clock = Stopwatch.StartNew();
            while (Routing(networkd).Length < want.Length && !p.HasExited && clock.Elapsed < TimeSpan.FromSeconds(60)) Thread.Sleep(50);

            Assert.True(want.Length >= 4, string.Join("\n", want));
            Assert.Equal(want, Routing(networkd));
        }
        finally
        {
            try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            p.WaitForExit();
        }
        lock (log) Assert.DoesNotContain("Failed to parse", log.ToString());
    }
}
