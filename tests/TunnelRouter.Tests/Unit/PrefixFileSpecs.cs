using System.Net;
using TunnelRouter.Cli;
using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;
using TunnelRouter.Tests.Support;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>Prefix files: one prefix a line becomes the entry's route; errors name file:line.</summary>
public class PrefixFileSpecs
{
    ParsedPolicy Parse(string text, string route = "dev tun0 table vpn", List<string>? routes = null) =>
        PolicyParser.Parse(
            new TunnelRouterOptions
            {
                Tables = new() { ["vpn"] = 200 },
                Routes = routes ?? [],
                PrefixLists = [new PrefixListOptions { File = "/lists/ru.txt", Route = route }],
            },
            Iproute2Files.Of(), "policy.json", _ => new StringReader(text));

    [Fact]
    public void Each_prefix_of_either_family_becomes_the_route_and_comments_and_blank_lines_are_skipped()
    {
        var policy = Parse("# Russia\n10.0.0.0/8\n\n2001:db8::/32   # a comment\n192.0.2.7\n");

        Assert.Equal(
        [
            "10.0.0.0/8 dev tun0 table 200 proto 147",
            "2001:db8::/32 dev tun0 table 200 proto 147",
            "192.0.2.7 dev tun0 table 200 proto 147",
        ], policy.Routes.Select(r => r.ToString()));
    }

    [Fact]
    public void Duplicate_and_overlapping_prefixes_are_fine_and_a_prefix_the_policy_routes_already_is_kept_once()
    {
        var policy = Parse("10.0.0.0/8\n10.0.0.0/8\n10.1.0.0/16\n", routes: ["10.1.0.0/16 dev tun0 table vpn"]);

        Assert.Equal(["10.1.0.0/16", "10.0.0.0/8"], policy.Routes.Select(r => Net.Format(r.Destination)));
        Assert.Single(policy.PrefixLists[0].Routes);
    }

    [Theory]
    [InlineData("10.0.0.0/8\n10.0.0.0/8\n10.1.0.0/16\n2001:db8::/32\n2001:db8::/32\n", "10.0.0.0/8 10.1.0.0/16 2001:db8::/32")]
    [InlineData("10.1.0.0/16\n10.0.0.0/8\n10.1.0.0/16\n10.0.0.0/8\n", "10.1.0.0/16 10.0.0.0/8")]
    [InlineData("2001:db8::/32\n10.0.0.0/8\n2001:db8::/32\n", "2001:db8::/32 10.0.0.0/8")]
    public void A_duplicate_is_dropped_whether_the_file_is_sorted_or_not_and_the_files_order_is_kept(string text, string kept) =>
        Assert.Equal(kept, string.Join(' ', Parse(text).Routes.Select(r => Net.Format(r.Destination))));

    [Theory]
    [InlineData("10.0.0.0/8\n10.0.0.1/8\n", "/lists/ru.txt:2: '10.0.0.1/8' is not a prefix")]
    [InlineData("10.0.0.0/8\n\n10/8\n", "/lists/ru.txt:3: '10/8' is not a prefix")]
    [InlineData("banana\n", "/lists/ru.txt:1: 'banana' is not a prefix")]
    public void A_bad_line_is_an_error_naming_file_and_line(string text, string expected)
    {
        var e = Assert.Throws<InputException>(() => Parse(text));

        Assert.StartsWith(expected, e.Message);
    }

    [Fact]
    public void A_prefix_of_a_family_the_route_cannot_take_is_an_error_naming_file_and_line()
    {
        var e = Assert.Throws<InputException>(() => Parse("10.0.0.0/8\n2001:db8::/32\n", route: "via 10.8.0.1 dev tun0 table vpn"));

        Assert.StartsWith("/lists/ru.txt:2: '2001:db8::/32' cannot take policy.json: PrefixLists[0].Route", e.Message);
    }

    [Fact]
    public void Plan_summarises_the_routes_of_a_prefix_file_unless_verbose()
    {
        var policy = Parse("10.0.0.0/8\n10.1.0.0/16\n192.0.2.0/24\n", routes: ["198.51.100.0/24 dev tun0 table vpn"]);
        var plan = Reconciler.Plan(policy, new KernelSnapshot { Links = Snapshots.Links("tun0") }, ReconcileMode.Converge).Changes;

        var summary = Commands.PlanLines(plan, policy, policy.TableNames, policy.ProtocolNames, verbose: false).ToList();
        var full = Commands.PlanLines(plan, policy, policy.TableNames, policy.ProtocolNames, verbose: true).ToList();

        Assert.Equal(["ip -4 route add 198.51.100.0/24 dev tun0 table vpn proto tunnel-router", "+ 3 routes in table vpn from ru.txt"], summary);
        Assert.Equal(4, full.Count);
    }

    [Fact]
    public void A_relative_file_is_an_error()
    {
        var e = Assert.Throws<InputException>(() => PolicyParser.Parse(
            new TunnelRouterOptions { PrefixLists = [new PrefixListOptions { File = "ru.txt", Route = "dev tun0" }] },
            Iproute2Files.Of(), "policy.json", _ => new StringReader("")));

        Assert.Equal("policy.json: PrefixLists[0].File: 'ru.txt' is not an absolute path", e.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("\n")]
    [InlineData("a")]
    [InlineData("a\nb")]
    [InlineData("a\r\nb\r\n")]
    [InlineData("a\rb\r\rc\n\n")]
    [InlineData("\r\n\r\n# x\r\n10.0.0.0/8")]
    public void A_prefix_file_is_split_into_lines_as_ReadLine_splits_it(string text) =>
        Assert.Equal(ReadLines(text), PrefixFile.Lines(new StringReader(text)).Select(l => l.ToString()));

    [Theory]
    [InlineData(65535, "\r\n")]
    [InlineData(65536, "\r\n")]
    [InlineData(65535, "\r")]
    [InlineData(200000, "\n")]
    public void Lines_longer_than_the_buffer_and_line_ends_across_two_reads_are_split_the_same(int length, string end)
    {
        var text = new string('x', length) + end + "10.0.0.0/8" + end + new string('y', 3) + end + "last";

        Assert.Equal(ReadLines(text), PrefixFile.Lines(new StringReader(text)).Select(l => l.ToString()));
    }

    static List<string> ReadLines(string text)
    {
        var reader = new StringReader(text);
        var lines = new List<string>();
        while (reader.ReadLine() is { } line) lines.Add(line);
        return lines;
    }

    [Theory]
    [InlineData("10.0.0.0/8", true)]
    [InlineData("10.0.0.1/8", false)]
    [InlineData("0.0.0.0/0", true)]
    [InlineData("192.0.2.7", true)]
    [InlineData("2001:db8::/32", true)]
    [InlineData("2001:db8::1/32", false)]
    [InlineData("::/0", true)]
    [InlineData("::ffff:10.0.0.0/104", true)]
    [InlineData("10.0.0.0/33", false)]
    [InlineData("10/8", false)]
    [InlineData("010.0.0.0/8", false)]
    [InlineData("fe80::1%eth0", false)]
    public void A_prefix_read_as_a_number_is_the_prefix_read_as_a_network(string text, bool valid)
    {
        Assert.Equal(valid, PrefixFile.TryParsePrefix(text, out var network));
        if (!valid) return;
        var slash = text.IndexOf('/');
        var address = IPAddress.Parse(slash < 0 ? text : text[..slash]);
        Assert.Equal(new IPNetwork(address, slash < 0 ? Net.MaxPrefix(address.AddressFamily) : int.Parse(text[(slash + 1)..])), network);
    }
}
