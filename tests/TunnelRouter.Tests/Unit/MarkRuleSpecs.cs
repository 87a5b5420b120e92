using System.Net;
using System.Net.Sockets;
using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Policy;
using Xunit;

namespace TunnelRouter.Tests.Unit;

public class MarkRuleSpecs
{
    static MarkRule Parse(MarkOptions o) => MarkRules.Parse([o])[0];

    static string Error(MarkOptions o, int index = 0)
    {
        var list = Enumerable.Range(0, index).Select(_ => new MarkOptions { Chain = "output", Mark = "1" }).Append(o).ToList();
        return Assert.Throws<InputException>(() => MarkRules.Parse(list)).Message;
    }

    [Fact]
    public void Every_field_is_parsed_into_the_rule()
    {
        var rule = Parse(new MarkOptions
        {
            Chain = "PREROUTING", Source = "!192.168.192.0/24", Destination = "5.5.5.2", Protocol = "TCP",
            SourcePorts = "443, 80", DestinationPorts = "1000-2000", InputInterface = "br-lan", Mark = "0xF2", Mask = "0xff",
        });

        Assert.Equal(new MarkRule(MarkChain.Prerouting, 0xf2, 0xff, AddressFamily.InterNetwork,
            new AddressMatch(IPNetwork.Parse("192.168.192.0/24"), Negated: true),
            new AddressMatch(IPNetwork.Parse("5.5.5.2/32"), Negated: false),
            6, "443,80", "1000-2000", "br-lan", null), rule);
    }

    [Fact]
    public void Defaults_are_the_whole_mark_and_both_families()
    {
        var rule = Parse(new MarkOptions { Chain = "output", OutputInterface = "eth0", Mark = "clear" });

        Assert.Equal(new MarkRule(MarkChain.Output, 0, OutputInterface: "eth0"), rule);
        Assert.Equal(uint.MaxValue, rule.Mask);
        Assert.Null(rule.Family);
        Assert.True(rule.Clears);
    }

    [Theory]
    [InlineData("fd00:4242::/64", AddressFamily.InterNetworkV6)]
    [InlineData("10.0.0.1", AddressFamily.InterNetwork)]
    public void The_family_comes_from_the_addresses(string source, AddressFamily family)
    {
        Assert.Equal(family, Parse(new MarkOptions { Chain = "output", Source = source, Mark = "1" }).Family);
    }

    [Fact]
    public void Rules_compare_by_value()
    {
        var a = Parse(new MarkOptions { Chain = "output", Source = "10.0.0.0/8", Protocol = "udp", SourcePorts = "53", Mark = "0xf1" });
        var b = Parse(new MarkOptions { Chain = "Output", Source = "10.0.0.0/8", Protocol = "17", SourcePorts = " 53 ", Mark = "241" });

        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(a, a with { Mark = 0xf2 });
        Assert.NotEqual(a, a with { Chain = MarkChain.Prerouting });
    }

    [Theory]
    [InlineData(3, "Source", "5.5.5.300", "Marks[3].Source: '5.5.5.300' is not a valid IP address")]
    [InlineData(0, "Source", "!", "Marks[0].Source: '!' is empty; expected an address or prefix, '!' before it negates")]
    [InlineData(0, "Source", "10.0.0.1/24", "Marks[0].Source: '10.0.0.1/24' has host bits set; did you mean 10.0.0.0/24?")]
    [InlineData(0, "Source", "any", "Marks[0].Source: 'any' matches everything; leave Marks[0].Source out instead")]
    [InlineData(1, "Destination", "!10.0.0.0/33", "Marks[1].Destination: '33' is not a prefix length from 0 to 32")]
    [InlineData(0, "Destination", "fe80::1%eth0", "Marks[0].Destination: 'fe80::1%eth0' is not a valid IP address")]
    public void Bad_addresses_name_the_entry_key_and_value(int index, string key, string value, string expected)
    {
        var o = new MarkOptions { Chain = "output", Mark = "1" };
        if (key == "Source") o.Source = value; else o.Destination = value;

        Assert.Equal(expected, Error(o, index));
    }

    [Fact]
    public void Source_and_destination_of_different_families_are_refused()
    {
        // No Family was written: the Source decided, and the message says so.
        Assert.Equal("Marks[0].Destination: 'fd00::/8' is IPv6 but Source '10.0.0.0/8' is IPv4",
            Error(new MarkOptions { Chain = "output", Source = "10.0.0.0/8", Destination = "fd00::/8", Mark = "1" }));
        Assert.Equal("Marks[0].Source: '10.0.0.0/8' is IPv4 but Family is IPv6",
            Error(new MarkOptions { Chain = "output", Family = "ipv6", Source = "10.0.0.0/8", Mark = "1" }));
    }

    [Theory]
    [InlineData(null, "Marks[0].Chain: is required: 'output' (packets this host sends) or 'prerouting' (packets it receives or forwards)")]
    [InlineData("forward", "Marks[0].Chain: 'forward' is not a chain; expected 'output' or 'prerouting'")]
    public void The_chain_is_required_and_only_output_or_prerouting(string? chain, string expected)
    {
        Assert.Equal(expected, Error(new MarkOptions { Chain = chain, Mark = "1" }));
    }

