using System.Text.Json;
using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.Hardening;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary><c>explain</c> on the seeds' topologies, in namespaces: the rule, table, route and next hop it
/// names are the kernel's, and a foreign rule that decided is called one.</summary>
public class ExplainSpecs
{
    /// <summary>Seed 003 (eduVPN): clients on tun0 leave through the vpn table's default route via the NAT
    /// router on wan; the host itself uses main's default route via lan.</summary>
    static NetNs Eduvpn()
    {
        var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24");
        AddVeth(ns, "wan", "192.168.1.2/24");
        AddVeth(ns, "lan", "192.168.2.2/24");
        ns.Ip("route", "add", "default", "via", "192.168.2.1");
        ns.Exec("/usr/sbin/sysctl", ["-qw", "net.ipv4.ip_forward=1"]).ShouldSucceed();
        var policy = WritePolicy(ns, Hardening.Policy(["default via 192.168.1.1 dev wan table vpn"], [], "\"wan\": 100"));
        var env = SubnetEnv("tun0", "10.10.10.1", "255.255.255.0");
        env["TUNNEL_ROUTER_POOLRULES"] = "true";
        Run(ns, ["up"], env).ShouldSucceed();
        Run(ns, ["apply", "--config", policy]).ShouldSucceed();
        return ns;
    }

    /// <summary>Seed 001: two uplinks; web traffic (and marked packets) go out by the second one.</summary>
    static NetNs TwoUplinks()
    {
        var ns = new NetNs();
        AddVeth(ns, "wan1", "192.168.1.2/24");
        AddVeth(ns, "wan2", "192.168.2.2/24");
        ns.Ip("route", "add", "default", "via", "192.168.1.1");
        var policy = WritePolicy(ns, Hardening.Policy(["default via 192.168.2.1 dev wan2 table uplink2"],
            ["ipproto tcp dport 80 lookup uplink2 pref 2000", "fwmark 0x2 lookup uplink2 pref 2010"], "\"uplink2\": 102"));
        Run(ns, ["apply", "--config", policy]).ShouldSucceed();
        return ns;
    }

    static RunResult Explain(NetNs ns, params string[] args) => Run(ns, ["explain", .. args]);

    static string Field(RunResult run, string name) =>
        run.Stdout.Split('\n').FirstOrDefault(l => l.StartsWith(name + ":"))?[(name.Length + 1)..].Trim()
        ?? throw new Xunit.Sdk.XunitException($"no {name} line in:\n{run.Stdout}\n{run.Stderr}");

    [Fact]
    public void A_client_packet_takes_the_hooks_pool_rule_to_the_vpn_table_and_the_NAT_router()
    {
        using var ns = Eduvpn();

        var run = Explain(ns, "--from", "10.10.10.5", "--to", "8.8.8.8", "--iif", "tun0");

        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        Assert.Equal("1000: from 10.10.10.0/24 lookup vpn", Field(run, "Rule"));
        Assert.Contains("tunnel-router's rule (OpenVPN hook, protocol 148)", run.Stdout);
        Assert.Equal("vpn (200)", Field(run, "Table"));
        Assert.StartsWith("default via 192.168.1.1 dev wan proto tunnel-router", Field(run, "Route"));
        Assert.Equal("192.168.1.1 on wan", Field(run, "Next hop"));
        Assert.Equal("ip route get agrees", Field(run, "Kernel"));
    }

    [Fact]
    public void Client_to_client_traffic_stays_on_the_tunnel_by_the_pool_route_in_the_vpn_table()
    {
        using var ns = Eduvpn();

        // No --iif: 10.10.10.5 is reached through tun0, so that is where it comes from.
        var run = Explain(ns, "--from", "10.10.10.5", "--to", "10.10.10.7");

        Assert.Equal(0, run.ExitCode);
        Assert.Contains("assumed: 10.10.10.5 is reached through tun0", Field(run, "Packet"));
        Assert.Equal("vpn (200)", Field(run, "Table"));
        Assert.StartsWith("10.10.10.0/24 dev tun0", Field(run, "Route"));
        Assert.Equal("directly on tun0 (the destination is on that link)", Field(run, "Next hop"));
    }

    [Fact]
    public void The_hosts_own_traffic_is_decided_by_someone_elses_rule_and_says_so()
    {
        using var ns = Eduvpn();

        var run = Explain(ns, "--to", "8.8.8.8");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("32766: from all lookup main", Field(run, "Rule"));
        Assert.Contains("not tunnel-router's: someone else's rule decided it", run.Stdout);
        Assert.Equal("192.168.2.1 on lan", Field(run, "Next hop"));
    }

    [Fact]
    public void A_foreign_rule_before_ours_takes_the_packet_and_is_named_as_foreign()
    {
        using var ns = Eduvpn();
        ns.Ip("route", "add", "default", "via", "192.168.2.1", "table", "300");
        ns.Ip("rule", "add", "from", "10.10.10.0/24", "lookup", "300", "pref", "500");

        var run = Explain(ns, "--from", "10.10.10.5", "--to", "8.8.8.8", "--iif", "tun0");

        Assert.Equal("500: from 10.10.10.0/24 lookup 300", Field(run, "Rule"));
        Assert.Contains("someone else's rule decided it", run.Stdout);
        Assert.Equal("192.168.2.1 on lan", Field(run, "Next hop"));
    }

