using System.Net;
using System.Net.Sockets;
using TunnelRouter.Core;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>Value semantics: what the kernel reads back must compare equal to what was asked for.</summary>
public class ValueSpecs
{
    [Fact]
    public void Routes_equal_pairwise_when_every_field_is_equal()
    {
        var a = new Route(Net.ParsePrefix("d", "10.10.10.7/24"), 200, 148, device: "tun0");
        var b = new Route(Net.ParsePrefix("d", "10.10.10.0/24"), 200, 148, device: "tun0");
        var c = b with { Device = "tun1" };

        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(b, c);
        Assert.NotEqual(b, b with { Table = 201 });
        Assert.NotEqual(b, b with { Protocol = 4 });
        Assert.NotEqual(b, b with { Metric = 5 });
    }

    [Fact]
    public void An_IPv6_route_without_metric_carries_the_kernels_1024()
    {
        var r = new Route(Net.ParsePrefix("d", "fd00::/64"), 200, 148, device: "tun0");
        Assert.Equal(1024u, r.Metric);
        Assert.Equal(r, new Route(Net.ParsePrefix("d", "fd00::/64"), 200, 148, device: "tun0", metric: 1024));
    }

    [Fact]
    public void A_rule_mark_without_mask_equals_the_same_mark_with_the_full_mask()
    {
        var a = new Rule(AddressFamily.InterNetwork, 1100, RuleAction.Lookup, 200, 147, fwMark: 0xf2);
        var b = new Rule(AddressFamily.InterNetwork, 1100, RuleAction.Lookup, 200, 147, fwMark: 0xf2, fwMask: 0xffffffff);

        Assert.Equal(a, b);
        Assert.NotEqual(a, a with { FwMask = 0xff });
        Assert.NotEqual(a, a with { Family = AddressFamily.InterNetworkV6 });
        Assert.NotEqual(a, a with { Priority = 1101 });
    }

    [Fact]
    public void From_all_and_a_zero_prefix_are_the_same_selector()
    {
        var a = new Rule(AddressFamily.InterNetwork, 5, RuleAction.Lookup, 200, 147, from: new IPNetwork(IPAddress.Any, 0));
        var b = new Rule(AddressFamily.InterNetwork, 5, RuleAction.Lookup, 200, 147);
        Assert.Equal(a, b);
    }

    [Fact]
    public void A_blackhole_rule_carries_no_table()
    {
        var r = new Rule(AddressFamily.InterNetwork, 5, RuleAction.Blackhole, 200, 147);
        Assert.Equal(0u, r.Table);
    }
}
