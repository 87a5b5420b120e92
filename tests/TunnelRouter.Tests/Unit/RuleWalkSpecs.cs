using System.Net;
using System.Net.Sockets;
using TunnelRouter.Core;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>The rule walk explain predicts with (and then confirms with the kernel): selectors, actions, order.</summary>
public class RuleWalkSpecs
{
    const AddressFamily V4 = AddressFamily.InterNetwork;

    static IPNetwork P(string text) => Net.ParsePrefix("p", text);

    static Packet From(string from, string to = "8.8.8.8", string iif = "tun0", uint mark = 0, byte? proto = null, ushort? dport = null) =>
        new(V4, IPAddress.Parse(from), IPAddress.Parse(to), iif, mark, proto, 40000, dport);

    static Rule Lookup(uint priority, uint table, IPNetwork? from = null, uint? mark = null, byte? proto = null, PortRange? dport = null,
        bool not = false, string? iif = null, int? suppress = null) =>
        new(V4, priority, RuleAction.Lookup, table, 0, from: from, not: not, fwMark: mark, ipProto: proto, destinationPort: dport,
            iif: iif, suppressPrefixLength: suppress);

    static readonly Route Default200 = new(P("0.0.0.0/0"), 200, 147, "wan", IPAddress.Parse("192.168.1.1"));
    static readonly Route Default254 = new(P("0.0.0.0/0"), 254, 3, "lan", IPAddress.Parse("192.168.2.1"));

    static Route? Tables(uint table) => table switch { 200 => Default200, 254 => Default254, _ => null };

    static RuleStep Decided(List<RuleStep> steps) => Assert.Single(steps, s => s.Outcome == RuleOutcome.Decided);

    [Fact]
    public void The_first_matching_rule_whose_table_has_a_route_decides()
    {
        var rules = new[] { new RuleEntry(Lookup(1000, 200, P("10.10.10.0/24"))), new RuleEntry(Lookup(32766, 254)) };

        var steps = RuleWalk.Walk(rules, From("10.10.10.5"), Tables);

        Assert.Equal(1000u, Decided(steps).Entry.Rule.Priority);
        Assert.Same(Default200, Decided(steps).Route);
    }

    [Fact]
    public void A_rule_whose_table_has_no_route_passes_the_packet_on()
    {
        var rules = new[] { new RuleEntry(Lookup(900, 300)), new RuleEntry(Lookup(32766, 254)) };

        var steps = RuleWalk.Walk(rules, From("10.10.10.5"), Tables);

        Assert.Equal(RuleOutcome.PassedOver, steps[0].Outcome);
        Assert.Equal(32766u, Decided(steps).Entry.Rule.Priority);
    }

    [Theory]
    [InlineData(0x10u, null, null, true)]
    [InlineData(0x11u, null, null, false)]
    [InlineData(0u, (byte)6, (ushort)443, true)]
    [InlineData(0u, (byte)17, (ushort)443, false)]
    [InlineData(0u, (byte)6, (ushort)80, false)]
    public void Marks_protocols_and_ports_match_as_the_kernel_matches_them(uint mark, byte? proto, ushort? dport, bool expected)
    {
        var rule = mark != 0 ? Lookup(2000, 200, mark: 0x10) : Lookup(2000, 200, proto: 6, dport: new PortRange(443, 443));

        var why = RuleWalk.Mismatch(rule, From("10.10.10.5", mark: mark, proto: proto, dport: dport));

        Assert.Equal(expected, why is null);
    }

    [Fact]
    public void Not_inverts_the_selectors_and_iif_matches_the_input_device()
    {
        Assert.NotNull(RuleWalk.Mismatch(Lookup(1, 200, P("10.10.10.0/24"), not: true), From("10.10.10.5")));
        Assert.Null(RuleWalk.Mismatch(Lookup(1, 200, P("10.10.10.0/24"), not: true), From("192.0.2.5")));
        Assert.Null(RuleWalk.Mismatch(Lookup(1, 200, iif: "tun0"), From("10.10.10.5")));
        Assert.Equal("iif tun0", RuleWalk.Mismatch(Lookup(1, 200, iif: "tun0"), From("10.10.10.5", iif: "lo")));
    }

    [Fact]
    public void Goto_jumps_and_suppress_prefixlength_rejects_a_default_route()
    {
        var rules = new[]
        {
            new RuleEntry(Lookup(100, 0), GotoPriority: 3000),
            new RuleEntry(Lookup(2000, 200)),
            new RuleEntry(Lookup(3000, 200, suppress: 0)),
            new RuleEntry(Lookup(32766, 254)),
        };

        var steps = RuleWalk.Walk(rules, From("10.10.10.5"), Tables);

        Assert.DoesNotContain(steps, s => s.Entry.Rule.Priority == 2000);
        Assert.Equal(RuleOutcome.PassedOver, steps.Single(s => s.Entry.Rule.Priority == 3000).Outcome);
        Assert.Equal(32766u, Decided(steps).Entry.Rule.Priority);
    }

    [Fact]
    public void The_longest_prefix_wins_then_the_lowest_metric()
    {
        Route R(string prefix, uint metric) => new(P(prefix), 200, 147, "wan", metric: metric);
        var routes = new[] { R("0.0.0.0/0", 0), R("10.0.0.0/8", 5), R("10.1.0.0/16", 9), R("10.1.0.0/16", 3) };

        Assert.Equal(R("10.1.0.0/16", 3), RuleWalk.Longest(routes, IPAddress.Parse("10.1.2.3")));
        Assert.Equal(R("0.0.0.0/0", 0), RuleWalk.Longest(routes, IPAddress.Parse("192.0.2.1")));
    }
}
