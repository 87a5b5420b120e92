using System.Net;
using System.Net.Sockets;
using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Policy;
using TunnelRouter.Kernel;
using TunnelRouter.Tests.Support;
using Xunit;

namespace TunnelRouter.Tests.Unit;

public class UplinkSpecs
{
    static IPAddress A(string s) => IPAddress.Parse(s);

    [Fact]
    public void An_uplink_gives_its_table_the_connected_route_the_default_route_and_a_source_rule()
    {
        var uplink = new Uplink("eth0", 10, 3000, [new InterfaceAddress(A("192.168.1.6"), 24)], [A("192.168.1.1")]);

        var state = uplink.Desired(147);

        Assert.Equal(
        [
            "192.168.1.0/24 dev eth0 src 192.168.1.6 table 10 proto 147",
            "default via 192.168.1.1 dev eth0 table 10 proto 147",
        ], state.Routes.Select(r => r.ToString()));
        Assert.Equal(["from 192.168.1.6/32 pref 3000 lookup 10 protocol 147"], state.Rules.Select(r => r.ToString()));
    }

    [Fact]
    public void Both_families_of_an_uplink_get_their_routes_and_rules()
    {
        var uplink = new Uplink("eth0", 10, 3000,
            [new InterfaceAddress(A("192.168.1.6"), 24), new InterfaceAddress(A("fd00:1::6"), 64)], [A("192.168.1.1"), A("fd00:1::1")]);

        var state = uplink.Desired(147);

        Assert.Equal(4, state.Routes.Count);
        Assert.Equal([AddressFamily.InterNetwork, AddressFamily.InterNetworkV6], state.Rules.Select(r => r.Family));
    }

    [Fact]
    public void A_gateway_outside_the_uplinks_network_is_reached_on_link()
    {
        var uplink = new Uplink("ppp0", 10, 3000, [new InterfaceAddress(A("203.0.113.5"), 32)], [A("198.51.100.1")]);

        var state = uplink.Desired(147);

        var route = Assert.Single(state.Routes);
        Assert.True(route.OnLink);
    }
}

public class InterfaceAddressSpecs
{
    [Fact]
    public void The_ip_backend_reads_global_addresses_of_both_families_primary_first()
    {
        // ip -j addr show dev eth0 (iproute2 6.1), with a link-local address added to show it is skipped.
        const string json = """
            [{"ifindex":3,"ifname":"eth0","addr_info":[
              {"family":"inet","local":"192.168.1.6","prefixlen":24,"scope":"global","label":"eth0"},
              {"family":"inet","local":"192.168.1.7","prefixlen":24,"scope":"global","secondary":true,"label":"eth0"},
              {"family":"inet6","local":"fd00:1::6","prefixlen":64,"scope":"global","nodad":true},
              {"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"}]}]
            """;

        var addresses = TunnelRouter.Kernel.IpBackend.ParseAddresses(json).ToList();

        Assert.Equal(["192.168.1.6/24", "192.168.1.7/24", "fd00:1::6/64"], addresses.Select(a => a.ToString()));
    }
}

public class PolicyStateSpecs
{
    [Fact]
    public void A_route_written_without_dev_matches_the_kernels_copy_with_the_device_it_chose()
    {
        var want = new Route(Net.ParsePrefix("d", "default"), 200, 147, gateway: IPAddress.Parse("192.168.1.1"));
        var have = want with { Device = "eth1" };

        var settled = PolicyState.Settle(new KernelState([want], []), new KernelState([have], []));

        Assert.Equal([have], settled.Routes);
        Assert.Empty(Planner.Plan(settled, new KernelState([have], []), Ownership.ByProtocol(147)));
    }

    [Fact]
    public void A_route_differing_in_more_than_the_device_is_left_as_the_policy_wrote_it()
    {
        var want = new Route(Net.ParsePrefix("d", "default"), 200, 147, gateway: IPAddress.Parse("192.168.1.1"));
        var other = want with { Device = "eth1", Gateway = IPAddress.Parse("192.168.1.2") };

        Assert.Equal([want], PolicyState.Settle(new KernelState([want], []), new KernelState([other], [])).Routes);
    }
}

