using System.Net;
using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>plan judges every gateway the kernel will, wherever it comes from (Routes, PrefixLists' Route, Uplinks,
/// Tunnels' routes, live tunnels' Instances lines), once per (table, device, gateway), and names where it came from.
/// Plain data: a snapshot built by hand.</summary>
public class PlanGatewaySpecs
{
    static IPAddress A(string s) => IPAddress.Parse(s);

    static Route Connected(string prefix, string device, uint table = TableNames.Main) => new(Net.ParsePrefix("r", prefix), table, 2, device: device);

    static Link Link(string name, bool up = true, params string[] addresses) =>
        new(name, name.Length, null, 1500, up, null, null, [.. addresses.Select(a => InterfaceAddress.Parse("a", a))]);

    /// <summary>wan 192.168.1.2/24 and tun0 10.8.0.2/24 up with their connected routes in main; eth1 down.</summary>
    static KernelSnapshot Host(params Route[] more) => new()
    {
        Links = [Link("wan", true, "192.168.1.2/24"), Link("tun0", true, "10.8.0.2/24"), Link("eth1", false, "192.168.2.2/24")],
        State = new KernelState([Connected("192.168.1.0/24", "wan"), Connected("10.8.0.0/24", "tun0"), .. more], []),
    };

    ParsedPolicy Parse(TunnelRouterOptions o, Dictionary<string, string>? files = null) =>
        PolicyParser.Parse(o, Iproute2Files.Of(), "policy.json", f => new StringReader(files![f]));

    static string Refused(ParsedPolicy policy, KernelSnapshot snapshot, IReadOnlyList<TunnelRecord>? live = null) =>
        Assert.Throws<EnvironmentException>(() => Reconciler.Plan(policy, live ?? [], snapshot, ReconcileMode.Converge)).Message;

    [Fact]
    public void A_prefix_files_routes_via_a_gateway_off_link_are_one_problem_naming_the_list_and_how_many()
    {
        var policy = Parse(new TunnelRouterOptions
        {
            Tables = new() { ["vpn"] = 200 },
            PrefixLists = [new PrefixListOptions { File = "/lists/ru.txt", Route = "via 10.9.0.1 dev tun0 table vpn" }],
        }, new() { ["/lists/ru.txt"] = "5.3.0.0/16\n5.8.0.0/16\n31.13.0.0/16\n" });

        var message = Refused(policy, Host());

        Assert.Equal("policy.json: PrefixLists[0].Route (ru.txt): its 3 routes like '5.3.0.0/16 via 10.9.0.1 dev tun0 table vpn proto tunnel-router': gateway 10.9.0.1 is not on a connected network of tun0, so the kernel would refuse it (\"Nexthop has invalid gateway\"); add the address or route that reaches it, or 'onlink' if it is on the link anyway", message);
    }

    [Fact]
    public void An_uplink_whose_gateway_is_its_own_address_is_named_by_its_Gateway_key()
    {
        var policy = Parse(new TunnelRouterOptions
        {
            Tables = new() { ["lan1"] = 10 },
            Uplinks = [new UplinkOptions { Interface = "wan", Table = "lan1", Address = "192.168.1.2/24", Gateway = "192.168.1.2" }],
        });

        var message = Refused(policy, Host());

        Assert.Equal("policy.json: Uplinks[0].Gateway: route 'default via 192.168.1.2 dev wan table lan1 proto tunnel-router': gateway 192.168.1.2 is an address of this host, so the kernel would refuse it or route the packets back to this host; give the next hop's address", message);
    }

    [Fact]
    public void An_uplink_on_a_device_that_is_down_is_refused_before_the_kernel_refuses_it()
    {
        var policy = Parse(new TunnelRouterOptions
        {
            Tables = new() { ["lan2"] = 20 },
            Uplinks = [new UplinkOptions { Interface = "eth1", Table = "lan2", Address = "192.168.2.2/24", Gateway = "192.168.2.1" }],
        });

        var message = Refused(policy, Host());

        Assert.Contains("Uplinks[0].Gateway: route 'default via 192.168.2.1 dev eth1 table lan2 proto tunnel-router': eth1 is down, so the kernel would refuse it (\"Nexthop device is not up\")", message);
    }

    [Fact]
    public void A_tunnels_route_is_judged_against_the_tunnels_own_addresses()
    {
        TunnelOptions Tunnel(string via) => new()
        {
            Name = "gre_b", Remote = "203.0.113.2", Mtu = 1476, Addresses = ["10.255.0.1/30"], Routes = [$"10.9.0.0/16 via {via}"],
        };

        var reachable = Parse(new TunnelRouterOptions { Tunnels = [Tunnel("10.255.0.2")] });
        var off = Parse(new TunnelRouterOptions { Tunnels = [Tunnel("10.254.0.2")] });

        Assert.Contains(Reconciler.Plan(reachable, [], Host(), ReconcileMode.Converge).Changes, c => c is AddRoute);
        Assert.Equal("policy.json: Tunnels[0].Routes[0]: route '10.9.0.0/16 via 10.254.0.2 dev gre_b table main proto tunnel-router': gateway 10.254.0.2 is not on a connected network of gre_b, so the kernel would refuse it (\"Nexthop has invalid gateway\"); add the address or route that reaches it, or 'onlink' if it is on the link anyway",
            Refused(off, Host()));
    }

    [Fact]
    public void A_live_tunnels_restored_instance_route_is_judged_too()
    {
        var route = new Route(Net.ParsePrefix("r", "default"), 201, 148, device: "tun0", gateway: A("10.7.0.1"));
        var record = new TunnelRecord("tun0", "tun0 10.8.0.2 -", [route], []);
        var policy = Parse(new TunnelRouterOptions());

        var message = Refused(policy, Host(), [record]);

        Assert.Contains("the live tunnel tun0's route 'default via 10.7.0.1 dev tun0 table 201 proto tunnel-router-hook' (an Instances line, restored): gateway 10.7.0.1 is not on a connected network of tun0", message);
    }

    [Fact]
    public void A_gateway_reached_through_a_route_the_same_plan_adds_to_that_table_is_fine()
    {
        var policy = Parse(new TunnelRouterOptions
        {
            Tables = new() { ["vpn"] = 200 },
            Routes = ["default via 10.0.0.1 table vpn", "10.0.0.0/24 dev wan table vpn"],
        });

        var plan = Reconciler.Plan(policy, [], Host(), ReconcileMode.Converge);

        Assert.Equal(2, plan.Changes.Count);
    }

    [Fact]
    public void A_route_already_in_the_kernel_is_not_judged_again()
    {
        var policy = Parse(new TunnelRouterOptions { Tables = new() { ["vpn"] = 200 }, Routes = ["default via 192.168.9.1 dev wan table vpn"] });
        var installed = new Route(Net.ParsePrefix("r", "default"), 200, 147, device: "wan", gateway: A("192.168.9.1"));

        var plan = Reconciler.Plan(policy, [], Host(installed), ReconcileMode.Converge);

        Assert.Empty(plan.Changes);
    }

    [Fact]
    public void Every_refused_route_is_named_in_one_message()
    {
        var policy = Parse(new TunnelRouterOptions
        {
            Tables = new() { ["vpn"] = 200 },
            Routes = ["10.1.0.0/16 via 192.168.7.1 dev wan table vpn", "10.2.0.0/16 via 192.168.1.1 dev wan table vpn", "10.3.0.0/16 via 192.168.8.1 table vpn"],
        });

        var message = Refused(policy, Host());

        Assert.StartsWith("policy.json: Routes[0]: route '10.1.0.0/16 via 192.168.7.1 dev wan table vpn proto tunnel-router': gateway 192.168.7.1 is not on a connected network of wan", message);
        Assert.Contains("; Routes[2]: route '10.3.0.0/16 via 192.168.8.1 table vpn proto tunnel-router': gateway 192.168.8.1 is not on a connected network, so", message);
        Assert.DoesNotContain("Routes[1]", message);
    }
}
