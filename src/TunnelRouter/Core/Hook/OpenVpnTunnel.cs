using System.Net;
using System.Net.Sockets;

namespace TunnelRouter.Core;

public enum HookAction { Up, Down }

/// <summary>A network reached through the tunnel: connected (no gateway) or routed via the peer. A pool is a
/// network of the tunnel's own clients, which may get a pool rule ("from POOL lookup TABLE").</summary>
/// <see cref="Routed"/>: a network a server routes to one of its clients (its <c>route</c> lines for the clients'
/// <c>iroute</c>s), which goes into the policy table only with the RoutedNetworks setting, and never gets a rule.</summary>
public readonly record struct TunnelNetwork(IPNetwork Network, IPAddress? Gateway = null, bool Pool = false, bool Routed = false);

/// <summary>
/// What OpenVPN tells a hook about one tunnel, parsed once at the edge from its environment and
/// arguments. OpenVPN runs <c>--up cmd</c> as <c>cmd dev tun_mtu 0 ifconfig_local NETMASK|PEER init|restart</c>
/// with <c>script_type</c> set; the down-root plugin runs <c>tunnel-router down</c> with no
/// <c>script_type</c> and no arguments, but with <c>dev</c> and <c>ifconfig_*</c> in the environment.
/// </summary>
/// <remarks>
/// Trust: on a client, the VPN server decides the pushed routes (route_network_N, route_ipv6_network_N,
/// route-gateway) and even the tunnel's addresses. Only the tunnel's own ifconfig networks, no wider than
/// <see cref="MinPrefix4"/>/<see cref="MinPrefix6"/>, become networks of the tunnel; a route_network_N is taken
/// only on a server (no remote_N: nobody pushed it), and only the one that is the net30/p2p pool (via the peer,
/// holding both tunnel addresses). Every other pushed route is validated and then ignored: OpenVPN installs it
/// in main itself, and it never becomes a route in the policy table nor a rule that outranks main.
/// </remarks>
public sealed record OpenVpnTunnel(
    HookAction Action,
    string Device,
    string? Context,
    IPAddress? Local4,
    IPAddress? Local6,
    IReadOnlyList<TunnelNetwork> Networks)
{
    /// <summary>The widest tunnel network accepted: 10.0.0.0/8 is the largest private block, and a wider pool
    /// rule would take over traffic of addresses that are not the tunnel's (a pushed 0.0.0.0/1 is half of all).</summary>
    public const int MinPrefix4 = 8;

    /// <summary>The widest IPv6 tunnel network accepted: /32 is the smallest allocation a registry makes to a
    /// provider; OpenVPN's own server-ipv6 pools are /64 to /112.</summary>
    public const int MinPrefix6 = 32;

    public static OpenVpnTunnel Parse(IReadOnlyDictionary<string, string> env, IReadOnlyList<string> args, HookAction? commanded)
    {
        string? Get(string key) => env.TryGetValue(key, out var v) ? v : null;
        string? Arg(int i) => i < args.Count ? args[i] : null;

        var action = commanded ?? (Get("script_type") switch
        {
            "up" => HookAction.Up,
            "down" => HookAction.Down,
            null => throw new InputException("script_type",
                "is not set; OpenVPN sets it for --up/--down, otherwise run 'tunnel-router up' or 'tunnel-router down'"),
            var other => throw new InputException("script_type",
                $"'{Net.Printable(other)}' is not handled; tunnel-router is an --up/--down hook (up, down)"),
        });

        var devField = Get("dev") is null && Arg(0) is not null ? "argument 1 (dev)" : "dev";
        var device = InterfaceName.Validate(devField, Get("dev") ?? Arg(0));

        var context = Get("script_context") ?? Arg(5);
        if (context is not (null or "init" or "restart"))
            throw new InputException("script_context", $"'{Net.Printable(context)}' is not 'init' or 'restart'");

        var networks = new List<TunnelNetwork>();
        // A client (OpenVPN sets remote_N: it connects to a server) has no pool: its ifconfig network is the server's
        // pool, which may be a pushed /8 that holds the client's own LAN. No pool rule ever comes from it
        // (docs/lifecycle.md): "from 10.0.0.0/8 lookup vpn" would capture the router's LAN traffic.
        var server = !env.ContainsKey("remote_1");

        // IPv4: topology subnet (and tap) give a netmask; net30 and p2p give the peer address.
        var localField = Get("ifconfig_local") is null && Arg(3) is not null ? "argument 4 (ifconfig_local)" : "ifconfig_local";
        var localText = Get("ifconfig_local") ?? Arg(3);
        // One family only: an IPv6-only server passes ifconfig_local (and ifconfig_netmask) as empty strings,
        // and an IPv4-only one no IPv6 variables. An empty value counts as absent when the other family is there.
        var local6Given = Get("ifconfig_ipv6_local");
        if (localText == "" && !string.IsNullOrEmpty(local6Given)) localText = null;
        if (local6Given == "" && !string.IsNullOrEmpty(localText)) local6Given = null;
        if (string.IsNullOrEmpty(localText) && string.IsNullOrEmpty(local6Given) && (localText is not null || local6Given is not null))
            throw new InputException(localField, "is empty, and so is ifconfig_ipv6_local (or it is unset); the tunnel has no address to route");
        IPAddress? local4 = null, peer4 = null;
        if (localText is not null)
        {
            local4 = Net.ParseAddress(localField, localText, AddressFamily.InterNetwork);
            var netmask = Get("ifconfig_netmask");
            var remote = Get("ifconfig_remote");
            if (netmask is null && remote is null && Arg(4) is { } fifth)
            {
                // Without the environment, the fifth argument is a netmask in subnet/tap and the peer in net30/p2p.
                if (Get("dev_type") == "tap" || LooksLikeNetmask(fifth)) netmask = fifth;
                else remote = fifth;
            }
            if (netmask is not null)
            {
                var prefix = Net.NetmaskToPrefix(Get("ifconfig_netmask") is null ? "argument 5 (netmask)" : "ifconfig_netmask", netmask);
                if (prefix < MinPrefix4)
                    throw new InputException("ifconfig_netmask", $"'{netmask}' (/{prefix}) is wider than /{MinPrefix4}; it would route addresses that are not the tunnel's into it");
                networks.Add(new(Net.Masked(local4, prefix), Pool: server && prefix < 32));
            }
            else if (remote is not null)
            {
                peer4 = Net.ParseAddress(Get("ifconfig_remote") is null ? "argument 5 (ifconfig_remote)" : "ifconfig_remote",
                    remote, AddressFamily.InterNetwork);
                networks.Add(new(Net.Host(peer4)));
            }
            else throw new InputException("ifconfig_netmask", "is not set, nor ifconfig_remote; cannot tell the tunnel's network");
        }

        // IPv6 always comes as address + prefix length.
        IPAddress? local6 = null;
        if (local6Given is { } local6Text)
        {
            local6 = Net.ParseAddress("ifconfig_ipv6_local", local6Text, AddressFamily.InterNetworkV6);
            var bits = Get("ifconfig_ipv6_netbits");
            if (bits is null) throw new InputException("ifconfig_ipv6_netbits", "is not set but ifconfig_ipv6_local is");
            var prefix = Net.ParsePrefixLength("ifconfig_ipv6_netbits", bits, AddressFamily.InterNetworkV6);
            if (prefix < MinPrefix6)
                throw new InputException("ifconfig_ipv6_netbits", $"{prefix} is wider than /{MinPrefix6}; it would route addresses that are not the tunnel's into it");
            networks.Add(new(Net.Masked(local6, prefix), Pool: server && prefix < 128));
        }
        else if (Get("ifconfig_ipv6_netbits") is not null)
            throw new InputException("ifconfig_ipv6_local", "is not set but ifconfig_ipv6_netbits is");

        // Routes OpenVPN installs via the peer after up. Each is validated (a malformed value is an error), but
        // only one may join the tunnel's networks: on a server, the net30/p2p pool via the peer (OpenVPN's
        // "server" directive adds it), which holds both tunnel addresses. A client's routes were pushed by the
        // server: OpenVPN installs them in main, and they never reach the policy table or a pool rule.
        var vpnGateway = Get("route_vpn_gateway") ?? Get("ifconfig_remote");
        for (var i = 1; i <= 1024; i++)
        {
            var netText = Get($"route_network_{i}");
            if (netText is null) break;
            var gw = Get($"route_gateway_{i}");
            if (gw is null || gw != vpnGateway) continue;
            var net = Net.ParseAddress($"route_network_{i}", netText, AddressFamily.InterNetwork);
            var prefix = Net.NetmaskToPrefix($"route_netmask_{i}", Get($"route_netmask_{i}") ?? "255.255.255.255");
            var gateway = Net.ParseAddress($"route_gateway_{i}", gw, AddressFamily.InterNetwork);
            var network = Net.Masked(net, prefix);
            if (!server || networks.Any(n => n.Network.Equals(network))) continue;
            var isPool = local4 is not null && peer4 is not null && gateway.Equals(peer4)
                         && prefix >= MinPrefix4 && prefix < 32 && network.Contains(local4) && network.Contains(peer4);
            // A server's other routes through the tunnel are the networks behind its clients (their iroutes):
            // routes in the policy table, never pool rules.
            if (isPool) networks.Add(new(network, gateway, Pool: true));
            else if (prefix > 0) networks.Add(new(network, gateway, Routed: true));
        }
        for (var i = 1; i <= 1024; i++)
        {
            var netText = Get($"route_ipv6_network_{i}");
            if (netText is null) break;
            var network = Net.ParsePrefix($"route_ipv6_network_{i}", netText, AddressFamily.InterNetworkV6);
            if (Get($"route_ipv6_gateway_{i}") is { } g) Net.ParseAddress($"route_ipv6_gateway_{i}", g, AddressFamily.InterNetworkV6);
            // On a tun device an IPv6 route needs no gateway: OpenVPN itself adds them with "dev" only.
            if (server && local6 is not null && network.PrefixLength > 0 && !networks.Any(n => n.Network.Equals(network)))
                networks.Add(new(network, Routed: true));
        }

        if (action == HookAction.Up && networks.Count == 0)
            throw new InputException("ifconfig_local", "is not set, nor ifconfig_ipv6_local; the tunnel has no address to route");

        return new OpenVpnTunnel(action, device, context, local4, local6, networks);
    }

    /// <summary>255.0.0.0/8 is reserved (class E) and never a peer, so a fifth argument starting with 255. is a
    /// netmask, and a non-contiguous one is an error rather than a host route to 255.0.255.0.</summary>
    static bool LooksLikeNetmask(string text) => text.StartsWith("255.", StringComparison.Ordinal);
}