/// <summary>The policy parsed once and reconciled against hand-made snapshots.</summary>
public class PolicyReconcilerSpecs
{
    ParsedPolicy Parse(TunnelRouterOptions options) => PolicyParser.Parse(options, Iproute2Files.Of(), "policy.json");

    IReadOnlyList<Change> Plan(TunnelRouterOptions options, KernelSnapshot? snapshot = null) =>
        Reconciler.Plan(Parse(options), snapshot ?? Kernel(KernelState.Empty), ReconcileMode.Converge).Changes;

    /// <summary>A snapshot of plain data: routes and rules, the global addresses of devices, and the links eth0,
    /// eth1 and tun0 (what is not there waits for its device).</summary>
    static KernelSnapshot Kernel(KernelState state, Dictionary<string, InterfaceAddress[]>? addresses = null) => new()
    {
        State = state,
        GlobalAddresses = (addresses ?? []).ToDictionary(kv => kv.Key, kv => (IReadOnlyList<InterfaceAddress>)kv.Value),
        Links = Snapshots.Links("eth0", "eth1", "tun0"),
    };

    static Route MainDefault(string via, string dev) =>
        new(Net.ParsePrefix("d", "default"), TableNames.Main, 4, device: dev, gateway: IPAddress.Parse(via));

    static string[] Lines(IEnumerable<Change> plan) => plan.Select(c => c.Batch()!).ToArray();

    [Fact]
    public void Rules_without_pref_take_2000_plus_10_per_line_and_explicit_ones_keep_theirs()
    {
        var policy = Parse(new TunnelRouterOptions
        {
            Tables = new() { ["vpn"] = 200 },
            Rules = ["from 10.10.10.0/24 lookup vpn", "fwmark 0xf2 lookup vpn pref 1100", "from fd00::/64 lookup vpn"],
        });

        Assert.Equal([2000u, 1100u, 2020u], policy.Rules.Select(r => r.Priority));
        Assert.All(policy.Rules, r => Assert.Equal((byte)147, r.Protocol));
    }

    [Fact]
    public void The_hooks_table_resolves_for_apply_without_a_Tables_entry()
    {
        var policy = Parse(new TunnelRouterOptions { Table = "vpn", TableId = 210, Rules = ["from 10.10.10.0/24 lookup vpn"] });

        Assert.Equal(210u, policy.Rules[0].Table);
    }

    [Fact]
    public void A_Tables_entry_that_contradicts_the_hosts_rt_tables_is_an_error()
    {
        var host = new TableNames();
        host.Load("42 vpn\n");
        var options = new TunnelRouterOptions { Tables = new() { ["vpn"] = 200 } };

        var e = Assert.Throws<InputException>(() => PolicyParser.Parse(options, Iproute2Files.Of(host), "policy.json"));

        Assert.Equal("policy.json: Tables.vpn: 200: the host's rt_tables files already define 'vpn' as 42; use 42", e.Message);
    }

    [Fact]
    public void Two_routes_with_one_key_are_an_error_naming_both()
    {
        var options = new TunnelRouterOptions
        {
            Tables = new() { ["vpn"] = 200 },
            Routes = ["default via 192.168.1.1 table vpn", "default via 192.168.1.2 table vpn"],
        };

        var e = Assert.Throws<InputException>(() => Parse(options));

        Assert.StartsWith("policy.json: Routes[1]: 'default via 192.168.1.2 table vpn' has the same table, destination and metric as Routes[0]", e.Message);
    }

    [Fact]
    public void An_uplink_reads_its_address_and_gateway_from_the_kernel()
    {
        var kernel = Kernel(new KernelState([MainDefault("192.168.1.1", "eth0")], []),
            new() { ["eth0"] = [new InterfaceAddress(IPAddress.Parse("192.168.1.6"), 24)] });
        var plan = Plan(new TunnelRouterOptions
        {
            Tables = new() { ["lan1"] = 10 },
            Uplinks = [new UplinkOptions { Interface = "eth0", Table = "lan1" }],
        }, kernel);

        Assert.Equal(
        [
            "route add 192.168.1.0/24 dev eth0 src 192.168.1.6 table 10 proto 147",
            "route add default via 192.168.1.1 dev eth0 table 10 proto 147",
            "rule add from 192.168.1.6/32 pref 3000 lookup 10 protocol 147",
        ], Lines(plan));
    }

