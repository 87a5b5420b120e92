using System.Net.Sockets;
using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.Hardening;
using static TunnelRouter.Tests.Support.Seed002;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary><c>explain</c> follows tunnel-router's own marks: in seed 002's router it names the Marks entry
/// that set the mark, the rule and table that mark leads to, and the kernel's lookup with that mark — and a
/// real packet arrives at the next hop it names.</summary>
public class ExplainMarksSpecs
{
    static string Field(RunResult run, string name) =>
        run.Stdout.Split('\n').FirstOrDefault(l => l.StartsWith(name + ":"))?[(name.Length + 1)..].Trim()
        ?? throw new Xunit.Sdk.XunitException($"no {name} line in:\n{run.Stdout}\n{run.Stderr}");

    static string[] Lines(RunResult run, string name) =>
        run.Stdout.Split('\n').Where(l => l.StartsWith(name + ":")).Select(l => l[(name.Length + 1)..].Trim()).ToArray();

    [Fact]
    public void A_LAN_packet_from_port_443_is_explained_by_the_prerouting_mark_and_leaves_by_the_vpn_as_real_packets_do()
    {
        using var lab = new Seed002Lab();
        var policy = Seed002Lab.Policy();
        lab.Run(policy, "apply").ShouldSucceed();

        var run = lab.Run(policy, "explain", "--from", "192.168.192.10", "--iif", "lan0", "--to", Seed002Lab.Internet,
            "--proto", "tcp", "--sport", "443", "--dport", "8080");

        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        Assert.Equal(
            "Marks[5] (prerouting) sets mark 0xf2: ip saddr 192.168.192.0/24 ip daddr != 192.168.192.0/24 tcp sport { 80, 443 } meta mark set 0x000000f2",
            Assert.Single(Lines(run, "Marks")));
        Assert.Equal("100: from all fwmark 0xf2 lookup 10", Field(run, "Rule"));
        Assert.Equal("5.5.5.1 on vpn0", Field(run, "Next hop"));
        Assert.Equal("ip route get with mark 0xf2 agrees", Field(run, "Kernel"));
        // The packet itself: counted at the VPN gateway, not the WAN's.
        Assert.Equal("vpn", lab.Lan(443, dport: 8080));
    }

    [Fact]
    public void A_later_entry_overrides_an_earlier_one_in_the_explanation_as_in_the_kernel()
    {
        using var lab = new Seed002Lab();
        var policy = Seed002Lab.Policy();
        lab.Run(policy, "apply").ShouldSucceed();

        var run = lab.Run(policy, "explain", "--from", IpWan, "--to", Seed002Lab.Internet, "--proto", "tcp", "--sport", "80", "--dport", "8080");

        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        var marks = Lines(run, "Marks");
        Assert.StartsWith("Marks[0] (output) sets mark 0xf2:", marks[0]);
        Assert.StartsWith("Marks[2] (output) sets mark 0xf1:", marks[1]);
        Assert.Contains("the last match wins: the packet is routed with mark 0xf1", run.Stdout);
        Assert.Equal("172.20.10.1 on wan0", Field(run, "Next hop"));
        Assert.Equal("wan", lab.Out(IpWan, 80, dport: 8080));
    }

    [Fact]
    public void A_packet_no_entry_marks_keeps_its_mark_and_the_note_says_other_firewalls_marks_are_not_seen()
    {
        using var lab = new Seed002Lab();
        var policy = Seed002Lab.Policy();
        lab.Run(policy, "apply").ShouldSucceed();

        var run = lab.Run(policy, "explain", "--from", "192.168.192.10", "--iif", "lan0", "--to", Seed002Lab.Internet,
            "--proto", "tcp", "--sport", "8443", "--dport", "8080");

        Assert.Equal("no entry of the policy's Marks (prerouting) matches; the packet keeps mark 0x0", Field(run, "Marks"));
        Assert.Equal("fwmark rules are in use, and marks set outside tunnel-router's Marks (iptables, other nft tables, tc) cannot be seen here; pass --mark N to ask about a packet they mark",
            Field(run, "Note"));
        Assert.Equal("172.20.10.1 on wan0", Field(run, "Next hop"));
        Assert.Equal("wan", lab.Lan(8443, dport: 8080));
    }

    [Fact]
    public void Marks_the_policy_has_but_the_kernel_does_not_are_said_to_be_not_applied()
    {
        using var lab = new Seed002Lab();

        var run = lab.Run(Seed002Lab.Policy(), "explain", "--from", "192.168.192.10", "--iif", "lan0", "--to", Seed002Lab.Internet,
            "--proto", "tcp", "--sport", "443", "--dport", "8080");

        Assert.Contains("tunnel-router's nft table is not loaded: these are the marks the policy will set once applied ('tunnel-router apply')", run.Stdout);
    }

    [Fact]
    public void An_unreachable_route_the_policy_installed_is_reported_as_the_intended_drop()
    {
        using var ns = new NetNs();
        AddVeth(ns, "wan", "192.168.1.2/24");
        var policy = WritePolicy(ns, Hardening.Policy(["unreachable 203.0.113.0/24 table wan", "default via 192.168.1.1 table wan"],
            ["to 203.0.113.0/24 lookup wan pref 2000"]));
        Run(ns, ["apply", "--config", policy]).ShouldSucceed();

        var run = Run(ns, ["explain", "--config", policy, "--to", "203.0.113.9"]);

        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        Assert.Equal("unreachable 203.0.113.0/24 table wan proto tunnel-router", Field(run, "Route"));
        Assert.StartsWith("intended: tunnel-router's route (the policy's) is an unreachable route (the kernel answers", Field(run, "Dropped"));
        Assert.Equal("ip route get agrees", Field(run, "Kernel"));
    }

    [Fact]
    public void A_source_that_is_not_local_and_has_no_route_back_is_noted_as_assumed()
    {
        using var ns = new NetNs();
        AddVeth(ns, "wan", "192.168.1.2/24");

        var run = Run(ns, ["explain", "--from", "10.99.0.1", "--to", "192.168.1.7"]);

        Assert.Contains("(assumed: sent by this host with source 10.99.0.1, which is not one of its addresses and has no route back; pass --iif to say where it arrives)",
            Field(run, "Packet"));
    }
}