    [Fact]
    public void Port_and_mark_selectors_send_web_and_marked_traffic_by_the_second_uplink()
    {
        using var ns = TwoUplinks();

        var web = Explain(ns, "--to", "93.184.216.34", "--proto", "tcp", "--sport", "40000", "--dport", "80");
        var ssh = Explain(ns, "--to", "93.184.216.34", "--proto", "tcp", "--sport", "40000", "--dport", "22");
        var marked = Explain(ns, "--to", "93.184.216.34", "--mark", "0x2");

        Assert.Equal("2000: from all ipproto tcp dport 80 lookup uplink2", Field(web, "Rule"));
        Assert.Equal("192.168.2.1 on wan2", Field(web, "Next hop"));
        Assert.Equal("32766: from all lookup main", Field(ssh, "Rule"));
        Assert.Equal("192.168.1.1 on wan1", Field(ssh, "Next hop"));
        Assert.Equal("2010: from all fwmark 0x2 lookup uplink2", Field(marked, "Rule"));
        Assert.Contains("tunnel-router's rule (apply, protocol 147)", marked.Stdout);
        Assert.All(new[] { web, ssh, marked }, r => Assert.Equal("ip route get agrees", Field(r, "Kernel")));
    }

    [Fact]
    public void A_reply_dropped_as_a_martian_by_strict_rp_filter_is_explained_with_the_fix()
    {
        using var ns = TwoUplinks();
        // Seed 001's "packet seems to disappear": an answer arriving on wan2, whose way back is wan1 in main.
        ns.Exec("/usr/sbin/sysctl", ["-qw", "net.ipv4.conf.all.rp_filter=1", "net.ipv4.conf.wan2.rp_filter=1"]).ShouldSucceed();

        var run = Explain(ns, "--from", "8.8.8.8", "--to", "192.168.2.2", "--iif", "wan2");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("the kernel answers", Field(run, "Dropped"));
        var hint = Field(run, "Hint");
        Assert.Contains("martian", hint);
        Assert.Contains("net.ipv4.conf.wan2.rp_filter=2", hint);
        Assert.Contains("log_martians=1", hint);

        ns.Exec("/usr/sbin/sysctl", ["-qw", "net.ipv4.conf.all.rp_filter=2", "net.ipv4.conf.wan2.rp_filter=2"]).ShouldSucceed();
        var loose = Explain(ns, "--from", "8.8.8.8", "--to", "192.168.2.2", "--iif", "wan2");
        Assert.Equal(0, loose.ExitCode);
        Assert.Equal("delivered to this host", Field(loose, "Next hop"));
        Assert.Equal("0: from all lookup local", Field(loose, "Rule"));
    }

    [Fact]
    public void With_forwarding_off_the_drop_is_explained_with_the_sysctl_to_set()
    {
        using var ns = Eduvpn();
        ns.Exec("/usr/sbin/sysctl", ["-qw", "net.ipv4.ip_forward=0"]).ShouldSucceed();

        var run = Explain(ns, "--from", "10.10.10.5", "--to", "8.8.8.8", "--iif", "tun0");

        Assert.Equal(1, run.ExitCode);
        Assert.Equal("1000: from 10.10.10.0/24 lookup vpn", Field(run, "Rule"));
        Assert.Contains("sysctl -w net.ipv4.ip_forward=1", Field(run, "Hint"));
    }

    [Fact]
    public void Json_output_carries_the_rule_table_route_and_next_hop()
    {
        using var ns = Eduvpn();

        var run = Explain(ns, "--from", "10.10.10.5", "--to", "8.8.8.8", "--iif", "tun0", "--json");

        using var doc = JsonDocument.Parse(run.Stdout);
        var root = doc.RootElement;
        Assert.True(root.GetProperty("routed").GetBoolean());
        Assert.Equal(1000u, root.GetProperty("rule").GetProperty("priority").GetUInt32());
        Assert.True(root.GetProperty("rule").GetProperty("ours").GetBoolean());
        Assert.Equal(200u, root.GetProperty("table").GetUInt32());
        Assert.Equal("192.168.1.1", root.GetProperty("gateway").GetString());
        Assert.Equal("wan", root.GetProperty("device").GetString());
        Assert.True(root.GetProperty("kernelAgrees").GetBoolean());
    }

    [Theory]
    [InlineData("--from 10.10.10.5", "--to")]
    [InlineData("--to 8.8.8.256", "--to")]
    [InlineData("--to 8.8.8.8 --from fd00::1", "--from")]
    [InlineData("--to 8.8.8.8 --iif tun0;reboot", "--iif")]
    [InlineData("--to 8.8.8.8 --mark 0x1ffffffff", "--mark")]
    [InlineData("--to 8.8.8.8 --proto tcp --dport 70000", "--dport")]
    [InlineData("--to 8.8.8.8 --dport 80", "--proto")]
    [InlineData("--to 8.8.8.8 --proto gopher", "--proto")]
    [InlineData("--to 8.8.8.8 --via 1.2.3.4", "--via")]
    [InlineData("--to 8.8.8.8 --to 1.1.1.1", "--to")]
    public void Bad_arguments_fail_with_one_line_naming_the_option(string args, string field)
    {
        using var ns = new NetNs();

        var run = Explain(ns, args.Split(' '));

        Assert.NotEqual(0, run.ExitCode);
        var line = Assert.Single(run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"tunnel-router: error: {field}:", line);
    }
}
