using System.Net;
using System.Net.Sockets;
using TunnelRouter.Core;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>Rule lines as "ip rule add" takes them, parsed into rules; each selector and each error.</summary>
public class RuleLineSpecs
{
    const string Field = "policy.json: Rules[2]";

    static uint? Tables(string name) => name switch
    {
        "vpn" => 200,
        "wan" => 201,
        "main" => 254,
        _ => TableNames.TryParseNumber(name, out var id) ? id : null,
    };

    static Rule Parse(string line, uint? automatic = 2000) => PolicyLine.ParseRule(Field, line, new PolicyLine.Tables(Tables, ["vpn", "wan", "main"]), 147, automatic);

    static string Error(string line, uint? automatic = 2000) =>
        Assert.Throws<InputException>(() => Parse(line, automatic)).Message;

    static IPNetwork P(string text) => Net.ParsePrefix("p", text);

    [Fact]
    public void The_eduVPN_pool_rule_reads_as_ip_rule_add_reads_it()
    {
        var rule = Parse("from 10.10.10.0/24 lookup vpn pref 1000");

        Assert.Equal(new Rule(AddressFamily.InterNetwork, 1000, RuleAction.Lookup, 200, 147, from: P("10.10.10.0/24")), rule);
    }

    [Fact]
    public void The_family_comes_from_the_addresses()
    {
        Assert.Equal(AddressFamily.InterNetworkV6, Parse("from fd00:4242:4242:4242::/64 lookup vpn").Family);
        Assert.Equal(AddressFamily.InterNetwork, Parse("to 192.0.2.0/24 lookup vpn").Family);
    }

    [Theory]
    [InlineData("-6 fwmark 0xf2 lookup vpn")]
    [InlineData("inet6 fwmark 0xf2 lookup vpn")]
    public void The_family_can_be_stated_first(string line) =>
        Assert.Equal(AddressFamily.InterNetworkV6, Parse(line).Family);

    [Theory]
    [InlineData("-4 fwmark 0xf2 lookup vpn")]
    [InlineData("inet fwmark 0xf2 lookup vpn")]
    [InlineData("fwmark 0xf2 lookup vpn")]
    public void A_line_without_addresses_is_IPv4_as_ip_rule_add_makes_it(string line) =>
        Assert.Equal(AddressFamily.InterNetwork, Parse(line).Family);

    [Fact]
    public void Without_pref_the_rule_takes_the_automatic_priority()
    {
        Assert.Equal(2030u, Parse("fwmark 0xf2 lookup vpn", automatic: 2030).Priority);
    }

    [Theory]
    [InlineData("pref 1100")]
    [InlineData("priority 1100")]
    [InlineData("preference 1100")]
    [InlineData("order 1100")]
    public void Every_spelling_of_the_priority_is_read(string pref) =>
        Assert.Equal(1100u, Parse($"fwmark 0xf2 lookup vpn {pref}").Priority);

    [Fact]
    public void From_and_to_all_match_everything()
    {
        var rule = Parse("from all to all lookup vpn");
        Assert.Null(rule.From);
        Assert.Null(rule.To);
    }

    [Fact]
    public void A_host_address_is_a_full_length_prefix()
    {
        Assert.Equal(P("192.168.1.6/32"), Parse("from 192.168.1.6 lookup vpn").From);
    }

    [Fact]
    public void Not_inverts_the_selector()
    {
        var rule = Parse("not to 10.0.0.0/8 iif eth0 ipproto tcp dport 22 lookup wan");

        Assert.True(rule.Not);
        Assert.Equal(P("10.0.0.0/8"), rule.To);
        Assert.Equal("eth0", rule.Iif);
        Assert.Equal((byte)6, rule.IpProto);
        Assert.Equal(new PortRange(22, 22), rule.DestinationPort);
        Assert.Equal(201u, rule.Table);
    }

