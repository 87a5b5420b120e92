using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary><c>doctor</c> checks that each tracked uplink's probes can leave by it: the kernel's route lookup from the
/// uplink's address, and a raw ICMP socket bound to it. One line each, in namespaces of the test's own.</summary>
[BackendIndependent]
public class UplinkDoctorSpecs
{
    static (NetNs Gateway, NetNs Router1, NetNs Router2, string Policy) Lab()
    {
        NetNs gateway = new(), router1 = new(), router2 = new();
        Topology.Link(gateway, "wan1", ["198.51.100.2/24"], router1, "w1", ["198.51.100.1/24"]);
        Topology.Link(gateway, "wan2", ["203.0.113.2/24"], router2, "w2", ["203.0.113.1/24"]);
        var policy = Topology.Policy(gateway, """
            { "Tables": { "wan1": 11, "wan2": 12, "out": 200 },
              "Uplinks": [
                { "Name": "wan1", "Interface": "wan1", "Table": "wan1", "Address": "198.51.100.2/24", "Gateway": "198.51.100.1", "Track": "192.0.2.100" },
                { "Name": "wan2", "Interface": "wan2", "Table": "wan2", "Address": "203.0.113.2/24", "Gateway": "203.0.113.1", "Track": "192.0.2.100" } ],
              "Failover": [ "table out via wan1 weight 2 wan2" ] }
            """);
        return (gateway, router1, router2, policy);
    }

    static string Line(RunResult run, string uplink) =>
        run.Stdout.Split('\n').FirstOrDefault(l => l.Contains($"uplink probes: {uplink} IPv4")) ?? throw new Xunit.Sdk.XunitException($"no uplink probes line for {uplink} in:\n{run.Stdout}");

    [Fact]
    public void Each_tracked_uplinks_probes_leave_by_its_own_device_once_applied_and_a_probe_that_would_leave_by_another_is_a_problem()
    {
        var (gateway, router1, router2, policy) = Lab();
        using var _ = gateway;
        using var __ = router1;
        using var ___ = router2;

        var before = Run(gateway, ["doctor", "--config", policy]);
        Assert.Contains("has no route", Line(before, "wan1"));

        Run(gateway, ["apply", "--config", policy]).ShouldSucceed();
        var applied = Run(gateway, ["doctor", "--config", policy]);
        Assert.Contains("wan1 IPv4: a probe from 198.51.100.2 to 192.0.2.100 leaves by wan1 via 198.51.100.1", Line(applied, "wan1"));
        Assert.Contains("a raw ICMP socket opens", Line(applied, "wan1"));
        Assert.Contains("leaves by wan2 via 203.0.113.1", Line(applied, "wan2"));

        // Someone deletes uplink 1's rule, and main's default goes by uplink 2: uplink 1's probes would test uplink 2's path.
        gateway.Ip("rule", "del", "from", "198.51.100.2", "lookup", "11");
        gateway.Ip("route", "add", "default", "via", "203.0.113.1", "dev", "wan2");
        var moved = Run(gateway, ["doctor", "--config", policy]);
        Assert.Contains("wan1 IPv4: a probe from 198.51.100.2 to 192.0.2.100 leaves by wan2, not by wan1: it would test another path", Line(moved, "wan1"));
        Assert.NotEqual(0, moved.ExitCode);
    }
}
