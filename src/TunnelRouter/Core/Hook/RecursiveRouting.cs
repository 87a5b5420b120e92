using System.Net;

namespace TunnelRouter.Core;

/// <summary>
/// An OpenVPN client drops tunnel packets addressed to its own server ("Recursive routing detected, drop tun
/// packet", OpenVPN 2.4 and later) unless its configuration has <c>allow-recursive-routing</c>. Seed 000 routes a
/// LAN's traffic for the VPN server itself into the tunnel: that works only with the option. Pure.
/// </summary>
public static class RecursiveRouting
{
    public const string Option = "allow-recursive-routing";

    /// <summary>The tunnel's own server as OpenVPN names it to the hook: trusted_ip (trusted_ip6) and every
    /// remote_N that is an address (a host name is left out: the hook resolves nothing).</summary>
    public static IReadOnlyList<IPAddress> Servers(IReadOnlyDictionary<string, string> env)
    {
        var result = new List<IPAddress>();
        void Add(string? text)
        {
            if (Net.TryParseAddress(text, out var a) && !result.Contains(a)) result.Add(a);
        }
        Add(env.GetValueOrDefault("trusted_ip"));
        Add(env.GetValueOrDefault("trusted_ip6"));
        for (var i = 1; i <= 64 && env.TryGetValue($"remote_{i}", out var remote); i++) Add(remote);
        return result;
    }

    /// <summary>Whether an OpenVPN configuration's text sets the option (a line of its own, as OpenVPN reads it;
    /// "--allow-recursive-routing" on a command line is not seen here).</summary>
    public static bool Allowed(string? configText) =>
        configText is not null && configText.Split('\n').Any(l => l.Trim() is var t && (t == Option || t.StartsWith(Option + " ", StringComparison.Ordinal)));

    /// <summary>One sentence per server the state sends into the device: a lookup rule that can match traffic to
    /// it, and a route of that rule's table over the device that holds it.</summary>
    public static IReadOnlyList<string> Find(string device, KernelState state, IReadOnlyList<IPAddress> servers,
        TableNames? tables = null, ProtocolNames? protocols = null)
    {
        tables ??= TableNames.Numeric;
        protocols ??= ProtocolNames.Numeric;
        var findings = new List<string>();
        foreach (var server in servers)
        foreach (var rule in state.Rules)
        {
            if (rule.Action != RuleAction.Lookup || rule.Not || rule.Family != server.AddressFamily) continue;
            if (rule.To is { } to && !to.Contains(server)) continue;
            var route = state.Routes
                .Where(r => r.Table == rule.Table && r.Device == device && r.Type == RouteType.Unicast && r.Destination.Contains(server))
                .OrderByDescending(r => r.Destination.PrefixLength).FirstOrDefault();
            if (route is null) continue;
            findings.Add($"traffic to {server}, {device}'s own VPN server, goes into {device} (rule '{IpCommand.RuleArgs(rule, tables, protocols)}', route '{IpCommand.RouteArgs(route, tables, protocols)}'); " +
                         $"OpenVPN drops it ('Recursive routing detected') unless the client's configuration has {Option}");
            break;
        }
        return findings;
    }
}
