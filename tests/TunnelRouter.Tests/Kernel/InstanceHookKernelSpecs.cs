using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary>Issue 13: the hook's Instances lines in a namespace of the test's own, on both backends.</summary>
public class InstanceHookKernelSpecs
{
    const string Policy = """
        { "Tables": { "nyet": 100 },
          "Instances": [ { "Dev": "tun*",
            "Rules":  [ "from 192.168.10.0/24 to 198.51.100.7 lookup nyet" ],
            "Routes": [ "198.51.100.7 via ${route_vpn_gateway} table nyet", "10.8.0.0/24 dev ${dev} table nyet" ] } ] }
        """;

    static Dictionary<string, string> Client(string scriptType = "up")
    {
        var env = SubnetEnv("tun2", "10.8.0.2", "255.255.255.0", scriptType: scriptType);
        env["route_vpn_gateway"] = "10.8.0.1";
        env["remote_1"] = "198.51.100.7";
        return env;
    }

    static string Nyet(NetNs ns) => ns.Ip("route", "show", "table", "100").Replace(" linkdown", "");

    [Fact]
    public void Up_installs_the_resolved_lines_gateway_route_after_the_one_that_reaches_it_and_down_removes_them()
    {
        using var ns = new NetNs();
        ns.AddTun("tun2", "10.8.0.2/24");
        var policy = Topology.Policy(ns, Policy);

        var up = Run(ns, ["up", "-c", policy], Client()).ShouldSucceed();

        Assert.Contains("198.51.100.7 via 10.8.0.1 dev tun2 proto 148", Nyet(ns));
        Assert.Contains("from 192.168.10.0/24 to 198.51.100.7 lookup 100 proto 148", ns.Ip("rule", "show"));
        // The file lists the route via the gateway first; the route that makes the gateway reachable goes in first.
        Assert.True(up.Stderr.IndexOf("route add 10.8.0.0/24 dev tun2 table nyet", StringComparison.Ordinal)
                    < up.Stderr.IndexOf("route add 198.51.100.7 via 10.8.0.1", StringComparison.Ordinal), up.Stderr);

        Run(ns, ["down", "-c", policy], Client("down")).ShouldSucceed();

        Assert.DoesNotContain("proto 148", Nyet(ns));
        Assert.DoesNotContain("proto 148", ns.Ip("rule", "show"));
    }

    [Fact]
    public void Apply_restores_an_instance_line_someone_deleted_exactly_as_up_made_it()
    {
        using var ns = new NetNs();
        ns.AddTun("tun2", "10.8.0.2/24");
        var policy = Topology.Policy(ns, Policy);
        Run(ns, ["up", "-c", policy], Client()).ShouldSucceed();
        var before = ns.Dump();
        ns.Ip("route", "del", "198.51.100.7", "table", "100");
        ns.Ip("rule", "del", "from", "192.168.10.0/24", "to", "198.51.100.7", "table", "100");

        Assert.Equal(2, Run(ns, ["plan", "-c", policy]).ExitCode);
        var applied = Run(ns, ["apply", "-c", policy]).ShouldSucceed();
        var again = Run(ns, ["plan", "-c", policy]);
        Assert.True(again.ExitCode == 0, $"record: {File.ReadAllText(ns.RecordPath("tun2"))}\napply: {applied.Stderr}\nplan: {again.Stdout}{again.Stderr}");

        // The rule comes back with its "to", the route with its gateway: the very objects up made.
        Assert.Equal(before, ns.Dump());
        Assert.Equal(0, Run(ns, ["plan", "-c", policy]).ExitCode);
    }

    [Fact]
    public void A_down_with_no_record_removes_the_lines_its_environment_resolves()
    {
        using var ns = new NetNs();
        ns.AddTun("tun2", "10.8.0.2/24");
        var policy = Topology.Policy(ns, Policy);
        Run(ns, ["up", "-c", policy], Client()).ShouldSucceed();
        File.Delete(ns.RecordPath("tun2"));

        Run(ns, ["down", "-c", policy], Client("down")).ShouldSucceed();

        Assert.DoesNotContain("proto 148", Nyet(ns));
        Assert.DoesNotContain("proto 148", ns.Ip("rule", "show"));
    }

    [Fact]
    public void A_hostile_gateway_changes_nothing_and_writes_no_record()
    {
        using var ns = new NetNs();
        ns.AddTun("tun2", "10.8.0.2/24");
        var policy = Topology.Policy(ns, Policy);
        var before = ns.Dump();
        var env = Client();
        env["route_vpn_gateway"] = "10.8.0.1 table main";

        var run = Run(ns, ["up", "-c", policy], env);

        Assert.NotEqual(0, run.ExitCode);
        Assert.StartsWith("tunnel-router: error: route_vpn_gateway: '10.8.0.1 table main' is more than one word", run.Stderr);
        Assert.Equal(before, ns.Dump());
        Assert.False(File.Exists(ns.RecordPath("tun2")));
    }
}