    [Fact]
    public void An_uplink_takes_the_policys_address_and_gateway_over_the_kernels()
    {
        var plan = Plan(new TunnelRouterOptions
        {
            Tables = new() { ["lan2"] = 20 },
            Uplinks = [new UplinkOptions { Interface = "eth1", Table = "lan2", Address = "192.168.2.2/24", Gateway = "192.168.2.1", Priority = 900 }],
        });

        Assert.Equal(
        [
            "route add 192.168.2.0/24 dev eth1 src 192.168.2.2 table 20 proto 147",
            "route add default via 192.168.2.1 dev eth1 table 20 proto 147",
            "rule add from 192.168.2.2/32 pref 900 lookup 20 protocol 147",
        ], Lines(plan));
    }

    [Fact]
    public void A_family_read_from_the_kernel_without_a_gateway_is_left_out()
    {
        var kernel = Kernel(new KernelState([MainDefault("192.168.1.1", "eth0")], []),
            new() { ["eth0"] = [new InterfaceAddress(IPAddress.Parse("192.168.1.6"), 24), new InterfaceAddress(IPAddress.Parse("fd00:1::6"), 64)] });
        var plan = Plan(new TunnelRouterOptions
        {
            Tables = new() { ["lan1"] = 10 },
            Uplinks = [new UplinkOptions { Interface = "eth0", Table = "lan1" }],
        }, kernel);

        Assert.All(plan, c => Assert.Equal(AddressFamily.InterNetwork, c.Family));
    }

    [Fact]
    public void The_plan_says_which_family_of_an_uplink_is_left_out_and_why()
    {
        var kernel = Kernel(new KernelState([MainDefault("192.168.1.1", "eth0")], []),
            new() { ["eth0"] = [new InterfaceAddress(IPAddress.Parse("192.168.1.6"), 24), new InterfaceAddress(IPAddress.Parse("fd00:1::6"), 64)] });

        var plan = Reconciler.Plan(Parse(new TunnelRouterOptions
        {
            Tables = new() { ["lan1"] = 10 },
            Uplinks = [new UplinkOptions { Interface = "eth0", Table = "lan1" }],
        }), kernel, ReconcileMode.Converge);

        var note = Assert.Single(plan.Notes);
        Assert.True(note.Stated);
        Assert.Equal("policy.json: Uplinks[0]: IPv6 left out: eth0 has fd00:1::6, but main has no IPv6 default route via eth0 and the uplink no Gateway6; set Gateway6 to route its replies too",
            note.Text);
    }

    [Fact]
    public void Gateway6_gives_an_uplink_its_IPv6_gateway_beside_the_IPv4_one()
    {
        var kernel = Kernel(KernelState.Empty,
            new() { ["eth1"] = [new InterfaceAddress(IPAddress.Parse("192.168.2.2"), 24), new InterfaceAddress(IPAddress.Parse("fd00:2::2"), 64)] });

        var plan = Plan(new TunnelRouterOptions
        {
            Tables = new() { ["lan2"] = 20 },
            Uplinks = [new UplinkOptions { Interface = "eth1", Table = "lan2", Gateway = "192.168.2.1", Gateway6 = "fd00:2::1" }],
        }, kernel);

        // In whatever order the planner sends them: both families' routes and rules.
        Assert.Equal(string.Join("\n", new[]
        {
            "route add 192.168.2.0/24 dev eth1 src 192.168.2.2 table 20 proto 147",
            "route add default via 192.168.2.1 dev eth1 table 20 proto 147",
            "route add fd00:2::/64 dev eth1 src fd00:2::2 table 20 proto 147",
            "route add default via fd00:2::1 dev eth1 table 20 proto 147",
            "rule add from 192.168.2.2/32 pref 3000 lookup 20 protocol 147",
            "rule add from fd00:2::2/128 pref 3000 lookup 20 protocol 147",
        }.Order(StringComparer.Ordinal)), string.Join("\n", Lines(plan).Order(StringComparer.Ordinal)));
    }

