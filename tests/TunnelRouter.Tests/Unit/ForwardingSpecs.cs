using System.Net;
using System.Net.Sockets;
using TunnelRouter.Cli;
using TunnelRouter.Core;
using TunnelRouter.Policy;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>doctor's forwarding check, from what each rule selects (plain data): which rules mean other hosts' packets,
/// which this host's own, and which ride on a mark only another firewall knows.</summary>
public class ForwardingSpecs
{
    /// <summary>This host's address: 192.168.1.6.</summary>
    static bool Own(IPNetwork n) => n.PrefixLength == 32 && n.BaseAddress.Equals(IPAddress.Parse("192.168.1.6"));

    static Rule R(string line, uint pref = 2000) => PolicyLine.ParseRule("Rules[0]", line, new PolicyLine.Tables(_ => 200, ["vpn"]), 147, pref);

    static MarkRule Mark(MarkChain chain, uint mark) => new(chain, mark);

    static (Dictionary<AddressFamily, string> Why, Dictionary<AddressFamily, string> Unknown) Reasons(Rule[] rules, MarkRule[]? marks = null,
        InstanceSpec[]? instances = null)
    {
        var why = Diagnosis.RuleReasons(rules, marks ?? [], instances ?? [], Own, out var unknown);
        return (why, unknown);
    }

    [Theory]
    [InlineData("from 10.10.10.0/24 lookup vpn", "rule 2000 routes packets from 10.10.10.0/24, which is not an address of this host")]
    [InlineData("iif eth1 lookup vpn", "rule 2000 matches packets arriving on eth1")]
    [InlineData("not from 192.168.1.6 lookup vpn", "rule 2000 routes packets from anywhere but 192.168.1.6/32, which is not an address of this host")]
    public void Rules_on_other_hosts_packets_mean_forwarding(string line, string reason)
    {
        var (why, _) = Reasons([R(line)]);

        Assert.Equal(reason, why[AddressFamily.InterNetwork]);
    }

    [Theory]
    [InlineData("from 192.168.1.6 lookup vpn")]
    [InlineData("to 198.51.100.7 lookup vpn")]
    [InlineData("iif lo ipproto tcp dport 25 lookup vpn")]
    [InlineData("uidrange 1000-1000 lookup vpn")]
    [InlineData("ipproto udp dport 53 lookup vpn")]
    [InlineData("oif eth0 lookup vpn")]
    public void Rules_on_this_hosts_own_packets_or_on_what_reaches_the_lookup_alone_do_not(string line)
    {
        var (why, unknown) = Reasons([R(line)]);

        Assert.Empty(why);
        Assert.Empty(unknown);
    }

    [Fact]
    public void A_mark_the_policy_sets_only_in_output_is_this_hosts_own_one_nobody_sets_is_another_firewalls()
    {
        var rules = new[] { R("fwmark 0xf2 lookup vpn"), R("fwmark 0xf1 lookup vpn", 2010) };

        var (why, unknown) = Reasons(rules, [Mark(MarkChain.Output, 0xf2)]);

        Assert.Empty(why);
        Assert.Equal("rule 2010 matches fwmark 0xf1, which none of the policy's Marks sets", unknown[AddressFamily.InterNetwork]);
    }

    [Fact]
    public void Instances_lines_on_the_tunnels_device_or_its_clients_mean_forwarding_its_own_address_does_not()
    {
        static InstanceSpec Spec(params string[] rules) =>
            new("p: Instances[0]", "tun*", [.. rules.Select((l, i) => InstanceLine.Parse($"p: Instances[0].Rules[{i}]", l, isRule: true))], []);

        var (device, _) = Reasons([], instances: [Spec("-4 iif ${dev} lookup vpn")]);
        var (pool, _) = Reasons([], instances: [Spec("-6 from ${ifconfig_ipv6_pool} lookup vpn")]);
        var (own, _) = Reasons([], instances: [Spec("from ${ifconfig_local} lookup vpn")]);

        Assert.Equal("Instances[0].Rules[0] routes packets arriving on ${dev}", Assert.Single(device).Value);
        Assert.Equal("Instances[0].Rules[0] routes packets from ${ifconfig_ipv6_pool}", pool[AddressFamily.InterNetworkV6]);
        Assert.Empty(own);
    }
}
