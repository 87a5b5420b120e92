using System.Net;
using System.Net.Sockets;
using TunnelRouter.Core;
using TunnelRouter.Policy;
using TunnelRouter.Tests.Support;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>The policy's Marks evaluated for one packet as the kernel runs them: chain by hook, matches, and a
/// later entry overriding an earlier one.</summary>
public class MarkWalkSpecs
{
    static readonly IReadOnlyList<MarkRule> Seed002Marks = MarkRules.Parse(Seed002.Marks());

    static Packet Lan(int sport, string to = "198.51.100.7", ProtocolType proto = ProtocolType.Tcp) =>
        new(AddressFamily.InterNetwork, IPAddress.Parse("192.168.192.10"), IPAddress.Parse(to), "br-lan", 0, (byte)proto, (ushort)sport, 8080);

    static Packet Router(string from, int sport, string to = "198.51.100.7") =>
        new(AddressFamily.InterNetwork, IPAddress.Parse(from), IPAddress.Parse(to), Packet.LocalIif, 0, 6, (ushort)sport, 8080);

    static List<MarkStep> Walk(Packet p) => MarkWalk.Evaluate(Seed002Marks, p, p.Mark, p.From, null);

    [Fact]
    public void A_LAN_packet_with_source_port_443_is_marked_for_the_vpn_by_the_prerouting_entry()
    {
        var steps = Walk(Lan(443));

        var step = Assert.Single(steps);
        Assert.Equal(5, step.Index);
        Assert.Equal(0xf2u, step.MarkAfter);
    }

    [Fact]
    public void A_later_entry_overrides_an_earlier_one()
    {
        // Source port 80 from IP_WAN: Marks[0] sets 0xf2, Marks[2] then sets 0xf1.
        var steps = Walk(Router(Seed002.IpWan, 80));

        Assert.Equal([0, 2], steps.Select(s => s.Index));
        Assert.Equal(0xf1u, steps[^1].MarkAfter);
    }

    [Fact]
    public void A_clearing_entry_leaves_mark_zero_for_the_excluded_network()
    {
        var steps = Walk(Lan(443, Seed002.GwWan));

        Assert.Equal([5, 8], steps.Select(s => s.Index));
        Assert.Equal(0u, steps[^1].MarkAfter);
    }

    [Fact]
    public void Output_entries_do_not_see_forwarded_packets_and_ports_outside_the_list_match_nothing()
    {
        Assert.Empty(Walk(Lan(8443)));
        Assert.Empty(Walk(Router("192.168.192.2", 81)));
    }

    [Fact]
    public void A_mask_changes_only_its_bits_and_an_interface_wildcard_matches_the_prefix()
    {
        var rules = new[] { new MarkRule(MarkChain.Prerouting, 0x20, 0xf0, InputInterface: "tun+") };
        var p = new Packet(AddressFamily.InterNetwork, IPAddress.Parse("10.8.0.5"), IPAddress.Parse("1.1.1.1"), "tun3");

        var step = Assert.Single(MarkWalk.Evaluate(rules, p, 0x105, p.From, null));

        Assert.Equal(0x125u, step.MarkAfter);
        Assert.Empty(MarkWalk.Evaluate(rules, p with { Iif = "eth0" }, 0, p.From, null));
    }
}