    [Fact]
    public void A_bad_family_is_refused()
    {
        Assert.Equal("Marks[0].Family: 'ipx' is not a family; expected 'ipv4' or 'ipv6'", Error(new MarkOptions { Chain = "output", Family = "ipx", Mark = "1" }));
    }

    [Theory]
    [InlineData("tcpp", "Marks[0].Protocol: 'tcpp' is not a protocol; expected tcp, udp, sctp, icmp, icmpv6, gre, esp or a number 1-255")]
    [InlineData("256", "Marks[0].Protocol: '256' is not a protocol; expected tcp, udp, sctp, icmp, icmpv6, gre, esp or a number 1-255")]
    [InlineData("all", "Marks[0].Protocol: 'all' is not a protocol; leave Protocol out to match all")]
    public void Bad_protocols_are_refused(string proto, string expected)
    {
        Assert.Equal(expected, Error(new MarkOptions { Chain = "output", Protocol = proto, Mark = "1" }));
    }

    [Fact]
    public void Icmp_of_the_other_family_is_refused()
    {
        Assert.Equal("Marks[0].Protocol: 'icmp' does not exist in IPv6",
            Error(new MarkOptions { Chain = "output", Source = "fd00::1", Protocol = "icmp", Mark = "1" }));
    }

    [Theory]
    [InlineData(null, "SourcePorts", "80", "Marks[0].SourcePorts: needs Protocol tcp, udp or sctp (ports exist only there)")]
    [InlineData("icmp", "DestinationPorts", "80", "Marks[0].DestinationPorts: needs Protocol tcp, udp or sctp (ports exist only there)")]
    [InlineData("tcp", "SourcePorts", "http", "Marks[0].SourcePorts: 'http' is not a port list; expected ports 0-65535 like '80,443' or '1000-2000'")]
    [InlineData("tcp", "SourcePorts", "65536", "Marks[0].SourcePorts: '65536' is not a port list; expected ports 0-65535 like '80,443' or '1000-2000'")]
    [InlineData("tcp", "SourcePorts", "80,", "Marks[0].SourcePorts: '80,' is not a port list; expected ports 0-65535 like '80,443' or '1000-2000'")]
    [InlineData("udp", "DestinationPorts", "2000-1000", "Marks[0].DestinationPorts: '2000-1000' is a range from high to low")]
    [InlineData("udp", "DestinationPorts", "80,70-90", "Marks[0].DestinationPorts: '80,70-90' lists port 80 twice")]
    public void Bad_ports_are_refused(string? proto, string key, string value, string expected)
    {
        var o = new MarkOptions { Chain = "output", Protocol = proto, Mark = "1" };
        if (key == "SourcePorts") o.SourcePorts = value; else o.DestinationPorts = value;

        Assert.Equal(expected, Error(o));
    }

    [Fact]
    public void Interfaces_are_validated_and_only_allowed_where_the_kernel_knows_them()
    {
        Assert.Equal("Marks[0].InputInterface: needs Chain 'prerouting': packets this host sends have no input interface",
            Error(new MarkOptions { Chain = "output", InputInterface = "eth0", Mark = "1" }));
        Assert.Equal("Marks[0].OutputInterface: needs Chain 'output': before routing there is no output interface yet",
            Error(new MarkOptions { Chain = "prerouting", OutputInterface = "eth0", Mark = "1" }));
        Assert.Equal("Marks[0].InputInterface: 'eth0\";drop' is not a valid interface name (allowed: letters, digits, - _ . @ +)",
            Error(new MarkOptions { Chain = "prerouting", InputInterface = "eth0\";drop", Mark = "1" }));
        Assert.Equal("Marks[0].OutputInterface: 'a-very-long-interface' is longer than 15 bytes, the kernel's limit for interface names",
            Error(new MarkOptions { Chain = "output", OutputInterface = "a-very-long-interface", Mark = "1" }));
    }

    [Theory]
    [InlineData(null, null, "Marks[0].Mark: is required: a mark like '0xf2', or '0'/'clear' to clear it")]
    [InlineData("0xfg", null, "Marks[0].Mark: '0xfg' is not a 32-bit mark; expected hex like '0xf2' or decimal like '242'")]
    [InlineData("0x100000000", null, "Marks[0].Mark: '0x100000000' is not a 32-bit mark; expected hex like '0xf2' or decimal like '242'")]
    [InlineData("4294967296", null, "Marks[0].Mark: '4294967296' is not a 32-bit mark; expected hex like '0xf2' or decimal like '242'")]
    [InlineData("-1", null, "Marks[0].Mark: '-1' is not a 32-bit mark; expected hex like '0xf2' or decimal like '242'")]
    [InlineData("1", "clear", "Marks[0].Mask: 'clear' is not a 32-bit mark; expected hex like '0xf2' or decimal like '242'")]
    [InlineData("0", "0", "Marks[0].Mask: '0' would change no bit of the mark")]
    [InlineData("0x1f2", "0xff", "Marks[0].Mark: '0x1f2' sets bits outside Mask '0xff'")]
    public void Bad_marks_and_masks_are_refused(string? mark, string? mask, string expected)
    {
        Assert.Equal(expected, Error(new MarkOptions { Chain = "output", Mark = mark, Mask = mask }));
    }
}