    [Theory]
    [InlineData("fwmark 0xf2 lookup vpn", 0xf2u, uint.MaxValue)]
    [InlineData("fwmark 242 lookup vpn", 0xf2u, uint.MaxValue)]
    [InlineData("fwmark 0xf2/0xff lookup vpn", 0xf2u, 0xffu)]
    [InlineData("fwmark 0x0/0xff00 lookup vpn", 0u, 0xff00u)]
    public void Fwmark_takes_an_optional_mask(string line, uint mark, uint mask)
    {
        var rule = Parse(line);
        Assert.Equal(mark, rule.FwMark);
        Assert.Equal(mask, rule.FwMask);
    }

    [Theory]
    [InlineData("iif")]
    [InlineData("dev")]
    public void Iif_and_its_alias_dev_select_the_input_interface(string word) =>
        Assert.Equal("eth3", Parse($"{word} eth3 lookup vpn").Iif);

    [Fact]
    public void Oif_selects_the_output_interface() => Assert.Equal("eth8", Parse("oif eth8 lookup vpn").Oif);

    [Theory]
    [InlineData("sport 80", 80, 80)]
    [InlineData("sport 1024-65535", 1024, 65535)]
    public void Sport_takes_a_port_or_a_range(string selector, int start, int end) =>
        Assert.Equal(new PortRange((ushort)start, (ushort)end), Parse($"ipproto tcp {selector} lookup vpn").SourcePort);

    [Theory]
    [InlineData("dport 22", 22, 22)]
    [InlineData("dport 8000-8080", 8000, 8080)]
    public void Dport_takes_a_port_or_a_range(string selector, int start, int end) =>
        Assert.Equal(new PortRange((ushort)start, (ushort)end), Parse($"ipproto tcp {selector} lookup vpn").DestinationPort);

    [Theory]
    [InlineData("tcp", 6)]
    [InlineData("udp", 17)]
    [InlineData("icmp", 1)]
    [InlineData("ipv6-icmp", 58)]
    [InlineData("47", 47)]
    public void Ipproto_takes_a_name_or_a_number(string proto, int number) =>
        Assert.Equal((byte)number, Parse($"ipproto {proto} lookup vpn").IpProto);

    [Fact]
    public void Uidrange_selects_sockets_of_a_uid_range() =>
        Assert.Equal(new UidRange(1000, 1999), Parse("uidrange 1000-1999 lookup vpn").UidRange);

    [Theory]
    [InlineData("tos 0x10")]
    [InlineData("tos 10")]
    [InlineData("dsfield 0x10")]
    public void Tos_is_hexadecimal_as_iproute2_reads_it(string selector) =>
        Assert.Equal((byte)0x10, Parse($"{selector} lookup vpn").Tos);

    [Theory]
    [InlineData("suppress_prefixlength 0")]
    [InlineData("sup_pl 0")]
    public void Suppress_prefixlength_is_read(string selector) =>
        Assert.Equal(0, Parse($"{selector} lookup main").SuppressPrefixLength);

    [Theory]
    [InlineData("to 192.0.2.0/24 blackhole", RuleAction.Blackhole)]
    [InlineData("to 192.0.2.0/24 unreachable", RuleAction.Unreachable)]
    [InlineData("to 192.0.2.0/24 prohibit", RuleAction.Prohibit)]
    [InlineData("to 192.0.2.0/24 type prohibit", RuleAction.Prohibit)]
    [InlineData("to 192.0.2.0/24 table vpn", RuleAction.Lookup)]
    public void Every_action_is_read(string line, RuleAction action)
    {
        var rule = Parse(line);
        Assert.Equal(action, rule.Action);
        Assert.Equal(action == RuleAction.Lookup ? 200u : 0u, rule.Table);
    }

    [Fact]
    public void A_table_may_be_a_number() => Assert.Equal(42u, Parse("fwmark 1 lookup 42").Table);

    [Fact]
    public void Every_rule_carries_the_given_protocol() => Assert.Equal((byte)147, Parse("fwmark 1 lookup vpn").Protocol);

