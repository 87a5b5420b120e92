using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary>Issue 21, invariant 4 on a real kernel, both backends: a hostile route-gateway (the client's own WAN gateway)
/// never takes seed 000's LAN traffic past the tunnel.</summary>
public class InstanceBindingKernelSpecs
{
    static string Policy(NetNs ns, string route) => Topology.Policy(ns, $$"""
        { "Tables": { "nyet": 100 },
          "FailClosed": [ "nyet" ],
          "Instances": [ { "Dev": "tun2",
            "Rules":  [ "from 192.168.10.0/24 to 198.51.100.7 lookup nyet" ],
            "Routes": [ "{{route}}" ] } ] }
        """);

    static Dictionary<string, string> Client(string gateway)
    {
        var env = SubnetEnv("tun2", "10.8.0.2", "255.255.255.0");
        env["route_vpn_gateway"] = gateway;
        return env;
    }

    static NetNs Router()
    {
        var ns = new NetNs();
        ns.AddTun("wan0", "192.0.2.2/24");
        ns.Ip("route", "add", "default", "via", "192.0.2.1", "dev", "wan0", "onlink");
        ns.AddTun("tun2", "10.8.0.2/24");
        return ns;
    }

    [Fact]
    public void A_route_without_dev_goes_through_the_tunnel_and_a_pushed_wan_gateway_is_refused_by_the_kernel()
    {
        using var ns = Router();
        var policy = Policy(ns, "default via ${route_vpn_gateway} table nyet");

        var up = Run(ns, ["up", "-c", policy], Client("10.8.0.1")).ShouldSucceed();
        Run(ns, ["down", "-c", policy], Client("10.8.0.1")).ShouldSucceed();
        var hostile = Run(ns, ["up", "-c", policy], Client("192.0.2.1"));

        Assert.Contains("[#] ip -4 route add default via 10.8.0.1 dev tun2 table nyet", up.Stderr);
        Assert.NotEqual(0, hostile.ExitCode);
        Assert.DoesNotContain("192.0.2.1", ns.Ip("route", "show", "table", "100"));
    }

    [Fact]
    public void A_pushed_gateway_outside_the_tunnel_with_onlink_is_refused_before_anything_changes()
    {
        using var ns = Router();
        var policy = Policy(ns, "default via ${route_vpn_gateway} dev ${dev} onlink table nyet");

        var hostile = Run(ns, ["up", "-c", policy], Client("192.0.2.1"));

        Assert.NotEqual(0, hostile.ExitCode);
        Assert.Contains("route_vpn_gateway: '192.0.2.1' is not in the tunnel's own networks (10.8.0.0/24)", hostile.Stderr);
        Assert.DoesNotContain("[#]", hostile.Stderr);
        Assert.DoesNotContain("table 100", ns.Ip("route", "show", "table", "all"));
    }
}