    [Theory]
    [InlineData("fd00::1", "fd00::2", null, "policy.json: Uplinks[0].Gateway: fd00::1 is IPv6 and so is Gateway6; give the IPv4 gateway in Gateway")]
    [InlineData("192.168.1.1", "192.168.1.2", null, "policy.json: Uplinks[0].Gateway6: '192.168.1.2' is IPv4 but IPv6 was expected")]
    [InlineData(null, "fd00::1", "192.168.1.6/24", "policy.json: Uplinks[0].Gateway6: the uplink's Address 192.168.1.6 is IPv4 only; leave Address out to read both families from eth0")]
    public void Gateway6_errors_name_the_key(string? gateway, string gateway6, string? address, string expected)
    {
        var e = Assert.Throws<InputException>(() => Parse(new TunnelRouterOptions
        {
            Tables = new() { ["lan1"] = 10 },
            Uplinks = [new UplinkOptions { Interface = "eth0", Table = "lan1", Gateway = gateway, Gateway6 = gateway6, Address = address }],
        }));

        Assert.StartsWith(expected, e.Message);
    }

    [Theory]
    [InlineData("eth1", "192.168.2.2", null, "policy.json: Uplinks[0].Address: 192.168.2.2 is not on eth1, so its prefix length cannot be read; write it with its prefix, e.g. 192.168.2.2/24")]
    [InlineData("eth0", "192.168.1.6", null, "policy.json: Uplinks[0].Gateway: is not set and table main has no default route via eth0 to read it from; set Gateway")]
    [InlineData("eth0", "192.168.1.6/24", "fd00::1", "policy.json: Uplinks[0].Gateway: 'fd00::1' is IPv6 but IPv4 was expected")]
    [InlineData("eth0;x", null, null, "policy.json: Uplinks[0].Interface: 'eth0;x' is not a valid interface name")]
    public void Uplink_errors_name_the_key(string dev, string? address, string? gateway, string expected)
    {
        var kernel = Kernel(KernelState.Empty, new() { ["eth0"] = [new InterfaceAddress(IPAddress.Parse("192.168.1.6"), 24)] });
        var options = new TunnelRouterOptions
        {
            Tables = new() { ["lan1"] = 10 },
            Uplinks = [new UplinkOptions { Interface = dev, Table = "lan1", Address = address, Gateway = gateway }],
        };

        var e = Assert.Throws<InputException>(() => Plan(options, kernel));

        Assert.StartsWith(expected, e.Message);
    }

    [Fact]
    public void Apply_plans_against_protocol_147_only_and_leaves_the_hooks_and_foreign_objects()
    {
        var hookRule = new Rule(AddressFamily.InterNetwork, 1000, RuleAction.Lookup, 200, 148, from: Net.ParsePrefix("f", "10.10.10.0/24"));
        var foreign = new Rule(AddressFamily.InterNetwork, 2000, RuleAction.Lookup, 200, 0, from: Net.ParsePrefix("f", "192.0.2.0/24"));
        var stale = new Rule(AddressFamily.InterNetwork, 2010, RuleAction.Lookup, 200, 147, from: Net.ParsePrefix("f", "198.51.100.0/24"));
        var plan = Plan(new TunnelRouterOptions { Tables = new() { ["vpn"] = 200 }, Rules = ["from 10.10.10.0/24 lookup vpn"] },
            Kernel(new KernelState([], [hookRule, foreign, stale])));

        Assert.Equal(
        [
            "rule add from 10.10.10.0/24 pref 2000 lookup 200 protocol 147",
            "rule del from 198.51.100.0/24 pref 2010 lookup 200 protocol 147",
        ], Lines(plan));
    }

    [Fact]
    public void A_foreign_or_hook_route_with_the_key_of_a_policy_route_is_a_conflict_in_both_families()
    {
        var hook = new Route(Net.ParsePrefix("d", "default", AddressFamily.InterNetworkV6), 200, 148, device: "eth1",
            gateway: IPAddress.Parse("fd00::9"));
        var options = new TunnelRouterOptions { Tables = new() { ["vpn"] = 200 }, Routes = ["default via fd00::1 dev eth1 table vpn"] };

        var connected = new Route(Net.ParsePrefix("d", "fd00::/64", AddressFamily.InterNetworkV6), TableNames.Main, 2, device: "eth1");

        var e = Assert.Throws<ConflictException>(() => Plan(options, Kernel(new KernelState([hook, connected], []))));

        Assert.StartsWith("route 'default via fd00::9 dev eth1 table vpn proto tunnel-router-hook' is in the way of the policy's 'default via fd00::1 dev eth1 table vpn", e.Message);
    }
}