    [Fact]
    public void A_parsed_rule_renders_back_as_an_ip_line()
    {
        var rule = Parse("not from 10.0.0.0/8 to 192.0.2.0/24 fwmark 0xf2/0xff iif eth0 oif eth1 ipproto tcp sport 1-2 dport 3-4 uidrange 5-6 tos 0x10 lookup vpn pref 7");

        Assert.Equal("not from 10.0.0.0/8 to 192.0.2.0/24 fwmark 0xf2/0xff iif eth0 oif eth1 ipproto tcp sport 1-2 dport 3-4 uidrange 5-6 tos 0x10 pref 7 lookup 200 protocol 147",
            rule.ToString());
    }

    // ---- errors: each names the line, the word by position and what was expected ----

    [Fact]
    public void A_misspelt_action_is_named_by_position_and_word()
    {
        Assert.Equal(
            "policy.json: Rules[2]: word 3 'lokup': did you mean 'lookup'? expected a selector (not, from, to, fwmark, iif, oif, ipproto, sport, dport, uidrange, tos, suppress_prefixlength), an action (lookup, blackhole, unreachable, prohibit) or pref",
            Error("from 10.10.10.0/24 lokup vpn"));
    }

    [Theory]
    [InlineData("from 10.10.10.0/33 lookup vpn", "word 2 '10.10.10.0/33': expected a prefix length from 0 to 32 after '/'")]
    [InlineData("from 10.10.10.1/24 lookup vpn", "word 2 '10.10.10.1/24': has host bits set; did you mean 10.10.10.0/24?")]
    [InlineData("from 10.10.10 lookup vpn", "word 2 '10.10.10': expected an IPv4 or IPv6 address or PREFIX")]
    [InlineData("from 10.0.0.0/8 to fd00::/8 lookup vpn", "word 4 'fd00::/8': is IPv6, but word 2 '10.0.0.0/8' made the line IPv4")]
    [InlineData("-6 from 10.0.0.0/8 lookup vpn", "word 3 '10.0.0.0/8': is IPv4, but word 1 '-6' made the line IPv6")]
    [InlineData("fwmark 0xfg lookup vpn", "word 2 '0xfg': expected a mark")]
    [InlineData("fwmark 0xf2/ lookup vpn", "word 2 '0xf2/': expected a mark")]
    [InlineData("iif eth0;reboot lookup vpn", "word 2 'eth0;reboot': expected an interface name")]
    [InlineData("oif abcdefghijklmnop lookup vpn", "word 2 'abcdefghijklmnop': expected an interface name")]
    [InlineData("dport 65536 lookup vpn", "word 2 '65536': expected a port (0-65535) or a range")]
    [InlineData("sport 20-10 lookup vpn", "word 2 '20-10': the range's start is greater than its end")]
    [InlineData("sport x lookup vpn", "word 2 'x': expected a port")]
    [InlineData("ipproto tcpp lookup vpn", "word 2 'tcpp': expected a protocol (tcp, udp")]
    [InlineData("uidrange 1000 lookup vpn", "word 2 '1000': expected a uid range START-END")]
    [InlineData("uidrange 2-1 lookup vpn", "word 2 '2-1': expected a uid range START-END with START <= END")]
    [InlineData("tos 0x100 lookup vpn", "word 2 '0x100': expected a tos value in hexadecimal")]
    [InlineData("suppress_prefixlength 129 lookup main", "word 2 '129': expected a prefix length from 0 to 128")]
    [InlineData("fwmark 1 lookup vpn pref 0", "word 6 '0': expected a priority from 1 to 4294967295")]
    [InlineData("fwmark 1 lookup vpn pref x", "word 6 'x': expected a priority")]
    [InlineData("fwmark 1 lookup nyet", "word 4 'nyet': is not a table defined in rt_tables or the policy's Tables")]
    [InlineData("fwmark 1 lookup 0", "word 4 '0': expected a table from 1 to")]
    [InlineData("fwmark 1 type nat", "word 4 'nat': expected a rule type (blackhole, unreachable, prohibit)")]
    [InlineData("fwmark 1 lookup vpn protocol static", "word 5 'protocol': tunnel-router sets the protocol itself")]
    [InlineData("fwmark 1 goto 100", "word 3 'goto': is not supported by tunnel-router")]
    [InlineData("fwmark 1 lookup vpn -6", "word 5 '-6': a family (-4, -6, inet, inet6) goes first on the line")]
    [InlineData("ip rule add from 10.0.0.0/8 lookup vpn", "word 1 'ip': write the rule without 'ip rule add'")]
    [InlineData("from 10.0.0.0/8 from 10.1.0.0/16 lookup vpn", "word 3 'from': 'from' is given twice")]
    [InlineData("fwmark 1 lookup vpn blackhole", "word 5 'blackhole': the rule already has an action")]
    [InlineData("fwmark 1 lookup vpn pref 1 priority 2", "word 7 'priority': 'priority' is given twice")]
    [InlineData("fwmark 1 lookup", "word 3 'lookup': expected a table name or number after it, found the end of the line")]
    [InlineData("from", "word 1 'from': expected an address, a PREFIX or all after it, found the end of the line")]
    [InlineData("-4", "word 1 '-4': expected a rule or route after the family")]
    public void Each_error_names_the_word_and_what_was_expected(string line, string expected)
    {
        var message = Error(line);

        Assert.StartsWith($"{Field}: {expected}", message);
    }

