using TunnelRouter.Cli;
using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.Hardening;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary>
/// Asking is never acting: "flush --help" once removed the policy's rules and both kill switches. Every command of the
/// command table with --help, -h or after help, and the OpenVPN hook as OpenVPN runs it, in a namespace holding a live
/// tunnel's objects, the policy's and a kill switch, prints that command's usage, exits 0 and leaves the kernel as it was.
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

        // Every command of the table, asked three ways, and the hook as OpenVPN runs it (its six words last, script_type set).
        string[] openVpn = ["tun0", "1500", "0", "10.10.10.1", "255.255.255.0", "init"];
        var asked = new List<(string[] Argv, string? Command)>();
        foreach (var name in CommandTable.Names) asked.AddRange([([name, "--help"], name), ([name, "-h"], name), (["help", name], name)]);
        asked.AddRange([(["flush", "--all", "-h"], "flush"), (["--help", "flush"], "flush"), (["up", "--help", .. openVpn], "up"),
            (["down", "-h", .. openVpn], "down"), (["--help", .. openVpn], null)]);
        foreach (var (argv, command) in asked)
        {
            var env = argv[^1] == "init" ? new Dictionary<string, string>(hook) { ["script_type"] = argv[0] == "down" ? "down" : "up" }
                : command is "up" or "down" ? hook : null;
            var run = ns.Exec("/usr/bin/timeout", ["20", Prerequisites.Binary, "-c", policy, .. argv], TunnelRouterProcess.Environment(ns, env));

            Assert.True(run.ExitCode == 0, $"{string.Join(' ', argv)}: exit {run.ExitCode}: {run.Stderr}");
            Assert.StartsWith(command is null ? "Usage: tunnel-router COMMAND" : $"Usage: {CommandTable.Find(command)!.Synopsis}\n", run.Stdout);
            Assert.Equal(before, ns.Dump());
        }
    }
}
