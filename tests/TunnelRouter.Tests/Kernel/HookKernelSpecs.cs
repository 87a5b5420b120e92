using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary>The published binary as OpenVPN's --up/--down hook, in a namespace of the test's own.</summary>
public class HookKernelSpecs
{
    static Dictionary<string, string> Eduvpn(string dev = "tun0", string v4 = "10.10.10.1", string v6 = "fd00:4242:4242:4242::1",
        string scriptType = "up") => SubnetEnv(dev, v4, "255.255.255.0", v6, 64, scriptType);

    static string[] OpenVpnArgs(string dev = "tun0", string v4 = "10.10.10.1") => [dev, "1500", "0", v4, "255.255.255.0", "init"];

    /// <summary>Table 200 as ip prints it, without "linkdown" (a tun nobody reads is down; it does not matter here).</summary>
    static string Table200(NetNs ns) => Show(ns, "-4") + Show(ns, "-6");

    static string Show(NetNs ns, string family) =>
        ns.Ip(family, "route", "show", "table", "200").Replace(" linkdown", "");

    [Fact]
    public void Up_installs_the_tunnel_networks_on_the_device_in_table_200_with_our_protocol()
    {
        using var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24", "fd00:4242:4242:4242::1/64");

        var run = Run(ns, OpenVpnArgs(), Eduvpn()).ShouldSucceed();

        Assert.Equal("10.10.10.0/24 dev tun0 proto 148 scope link", Show(ns, "-4").Trim());
        Assert.Equal("fd00:4242:4242:4242::/64 dev tun0 proto 148 metric 1024 pref medium", Show(ns, "-6").Trim());
        Assert.Contains("[#] ip -4 route add 10.10.10.0/24 dev tun0 table vpn proto tunnel-router-hook", run.Stderr);
        Assert.Contains("200\tvpn", File.ReadAllText(Path.Combine(ns.StateDir, "iproute2", "rt_tables.d", "tunnel-router.conf")));
        Assert.Contains("148\ttunnel-router-hook", File.ReadAllText(Path.Combine(ns.StateDir, "iproute2", "rt_protos.d", "tunnel-router.conf")));
    }

    [Fact]
    public void A_second_up_changes_nothing_and_exits_0()
    {
        using var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24", "fd00:4242:4242:4242::1/64");
        Run(ns, OpenVpnArgs(), Eduvpn()).ShouldSucceed();
        var before = ns.Dump();

        var again = Run(ns, OpenVpnArgs(), Eduvpn()).ShouldSucceed();

        Assert.Equal(before, ns.Dump());
        Assert.DoesNotContain("[#]", again.Stderr);
    }

    [Fact]
    public void Up_and_down_from_the_environment_alone_as_the_down_root_plugin_calls_it()
    {
        using var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24", "fd00:4242:4242:4242::1/64");
        var env = Eduvpn();
        env.Remove("script_type");

        Run(ns, ["up"], env).ShouldSucceed();
        Assert.Contains("10.10.10.0/24", Table200(ns));

        Run(ns, ["down"], env).ShouldSucceed();
        Assert.Equal("", Table200(ns).Trim());
    }

    [Fact]
    public void A_foreign_route_in_table_200_survives_up_and_down()
    {
        using var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24", "fd00:4242:4242:4242::1/64");
        ns.Ip("route", "add", "192.0.2.0/24", "dev", "tun0", "table", "200");
        ns.Ip("-6", "route", "add", "2001:db8::/64", "dev", "tun0", "table", "200");

        Run(ns, OpenVpnArgs(), Eduvpn()).ShouldSucceed();
        Run(ns, OpenVpnArgs(), Eduvpn(scriptType: "down")).ShouldSucceed();

        Assert.Equal("192.0.2.0/24 dev tun0 scope link \n2001:db8::/64 dev tun0 metric 1024 pref medium\n", Table200(ns));
    }

    [Fact]
    public void Down_with_persist_tun_removes_ours_while_the_device_stays()
    {
        using var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24", "fd00:4242:4242:4242::1/64");
        Run(ns, OpenVpnArgs(), Eduvpn()).ShouldSucceed();

        Run(ns, OpenVpnArgs(), Eduvpn(scriptType: "down")).ShouldSucceed();

        Assert.Equal("", Table200(ns).Trim());
        Assert.Contains("tun0", ns.Ip("link", "show", "tun0"));
    }

    [Fact]
    public void Down_after_the_device_is_gone_is_a_clean_no_op()
    {
        using var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24", "fd00:4242:4242:4242::1/64");
        Run(ns, OpenVpnArgs(), Eduvpn()).ShouldSucceed();
        ns.Ip("link", "del", "tun0");

        var down = Run(ns, OpenVpnArgs(), Eduvpn(scriptType: "down")).ShouldSucceed();

        Assert.Equal("", Table200(ns).Trim());
        Assert.DoesNotContain("error", down.Stderr);
    }

