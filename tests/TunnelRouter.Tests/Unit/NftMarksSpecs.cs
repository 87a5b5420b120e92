using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Policy;
using TunnelRouter.Tests.Support;
using Xunit;

namespace TunnelRouter.Tests.Unit;

public class NftMarksSpecs
{
    static string Line(MarkOptions o) => NftMarks.RuleLine(MarkRules.Parse("Marks[0]", o));

    [Fact]
    public void Seed_002s_complete_iptables_set_renders_as_one_table_line_by_line()
    {
        var table = NftMarks.Render(MarkRules.Parse(Seed002.Marks()))!;

        Assert.Equal(
        [
            "table inet tunnel_router {",
            $"\tcomment \"managed by tunnel-router; fingerprint {table.Fingerprint}\"",
            "\tchain output {",
            "\t\ttype route hook output priority mangle; policy accept;",
            "\t\tip daddr != 192.168.192.0/24 tcp sport 80 meta mark set 0x000000f2",
            "\t\tip saddr 5.5.5.2 ip daddr != 192.168.192.0/24 meta mark set 0x000000f2",
            "\t\tip saddr 172.20.10.2 ip daddr != 192.168.192.0/24 meta mark set 0x000000f1",
            "\t\tip saddr 5.5.5.2 ip daddr 5.5.5.0/24 meta mark set 0x00000000",
            "\t\tip saddr 172.20.10.2 ip daddr 172.20.10.0/24 meta mark set 0x00000000",
            "\t}",
            "\tchain prerouting {",
            "\t\ttype filter hook prerouting priority mangle; policy accept;",
            "\t\tip saddr 192.168.192.0/24 ip daddr != 192.168.192.0/24 tcp sport { 80, 443 } meta mark set 0x000000f2",
            "\t\tip saddr 192.168.192.0/24 ip daddr != 192.168.192.0/24 udp sport { 80, 443 } meta mark set 0x000000f2",
            "\t\tip saddr 192.168.192.0/24 ip daddr 5.5.5.0/24 meta mark set 0x00000000",
            "\t\tip saddr 192.168.192.0/24 ip daddr 172.20.10.0/24 meta mark set 0x00000000",
            "\t}",
            "}",
        ], table.Definition.TrimEnd('\n').Split('\n'));
    }

    [Fact]
    public void The_fingerprint_is_stable_and_changes_with_any_rule()
    {
        var a = NftMarks.Render(MarkRules.Parse(Seed002.Marks()))!;
        var b = NftMarks.Render(MarkRules.Parse(Seed002.Marks()))!;
        var changed = Seed002.Marks();
        changed[3].Mark = "0xf3";
        var reordered = Seed002.Marks();
        (reordered[1], reordered[2]) = (reordered[2], reordered[1]);

        Assert.Matches("^[0-9a-f]{16}$", a.Fingerprint);
        Assert.Equal(a, b);
        Assert.NotEqual(a.Fingerprint, NftMarks.Render(MarkRules.Parse(changed))!.Fingerprint);
        // Order is meaning: a later match overrides an earlier one.
        Assert.NotEqual(a.Fingerprint, NftMarks.Render(MarkRules.Parse(reordered))!.Fingerprint);
    }

    [Fact]
    public void No_marks_render_no_table()
    {
        Assert.Null(NftMarks.Render([]));
    }

    [Fact]
    public void A_chain_without_rules_is_left_out()
    {
        var table = NftMarks.Render(MarkRules.Parse([new MarkOptions { Chain = "prerouting", Source = "10.0.0.0/8", Mark = "1" }]))!;

        Assert.DoesNotContain("chain output", table.Definition);
        Assert.Contains("chain prerouting", table.Definition);
    }

    [Theory]
    [InlineData("fd00:5::2", null, "ip6 saddr fd00:5::2 meta mark set 0x000000f2")]
    [InlineData(null, "!fd00::/8", "ip6 daddr != fd00::/8 meta mark set 0x000000f2")]
    [InlineData("! 10.1.0.0/16", null, "ip saddr != 10.1.0.0/16 meta mark set 0x000000f2")]
    public void Addresses_choose_ip_or_ip6_and_negation_becomes_not_equal(string? src, string? dst, string expected)
    {
        Assert.Equal(expected, Line(new MarkOptions { Chain = "output", Source = src, Destination = dst, Mark = "0xf2" }));
    }

    [Fact]
    public void A_rule_without_addresses_matches_both_families_unless_a_family_is_given()
    {
        Assert.Equal("meta l4proto tcp meta mark set 0x00000001", Line(new MarkOptions { Chain = "output", Protocol = "tcp", Mark = "1" }));
        Assert.Equal("meta nfproto ipv6 meta l4proto tcp meta mark set 0x00000001",
            Line(new MarkOptions { Chain = "output", Family = "ipv6", Protocol = "tcp", Mark = "1" }));
    }

