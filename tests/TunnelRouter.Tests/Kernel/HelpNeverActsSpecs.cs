using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.Hardening;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary>
/// Asking is never acting: "flush --help" once removed the policy's rules and both kill switches. Every command with
/// --help or -h, in a namespace holding a live tunnel's objects, the policy's and a kill switch, prints the usage,
/// exits 0 and leaves the kernel as it was.
/// </summary>
public class HelpNeverActsSpecs
{
    [Fact]
    public void Every_command_with_help_prints_the_usage_and_leaves_the_kernel_as_it_was()
    {
        using var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24");
        AddVeth(ns, "wan", "192.168.1.2/24");
        var policy = Topology.Policy(ns, Hardening.Policy(["default via 192.168.1.1 dev wan table wan", "unreachable default table wan metric 4278198272"],
            ["from 10.10.10.0/24 lookup wan pref 2000"]));
        Run(ns, ["apply", "-c", policy]).ShouldSucceed();
        var hook = SubnetEnv("tun0", "10.10.10.1", "255.255.255.0", null, 64, "up");
        hook["TUNNEL_ROUTER_POOLRULES"] = "true";
        Run(ns, ["up"], hook).ShouldSucceed();
        var before = ns.Dump();
        Assert.Contains("unreachable default", before);

        foreach (var argv in new[]
                 {
                     (string[])["flush", "--help"], ["flush", "--all", "-h"], ["apply", "--help"], ["plan", "-h"], ["status", "--help"],
                     ["watch", "--help"], ["demo", "--help"], ["doctor", "--help"], ["explain", "--help"], ["export", "--help"],
                     ["up", "--help"], ["down", "--help"], ["--help", "flush"], ["help", "flush"],
                 })
        {
            var run = ns.Exec("/usr/bin/timeout", ["20", Prerequisites.Binary, .. argv, "-c", policy], TunnelRouterProcess.Environment(ns, argv[0] is "up" or "down" ? hook : null));

            Assert.True(run.ExitCode == 0, $"{string.Join(' ', argv)}: exit {run.ExitCode}: {run.Stderr}");
            Assert.StartsWith("Usage: tunnel-router COMMAND", run.Stdout);
            Assert.Equal(before, ns.Dump());
        }
    }
}
