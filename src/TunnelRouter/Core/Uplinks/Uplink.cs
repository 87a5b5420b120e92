using System.Net;
using System.Net.Sockets;

namespace TunnelRouter.Core;

/// <summary>
/// One uplink of a multi-homed host (seed 004, OpenWrt's ip4table): its own table holds the uplink's
/// connected route and default route, and "from ADDRESS lookup TABLE" sends every reply from that address
/// back out the way its request came in. Addresses and gateways are already resolved (policy or kernel).
/// </summary>
public sealed record Uplink(string Device, uint Table, uint Priority, IReadOnlyList<InterfaceAddress> Addresses,
    IReadOnlyList<IPAddress> Gateways)
{
    /// <summary>
    /// Equivalent to, per address and gateway:
    /// <c>ip route add 192.168.1.0/24 dev eth0 src 192.168.1.6 table lan1</c>,
    /// <c>ip route add default via 192.168.1.1 dev eth0 table lan1</c>,
    /// <c>ip rule add from 192.168.1.6 lookup lan1 pref 3000</c>.
    /// </summary>
    public KernelState Desired(byte protocol)
    {
        var routes = new List<Route>();
        var rules = new List<Rule>();
        foreach (var a in Addresses)
        {
            // A /32 (or /128) has no connected network beside the address itself.
            if (a.PrefixLength < Net.MaxPrefix(a.Family))
                routes.Add(new Route(a.Network, Table, protocol, device: Device, source: a.Address));
            rules.Add(new Rule(a.Family, Priority, RuleAction.Lookup, Table, protocol, from: Net.Host(a.Address)));
        }
        foreach (var g in Gateways) routes.Add(DefaultRoute(g, Table, protocol));
        return new KernelState(routes, rules);
    }

    /// <summary>The default route via this uplink's gateway <paramref name="g"/> in <paramref name="table"/> (its own, or a
    /// table that fails over to it). Equivalent to: <c>ip route add default via 192.168.1.1 dev eth0 table lan1</c>.</summary>
    public Route DefaultRoute(IPAddress g, uint table, byte protocol, uint? metric = null)
    {
        var any = g.AddressFamily.IsV6() ? IPAddress.IPv6Any : IPAddress.Any;
        // A gateway outside every connected network of the uplink (a /32 from a provider) is reached on-link.
        var onLink = !Addresses.Any(a => a.Family == g.AddressFamily && a.PrefixLength < Net.MaxPrefix(a.Family) && a.Network.Contains(g))
                     && !(g.AddressFamily.IsV6() && g.IsIPv6LinkLocal);
        return new Route(new IPNetwork(any, 0), table, protocol, device: Device, gateway: g, metric: metric, onLink: onLink);
    }
}