    [Theory]
    [InlineData("from 10.0.0.0/8", "has no action; add 'lookup TABLE'")]
    [InlineData("", "is empty; expected an ip rule")]
    [InlineData("   ", "is empty; expected an ip rule")]
    public void A_line_without_an_action_or_without_words_is_an_error(string line, string expected) =>
        Assert.Contains(expected, Error(line));

    [Fact]
    public void A_rule_without_pref_when_the_band_is_full_is_an_error() =>
        Assert.Contains("has no pref and the automatic band is full; add 'pref N'", Error("fwmark 1 lookup vpn", automatic: null));

    [Fact]
    public void A_control_character_in_a_line_is_echoed_printably() =>
        Assert.Contains("'x\\x1b[2J'", Error("fwmark 1 lookup vpn x\u001b[2J"));
}

/// <summary>Route lines as "ip route add" takes them.</summary>
public class RouteLineSpecs
{
    const string Field = "policy.json: Routes[0]";

    static uint? Tables(string name) => name switch
    {
        "vpn" => 200,
        "main" => 254,
        _ => TableNames.TryParseNumber(name, out var id) ? id : null,
    };

    static Route Parse(string line) => PolicyLine.ParseRoute(Field, line, new PolicyLine.Tables(Tables, ["vpn", "wan", "main"]), 147);

    static string Error(string line) => Assert.Throws<InputException>(() => Parse(line)).Message;

    static IPNetwork P(string text, AddressFamily? f = null) => Net.ParsePrefix("p", text, f);

    [Fact]
    public void The_NAT_router_default_reads_as_ip_route_add_reads_it()
    {
        Assert.Equal(new Route(P("default"), 200, 147, gateway: IPAddress.Parse("192.168.1.1")),
            Parse("default via 192.168.1.1 table vpn"));
    }

    [Fact]
    public void The_IPv6_twin_takes_its_family_from_the_gateway_and_gets_the_kernel_metric()
    {
        var route = Parse("default via fd00:1010:1010:1010::1 table vpn");

        Assert.Equal(AddressFamily.InterNetworkV6, route.Family);
        Assert.Equal(P("default", AddressFamily.InterNetworkV6), route.Destination);
        Assert.Equal(1024u, route.Metric);
    }

    [Fact]
    public void A_stated_family_with_dev_reads_as_written()
    {
        var route = Parse("-6 default via fd00:1010:1010:1010::1 dev eth1 table vpn");

        Assert.Equal(new Route(P("default", AddressFamily.InterNetworkV6), 200, 147, device: "eth1",
            gateway: IPAddress.Parse("fd00:1010:1010:1010::1")), route);
    }

