using TunnelRouter.Tests.Support;
using Xunit;

namespace TunnelRouter.Tests.Integration;

/// <summary>The files that wire tunnel-router into a host: the systemd unit, the NetworkManager and OpenWrt
/// scripts and the /etc/openvpn/up shims, checked as shipped.</summary>
public class ContribSpecs
{
    static readonly string[] Scripts =
        ["hooks/up", "hooks/down", "contrib/networkmanager/90-tunnel-router", "contrib/openwrt/90-tunnel-router"];

    [Theory]
    [InlineData("tunnel-router.service")]
    [InlineData("tunnel-router-watch.service")]
    public void The_systemd_unit_passes_systemd_analyze_verify_without_a_warning(string name)
    {
        Assert.True(File.Exists("/usr/bin/systemd-analyze"), "systemd-analyze is missing; ./test.sh installs systemd");
        // verify checks that ExecStart= exists and is executable: point it at the binary under test, which is
        // where the unit's /usr/local/sbin/tunnel-router would be after install.sh. No running systemd needed.
        var dir = Directory.CreateTempSubdirectory("tunnel-router-unit-").FullName;
        try
        {
            var unit = Repo.CopyWithBinary($"contrib/systemd/{name}", dir, executable: false);

            var run = Sh.Run("/usr/bin/systemd-analyze", ["verify", "--man=no", unit],
                new Dictionary<string, string> { ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin", ["SYSTEMD_LOG_COLOR"] = "0" });

            Assert.True(run.ExitCode == 0 && run.Stderr.Trim() == "", $"exit {run.ExitCode}: {run.Stderr}{run.Stdout}");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void The_unit_applies_once_after_the_network_is_online_and_flushes_on_stop()
    {
        var unit = File.ReadAllLines(Repo.File("contrib", "systemd", "tunnel-router.service"));

        Assert.Contains("After=network-online.target", unit);
        Assert.Contains("Wants=network-online.target", unit);
        Assert.Contains("Type=oneshot", unit);
        Assert.Contains("RemainAfterExit=yes", unit);
        Assert.Contains("ExecStart=/usr/local/sbin/tunnel-router apply", unit);
        Assert.Contains("ExecStop=/usr/local/sbin/tunnel-router flush", unit);
    }

    [Fact]
    public void The_watch_unit_notifies_readiness_reloads_with_SIGHUP_and_changes_nothing_on_stop()
    {
        var unit = File.ReadAllLines(Repo.File("contrib", "systemd", "tunnel-router-watch.service"));

        Assert.Contains("Type=notify", unit);
        Assert.Contains("ExecStart=/usr/local/sbin/tunnel-router watch", unit);
        Assert.Contains("ExecReload=/bin/kill -HUP $MAINPID", unit);
        Assert.DoesNotContain(unit, l => l.StartsWith("ExecStop", StringComparison.Ordinal));
        // It would restore what tunnel-router.service's stop removes: it stops (first) and restarts with that unit.
        Assert.Contains("PartOf=tunnel-router.service", unit);
        Assert.Contains("After=network-online.target tunnel-router.service", unit);
    }

    [Fact]
    public void Every_shipped_shell_script_is_valid_posix_sh_and_executable()
    {
        foreach (var script in Scripts)
        {
            var path = Repo.File(script.Split('/'));
            var run = Sh.Run("/bin/sh", ["-n", path]);
            Assert.True(run.ExitCode == 0, $"{script}: {run.Stderr}");
            Assert.StartsWith("#!/bin/sh\n", File.ReadAllText(path));
            Assert.True((File.GetUnixFileMode(path) & UnixFileMode.UserExecute) != 0, $"{script} is not executable");
            Assert.Contains("/usr/local/sbin/tunnel-router", File.ReadAllText(path));
        }
    }

    [Fact]
    public void The_up_and_down_shims_pass_OpenVPNs_arguments_through_without_a_PATH()
    {
        using var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24", "fd00:4242:4242:4242::1/64");
        var up = Repo.CopyWithBinary("hooks/up", ns.StateDir);
        var down = Repo.CopyWithBinary("hooks/down", ns.StateDir);
        // What OpenVPN gives /etc/openvpn/up: script_type and the tunnel, no PATH; plus the test's own state dir.
        var env = TunnelRouterProcess.SubnetEnv("tun0", "10.10.10.1", "255.255.255.0", "fd00:4242:4242:4242::1");
        env["TUNNEL_ROUTER_IPROUTE2DIR"] = Path.Combine(ns.StateDir, "iproute2");
        env["TUNNEL_ROUTER_CONFIG"] = ""; // no policy file: the host's is never read
        env["TUNNEL_ROUTER_LOCKFILE"] = Path.Combine(ns.StateDir, "lock");
        string[] openVpnArgs = ["tun0", "1500", "0", "10.10.10.1", "255.255.255.0", "init"];

        ns.Exec(up, openVpnArgs, env).ShouldSucceed();
        var afterUp = ns.Ip("route", "show", "table", "200") + ns.Ip("-6", "route", "show", "table", "200");
        env["script_type"] = "down";
        ns.Exec(down, openVpnArgs, env).ShouldSucceed();
        var afterDown = ns.Ip("route", "show", "table", "all", "proto", "148") + ns.Ip("-6", "route", "show", "table", "all", "proto", "148");

        Assert.Contains("10.10.10.0/24 dev tun0 proto 148", afterUp);
        Assert.Contains("fd00:4242:4242:4242::/64 dev tun0 proto 148", afterUp);
        Assert.Equal("", afterDown.Trim());
    }
}