    [Theory]
    [InlineData("tcp", "80", null, "tcp sport 80")]
    [InlineData("udp", "1000-2000", null, "udp sport 1000-2000")]
    [InlineData("sctp", null, "80, 1000-2000", "sctp dport { 80, 1000-2000 }")]
    [InlineData("tcp", "1024-65535", "22,443", "tcp sport 1024-65535 tcp dport { 22, 443 }")]
    [InlineData("icmp", null, null, "meta l4proto icmp")]
    [InlineData("icmpv6", null, null, "meta l4proto ipv6-icmp")]
    [InlineData("47", null, null, "meta l4proto gre")]
    [InlineData("253", null, null, "meta l4proto 253")]
    public void Protocols_and_ports_render_as_nft_matches(string proto, string? sports, string? dports, string expected)
    {
        Assert.Equal(expected + " meta mark set 0x00000001",
            Line(new MarkOptions { Chain = "output", Protocol = proto, SourcePorts = sports, DestinationPorts = dports, Mark = "1" }));
    }

    [Fact]
    public void Interfaces_are_quoted_and_a_trailing_plus_is_nfts_wildcard()
    {
        Assert.Equal("iifname \"br-lan\" meta mark set 0x00000001", Line(new MarkOptions { Chain = "prerouting", InputInterface = "br-lan", Mark = "1" }));
        Assert.Equal("oifname \"tun*\" meta mark set 0x00000001", Line(new MarkOptions { Chain = "output", OutputInterface = "tun+", Mark = "1" }));
    }

    [Theory]
    [InlineData("0xf2", null, "meta mark set 0x000000f2")]
    [InlineData("242", null, "meta mark set 0x000000f2")]
    [InlineData("clear", null, "meta mark set 0x00000000")]
    [InlineData("0x00", null, "meta mark set 0x00000000")]
    [InlineData("0xf2", "0xff", "meta mark set meta mark & 0xffffff00 | 0x000000f2")]
    [InlineData("clear", "0xff00", "meta mark set meta mark & 0xffff00ff")]
    [InlineData("0x1", "0xffffffff", "meta mark set 0x00000001")]
    public void Marks_set_the_whole_mark_or_only_the_masked_bits_as_iptables_set_mark_does(string mark, string? mask, string expected)
    {
        Assert.Equal(expected, Line(new MarkOptions { Chain = "output", Mark = mark, Mask = mask }));
    }

    [Fact]
    public void The_transaction_creates_deletes_and_defines_so_it_works_whether_or_not_the_table_exists()
    {
        var table = NftMarks.Render(MarkRules.Parse(Seed002.Marks()))!;

        Assert.Equal("table inet tunnel_router\ndelete table inet tunnel_router\n" + table.Definition, NftMarks.Transaction(table.Definition));
        Assert.Equal("table inet tunnel_router\ndelete table inet tunnel_router\n", NftMarks.Transaction(null));
    }

    [Fact]
    public void The_fingerprint_is_read_back_from_nfts_listing_of_the_table()
    {
        var table = NftMarks.Render(MarkRules.Parse(Seed002.Marks()))!;
        // nft lists with its own spacing and number formats; only the comment line matters.
        var listing = table.Definition.Replace("\tchain prerouting", "\n\tchain prerouting");

        Assert.Equal(table.Fingerprint, NftMarks.FingerprintOf(listing));
        Assert.Null(NftMarks.FingerprintOf("table inet tunnel_router {\n\tchain output {\n\t}\n}\n"));
        Assert.Null(NftMarks.FingerprintOf("table inet tunnel_router {\n\tcomment \"someone else's\"\n}\n"));
    }

    [Fact]
    public void Replacing_the_table_inverts_by_swapping_and_displays_what_a_person_would_run()
    {
        var table = NftMarks.Render(MarkRules.Parse(Seed002.Marks()))!;
        var create = new ReplaceNftTable(null, table.Definition);

        Assert.Equal(new ReplaceNftTable(table.Definition, null), create.Inverse());
        Assert.Equal(create, create.Inverse().Inverse());
        var display = create.Display(TableNames.Numeric, ProtocolNames.Numeric).Split('\n');
        Assert.Equal("nft -f - <<'EOF'", display[0]);
        Assert.Equal("table inet tunnel_router", display[1]);
        Assert.Equal("delete table inet tunnel_router", display[2]);
        Assert.Contains("\t\tip daddr != 192.168.192.0/24 tcp sport 80 meta mark set 0x000000f2", display);
        Assert.Equal("EOF", display[^1]);
        Assert.Equal("nft delete table inet tunnel_router", create.Inverse().Display(TableNames.Numeric, ProtocolNames.Numeric));
        Assert.Null(create.Batch());
    }
}