    [Theory]
    [InlineData("unreachable default table vpn metric 4278198272", RouteType.Unreachable)]
    [InlineData("blackhole 192.0.2.0/24 table vpn", RouteType.Blackhole)]
    [InlineData("prohibit 192.0.2.0/24 table vpn", RouteType.Prohibit)]
    [InlineData("throw 10.0.0.0/8 table vpn", RouteType.Throw)]
    [InlineData("unicast 10.0.0.0/8 dev eth0 table vpn", RouteType.Unicast)]
    public void Every_route_type_is_read(string line, RouteType type) => Assert.Equal(type, Parse(line).Type);

    [Fact]
    public void The_unreachable_catch_all_keeps_its_metric() =>
        Assert.Equal(4278198272u, Parse("unreachable default table vpn metric 4278198272").Metric);

    [Fact]
    public void Every_option_is_read()
    {
        var route = Parse("192.168.7.0/24 via 192.168.1.1 dev eth1 src 192.168.1.100 metric 5 onlink mtu 1400 table vpn");

        Assert.Equal(new Route(P("192.168.7.0/24"), 200, 147, device: "eth1", gateway: IPAddress.Parse("192.168.1.1"),
            source: IPAddress.Parse("192.168.1.100"), metric: 5, onLink: true, mtu: 1400), route);
    }

    [Theory]
    [InlineData("to 10.0.0.0/8 dev eth0")]
    [InlineData("10.0.0.0/8 dev eth0")]
    [InlineData("dev eth0 10.0.0.0/8")]
    [InlineData("10.0.0.0/8 oif eth0 table main")]
    [InlineData("10.0.0.0/8 dev eth0 scope link")]
    [InlineData("-4 10.0.0.0/8 dev eth0 preference 0")]
    public void The_destination_and_the_aliases_are_read_as_ip_reads_them(string line) =>
        Assert.Equal(new Route(P("10.0.0.0/8"), 254, 147, device: "eth0"), Parse(line));

    [Fact]
    public void Via_may_state_its_family() =>
        Assert.Equal(IPAddress.Parse("fd00::1"), Parse("default via inet6 fd00::1 table vpn").Gateway);

    [Fact]
    public void The_connected_route_of_an_uplink_reads_with_its_source() =>
        Assert.Equal(IPAddress.Parse("192.168.1.6"), Parse("192.168.1.0/24 dev eth0 src 192.168.1.6 table vpn").Source);

    [Fact]
    public void A_route_without_table_goes_to_main() => Assert.Equal(254u, Parse("10.0.0.0/8 dev eth0").Table);

    [Fact]
    public void A_parsed_route_renders_back_as_an_ip_line() =>
        Assert.Equal("192.168.7.0/24 via 192.168.1.1 dev eth1 src 192.168.1.100 table 200 proto 147 metric 5 onlink mtu 1400",
            Parse("192.168.7.0/24 via 192.168.1.1 dev eth1 src 192.168.1.100 metric 5 onlink mtu 1400 table vpn").ToString());

