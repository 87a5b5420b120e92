using System.Net;
using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>Issue 21, invariant 4: an Instances route is bound to its tunnel — its device, and a gateway a placeholder
/// fills inside the tunnel's own networks — so a hostile route-gateway cannot take the traffic past the tunnel.</summary>
public class InstanceBindingSpecs
{
    static readonly IReadOnlyList<IPNetwork> Tun2Networks = [IPNetwork.Parse("10.8.0.0/24"), IPNetwork.Parse("fd00:8::/64")];

    ResolvedInstance Resolve(string route, string gateway, IReadOnlyList<IPNetwork>? own = null)
    {
        var o = new TunnelRouterOptions
        {
            Tables = new() { ["nyet"] = 100 },
            Instances = [new InstanceOptions { Dev = "tun2", Routes = [route] }],
        };
        var tables = PolicyTables.Create(Iproute2Files.Of(), o.Tables, o.Table, o.TableId, "policy.json");
        var spec = InstanceConfig.Parse(o.Instances, tables.For, 148, "policy.json")[0];
        return InstanceConfig.Resolve(spec, new Dictionary<string, string> { ["dev"] = "tun2", ["route_vpn_gateway"] = gateway }, tables.For, 148,
            own ?? Tun2Networks);
    }

    [Fact]
    public void A_route_written_without_dev_goes_through_the_tunnels_device()
    {
        var r = Resolve("default via ${route_vpn_gateway} table nyet", "10.8.0.1");

        Assert.Equal("default via 10.8.0.1 dev tun2 table 100 proto 148", Assert.Single(r.State.Routes).ToString());
        Assert.Equal(["default via 10.8.0.1 table nyet dev tun2"], r.RouteLines);
    }

    [Theory]
    [InlineData("unreachable 10.99.0.0/16 table nyet", "unreachable 10.99.0.0/16 table 100 proto 148")]
    [InlineData("10.99.0.0/16 via ${route_vpn_gateway} dev tun9 table nyet", "10.99.0.0/16 via 10.8.0.1 dev tun9 table 100 proto 148")]
    public void A_route_with_its_own_dev_or_of_a_type_without_a_device_stays_as_written(string line, string expected)
    {
        Assert.Equal(expected, Assert.Single(Resolve(line, "10.8.0.1").State.Routes).ToString());
    }

    [Fact]
    public void A_pushed_gateway_outside_the_tunnels_own_networks_is_refused_naming_the_variable()
    {
        var e = Assert.Throws<InputException>(() => Resolve("default via ${route_vpn_gateway} onlink table nyet", "192.0.2.1"));

        Assert.Equal("route_vpn_gateway: '192.0.2.1' is not in the tunnel's own networks (10.8.0.0/24, fd00:8::/64), so policy.json: " +
                     "Instances[0].Routes[0] would route past the tunnel; the VPN server sets it, nothing was changed", e.Message);
    }

    [Fact]
    public void A_net30_peer_as_gateway_lies_in_the_tunnels_own_peer_network()
    {
        var r = Resolve("default via ${route_vpn_gateway} table nyet", "10.8.0.5", [IPNetwork.Parse("10.8.0.5/32")]);

        Assert.Equal(IPAddress.Parse("10.8.0.5"), Assert.Single(r.State.Routes).Gateway);
    }
}
