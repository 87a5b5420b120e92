using System.Net;

namespace TunnelRouter.Core;

/// <summary>What the hook needs from the configuration, resolved to numbers.</summary>
public sealed record HookSettings(uint Table, byte Protocol, bool PoolRules, uint PoolRulePriority);

/// <summary>The kernel state one tunnel brings, and which existing objects belong to that tunnel.</summary>
public static class HookPolicy
{
    /// <summary>
    /// Each tunnel network on the tunnel's device in the policy table (what the eduVPN up script's
    /// "ip route add $NET dev $dev table vpn" did; it also keeps client-to-client traffic and pings of
    /// the tun gateway away from the table's default route). With pool rules, each pool also gets
    /// "from POOL lookup TABLE".
    /// </summary>
    public static KernelState Desired(OpenVpnTunnel tunnel, HookSettings s)
    {
        var routes = tunnel.Networks
            .Select(n => new Route(n.Network, s.Table, s.Protocol, device: tunnel.Device, gateway: n.Gateway,
                onLink: n.Gateway is not null))
            .ToList();
        var rules = !s.PoolRules ? [] : tunnel.Networks
            .Where(n => n.Network.PrefixLength < Net.MaxPrefix(n.Network.Family()))
            .Select(n => new Rule(n.Network.Family(), s.PoolRulePriority, RuleAction.Lookup, s.Table, s.Protocol, from: n.Network))
            .ToList();
        return new KernelState(routes, rules);
    }

    /// <summary>
    /// The hook's objects on this tunnel: routes with the hook's protocol on the device in the policy
    /// table, and hook rules at the pool priority whose source network holds one of the tunnel's own
    /// addresses (so a pool that changed size between two ups is cleaned up too).
    /// </summary>
    public static Ownership Scope(OpenVpnTunnel tunnel, HookSettings s) => new(
        r => r.Protocol == s.Protocol && r.Table == s.Table && r.Device == tunnel.Device,
        r => r.Protocol == s.Protocol && r.Table == s.Table && r.Priority == s.PoolRulePriority
             && r.From is { } from && (Contains(from, tunnel.Local4) || Contains(from, tunnel.Local6)
                                       || tunnel.Networks.Any(n => n.Network.Equals(from))));

    static bool Contains(IPNetwork net, IPAddress? address) => address is not null && net.Contains(address);
}