    [Fact]
    public void Pool_rules_come_and_go_with_the_tunnel()
    {
        using var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24", "fd00:4242:4242:4242::1/64");
        var env = Eduvpn();
        env["TUNNEL_ROUTER_POOLRULES"] = "true";

        Run(ns, OpenVpnArgs(), env).ShouldSucceed();
        Assert.Contains("1000:\tfrom 10.10.10.0/24 lookup 200 proto 148", ns.Ip("-4", "rule", "show"));
        Assert.Contains("1000:\tfrom fd00:4242:4242:4242::/64 lookup 200 proto 148", ns.Ip("-6", "rule", "show"));

        env["script_type"] = "down";
        Run(ns, OpenVpnArgs(), env).ShouldSucceed();
        Assert.DoesNotContain("proto 148", ns.Ip("-4", "rule", "show") + ns.Ip("-6", "rule", "show"));
    }

    [Fact]
    public void Sixteen_concurrent_ups_all_succeed_and_every_route_is_present_once()
    {
        using var ns = new NetNs();
        for (var i = 0; i < 16; i++) ns.AddTun($"tun{i}", $"10.{100 + i}.0.1/24", $"fd00:{i:x}::1/64");

        var results = Enumerable.Range(0, 16).AsParallel().WithDegreeOfParallelism(16)
            .Select(i => Run(ns, OpenVpnArgs($"tun{i}", $"10.{100 + i}.0.1"), Eduvpn($"tun{i}", $"10.{100 + i}.0.1", $"fd00:{i:x}::1")))
            .ToList();

        Assert.All(results, r => r.ShouldSucceed());
        var v4 = ns.Ip("-4", "route", "show", "table", "200", "proto", "148").Trim().Split('\n');
        var v6 = ns.Ip("-6", "route", "show", "table", "200", "proto", "148").Trim().Split('\n');
        Assert.Equal(16, v4.Distinct().Count());
        Assert.Equal(16, v4.Length);
        Assert.Equal(16, v6.Distinct().Count());
        Assert.Equal(16, v6.Length);
    }

    [Fact]
    public void A_failure_half_way_rolls_back_and_leaves_the_table_as_it_was()
    {
        using var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24");
        ns.Ip("route", "add", "192.0.2.0/24", "dev", "tun0", "table", "200");
        // IPv6 off on the device: the IPv4 route goes in first, then the IPv6 one fails for real.
        ns.Exec("/usr/sbin/sysctl", ["-qw", "net.ipv6.conf.tun0.disable_ipv6=1"]).ShouldSucceed();
        var before = ns.Dump();

        var up = Run(ns, OpenVpnArgs(), Eduvpn());

        Assert.NotEqual(0, up.ExitCode);
        Assert.Contains("rolled back 1 change", up.Stderr);
        Assert.Equal(before, ns.Dump());
        Assert.Single(up.Stderr.Split('\n'), l => l.StartsWith("tunnel-router: error:"));
    }

    [Fact]
    public void Dry_run_prints_the_plan_and_changes_nothing()
    {
        using var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24", "fd00:4242:4242:4242::1/64");
        var before = ns.Dump();

        var run = Run(ns, ["up", "--dry-run"], Eduvpn()).ShouldSucceed();

        Assert.Equal(before, ns.Dump());
        Assert.Contains("[#] ip -6 route add fd00:4242:4242:4242::/64 dev tun0 table vpn", run.Stderr);
        Assert.False(File.Exists(Path.Combine(ns.StateDir, "iproute2", "rt_tables.d", "tunnel-router.conf")));
    }

    [Fact]
    public void A_table_name_the_host_defines_keeps_its_number()
    {
        using var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24");
        Directory.CreateDirectory(Path.Combine(ns.StateDir, "iproute2"));
        File.WriteAllText(Path.Combine(ns.StateDir, "iproute2", "rt_tables"), "255 local\n254 main\n253 default\n0 unspec\n42 vpn\n");
        var env = Eduvpn();
        env.Remove("ifconfig_ipv6_local");
        env.Remove("ifconfig_ipv6_netbits");

        Run(ns, OpenVpnArgs(), env).ShouldSucceed();

        Assert.Contains("10.10.10.0/24 dev tun0", ns.Ip("route", "show", "table", "42"));
        Assert.False(File.Exists(Path.Combine(ns.StateDir, "iproute2", "rt_tables.d", "tunnel-router.conf")));
    }

    [Theory]
    [InlineData("ifconfig_local", "1.2.3.256")]
    [InlineData("ifconfig_netmask", "255.0.255.0")]
    [InlineData("dev", "tun0; reboot")]
    [InlineData("dev", "tun0123456789abcd")]
    [InlineData("ifconfig_ipv6_netbits", "129")]
    [InlineData("ifconfig_ipv6_local", "")]
    [InlineData("ifconfig_local", "١٠.10.10.1")]
    public void Hostile_environment_values_fail_with_one_line_naming_the_variable_and_change_nothing(string key, string value)
    {
        using var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24", "fd00:4242:4242:4242::1/64");
        var env = Eduvpn();
        env[key] = value;
        var before = ns.Dump();

        var run = Run(ns, ["up"], env);

        Assert.NotEqual(0, run.ExitCode);
        var line = Assert.Single(run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"tunnel-router: error: {key}:", line);
        Assert.Equal(before, ns.Dump());
    }
}
