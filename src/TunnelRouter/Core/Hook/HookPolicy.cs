namespace TunnelRouter.Core;

/// <summary>What the hook needs from the configuration, resolved to numbers.</summary>
/// <param name="RoutedNetworks">a server's routed networks (the networks behind its clients) go into the table too.</param>
public sealed record HookSettings(uint Table, byte Protocol, bool PoolRules, uint PoolRulePriority, bool RoutedNetworks = false);

/// <summary>The kernel state one tunnel brings, and which existing objects belong to that tunnel.</summary>
public static class HookPolicy
{
    /// <summary>
    /// Each tunnel network on the tunnel's device in the policy table (what the eduVPN up script's
    /// "ip route add $NET dev $dev table vpn" did; it also keeps client-to-client traffic and pings of
    /// the tun gateway away from the table's default route). With pool rules, each pool also gets
    /// "from POOL lookup TABLE".
    /// </summary>
    /// <param name="dco">the device is OpenVPN's data channel offload (ovpn-dco, ovpn): the kernel, not OpenVPN, picks
    /// the client a packet goes to, by the gateway of a route via that client's VPN address, which OpenVPN keeps in
    /// main for each client's iroute (metric 100). A server's routed networks are then <c>throw</c> routes in the
    /// policy table: its lookup goes on to main and that per-client route, where a route through the tunnel via
    /// OpenVPN's route gateway (the pool's first address, a client's) would send the upstream module's packets to
    /// whichever client holds that address.</param>
    public static KernelState Desired(OpenVpnTunnel tunnel, HookSettings s, bool dco = false)
    {
        var routes = tunnel.Networks
            .Where(n => !n.Routed || s.RoutedNetworks)
            .Select(n => n.Routed && dco
                ? new Route(n.Network, s.Table, s.Protocol, type: RouteType.Throw)
                : new Route(n.Network, s.Table, s.Protocol, device: tunnel.Device, gateway: n.Gateway, onLink: n.Gateway is not null))
            .ToList();
        // Pool rules only from the tunnel's own pools (OpenVpnTunnel decides which networks those are): a route
        // a VPN server pushed never becomes a rule that outranks main.
        var rules = !s.PoolRules ? [] : tunnel.Networks
            .Where(n => n.Pool)
            .Select(n => new Rule(n.Network.Family(), s.PoolRulePriority, RuleAction.Lookup, s.Table, s.Protocol, from: n.Network))
            .ToList();
        return new KernelState(routes, rules);
    }

    /// <summary>
    /// The hook's objects this run may delete or replace: exactly what this tunnel's up recorded, never what
    /// merely has its device name or overlaps its addresses. Up takes over the device's previous record (that
    /// tunnel is gone: the device is this one's now) and what it installs itself. Down removes its own record's
    /// objects; a record of another tunnel on the same device (OpenVPN A closed tun0, B took it, A's down comes
    /// late) is left alone; with no record at all (a record lost, or written by nobody), exactly what this
    /// tunnel's up would have installed (with <paramref name="instance"/>: its Instances lines as down's environment
    /// resolves them).
    /// </summary>
    public static Ownership Scope(OpenVpnTunnel tunnel, HookSettings s, KernelState desired, TunnelRecord? record, KernelState? instance = null)
    {
        if (tunnel.Action == HookAction.Up)
            return TunnelRecord.ScopeOf([.. desired.Routes, .. record?.Routes ?? []], [.. desired.Rules, .. record?.Rules ?? []]);
        if (record is not null) return record.Matches(tunnel) ? record.Scope() : Ownership.Nothing;
        // Down runs after the device is gone: whether it was a DCO device is unknown, so both ways.
        var up = tunnel with { Action = HookAction.Up };
        var wouldInstall = Desired(up, s);
        var withDco = Desired(up, s, dco: true);
        return TunnelRecord.ScopeOf([.. wouldInstall.Routes, .. withDco.Routes, .. instance?.Routes ?? []], [.. wouldInstall.Rules, .. instance?.Rules ?? []]);
    }
}