    [Theory]
    [InlineData("default via 192.168.1.1 tabel vpn", "word 4 'tabel': did you mean 'table'? expected an option (via, dev, src, metric, table, onlink, mtu)")]
    [InlineData("defualt via 192.168.1.1 table vpn", "word 1 'defualt': did you mean 'default'? expected a destination (default or PREFIX), a route type")]
    [InlineData("default via 192.168.1.256 table vpn", "word 3 '192.168.1.256': expected a gateway address (IPv4 or IPv6)")]
    [InlineData("default via fd00::1 src 10.0.0.1 table vpn", "word 5 '10.0.0.1': is IPv4, but word 3 'fd00::1' made the line IPv6")]
    [InlineData("-4 default via fd00::1 table vpn", "word 4 'fd00::1': is IPv6, but word 1 '-4' made the line IPv4")]
    [InlineData("default via inet6 10.0.0.1 table vpn", "word 4 '10.0.0.1': expected an IPv6 gateway address")]
    [InlineData("10.0.0.1/8 dev eth0", "word 1 '10.0.0.1/8': has host bits set; did you mean 10.0.0.0/8?")]
    [InlineData("fd00::/129 dev eth0", "word 1 'fd00::/129': expected a prefix length from 0 to 128 after '/'")]
    [InlineData("default dev eth0 table nyet", "word 5 'nyet': is not a table defined in rt_tables or the policy's Tables")]
    [InlineData("default via 10.0.0.1 metric -1", "word 5 '-1': expected a metric from 0 to 4294967295")]
    [InlineData("default via 10.0.0.1 mtu 20", "word 5 '20': expected an MTU from 68 to 65535")]
    [InlineData("default via 10.0.0.1 mtu lock 1400", "word 5 'lock': 'mtu lock' is not supported")]
    [InlineData("default via 10.0.0.1 scope host", "word 5 'host': expected scope link or global")]
    [InlineData("default via 10.0.0.1 scope link", "word 5 'link': tunnel-router gives this route scope global, as ip does")]
    [InlineData("-6 default via fd00::1 pref high", "word 6 'high': only 'pref medium' (the kernel's default) is supported")]
    [InlineData("default via 10.0.0.1 proto static", "word 4 'proto': tunnel-router sets the protocol itself")]
    [InlineData("default nexthop via 10.0.0.1", "word 2 'nexthop': is not supported by tunnel-router")]
    [InlineData("local 10.0.0.1 dev lo", "word 1 'local': this route type is not supported by tunnel-router")]
    [InlineData("default via 10.0.0.1 dev eth0 dev eth1", "word 6 'dev': 'dev' is given twice")]
    [InlineData("default via 10.0.0.1 to 10.0.0.0/8", "word 4 'to': the route already has a destination")]
    [InlineData("default via 10.0.0.1 dev eth0;reboot", "word 5 'eth0;reboot': expected an interface name")]
    [InlineData("default via", "word 2 'via': expected a gateway address after it, found the end of the line")]
    [InlineData("default via 10.0.0.1 -6", "word 4 '-6': a family (-4, -6, inet, inet6) goes first on the line")]
    [InlineData("ip route add default via 10.0.0.1", "word 1 'ip': write the route without 'ip route add'")]
    public void Each_error_names_the_word_and_what_was_expected(string line, string expected) =>
        Assert.StartsWith($"{Field}: {expected}", Error(line));

    [Theory]
    [InlineData("via 10.0.0.1 table vpn", "has no destination; expected 'default' or a PREFIX")]
    [InlineData("default table vpn", "needs 'via ADDRESS' or 'dev NAME'")]
    [InlineData("unreachable default dev eth0 table vpn", "a route of type unreachable takes no via, dev or onlink")]
    [InlineData("10.0.0.0/8 dev eth0 onlink", "onlink needs 'via ADDRESS'")]
    [InlineData("", "is empty; expected an ip route")]
    public void An_incomplete_route_is_an_error_naming_the_line(string line, string expected) =>
        Assert.Contains(expected, Error(line));

    [Fact]
    public void Words_are_split_at_runs_of_spaces_and_tabs_however_long_the_line()
    {
        Assert.Equal(Parse("10.0.0.0/8 dev eth0 table vpn metric 5"), Parse(" 10.0.0.0/8 \t dev  eth0\ttable   vpn metric\t\t5 "));
        // Past 32 words a line's word bounds no longer fit the stack: the same words, the same errors.
        var tail = string.Join(' ', Enumerable.Range(0, 40).Select(i => $"w{i}"));
        Assert.StartsWith($"{Field}: word 4 'w0': expected an option", Error($"10.0.0.0/8 dev eth0 {tail}"));
        Assert.StartsWith($"{Field}: word 5 'w1': expected a metric from 0 to 4294967295", Error($"10.0.0.0/8 dev eth0 metric\t\t{tail.Replace("w0 ", "")}"));
    }

    [Fact]
    public void Many_lines_share_the_strings_of_a_device_and_a_table()
    {
        var a = Parse("10.0.0.0/8 dev tun0 table vpn");
        var b = Parse("10.1.0.0/16 dev tun0 table vpn");
        Assert.Same(a.Device, b.Device);
        Assert.Equal((a.Table, b.Table), (200u, 200u));
    }
}
