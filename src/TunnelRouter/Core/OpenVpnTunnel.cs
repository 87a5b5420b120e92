using System.Net;
using System.Net.Sockets;

namespace TunnelRouter.Core;

public enum HookAction { Up, Down }

/// <summary>A network reached through the tunnel: connected (no gateway) or routed via the peer.</summary>
public readonly record struct TunnelNetwork(IPNetwork Network, IPAddress? Gateway = null);

/// <summary>
/// What OpenVPN tells a hook about one tunnel, parsed once at the edge from its environment and
/// arguments. OpenVPN runs <c>--up cmd</c> as <c>cmd dev tun_mtu 0 ifconfig_local NETMASK|PEER init|restart</c>
/// with <c>script_type</c> set; the down-root plugin runs <c>tunnel-router down</c> with no
/// <c>script_type</c> and no arguments, but with <c>dev</c> and <c>ifconfig_*</c> in the environment.
/// </summary>
public sealed record OpenVpnTunnel(
    HookAction Action,
    string Device,
    string? Context,
    IPAddress? Local4,
    IPAddress? Local6,
    IReadOnlyList<TunnelNetwork> Networks)
{
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

        // IPv4: topology subnet (and tap) give a netmask; net30 and p2p give the peer address.
        var localField = Get("ifconfig_local") is null && Arg(3) is not null ? "argument 4 (ifconfig_local)" : "ifconfig_local";
        var localText = Get("ifconfig_local") ?? Arg(3);
        IPAddress? local4 = null;
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
                if (prefix == 0) throw new InputException("ifconfig_netmask", $"'{netmask}' would route every address into the tunnel");
                networks.Add(new(Net.Masked(local4, prefix)));
            }
            else if (remote is not null)
            {
                var peer = Net.ParseAddress(Get("ifconfig_remote") is null ? "argument 5 (ifconfig_remote)" : "ifconfig_remote",
                    remote, AddressFamily.InterNetwork);
                networks.Add(new(Net.Host(peer)));
            }
            else throw new InputException("ifconfig_netmask", "is not set, nor ifconfig_remote; cannot tell the tunnel's network");
        }

        // IPv6 always comes as address + prefix length.
        IPAddress? local6 = null;
        if (Get("ifconfig_ipv6_local") is { } local6Text)
        {
            local6 = Net.ParseAddress("ifconfig_ipv6_local", local6Text, AddressFamily.InterNetworkV6);
            var bits = Get("ifconfig_ipv6_netbits");
            if (bits is null) throw new InputException("ifconfig_ipv6_netbits", "is not set but ifconfig_ipv6_local is");
            var prefix = Net.ParsePrefixLength("ifconfig_ipv6_netbits", bits, AddressFamily.InterNetworkV6);
            if (prefix == 0) throw new InputException("ifconfig_ipv6_netbits", "0 would route every address into the tunnel");
            networks.Add(new(Net.Masked(local6, prefix)));
        }
        else if (Get("ifconfig_ipv6_netbits") is not null)
            throw new InputException("ifconfig_ipv6_local", "is not set but ifconfig_ipv6_netbits is");

        // Routes OpenVPN installs via the peer after up (the server's pool in net30): they belong in the
        // policy table too, or the pool is unreachable from it.
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
            if (!networks.Any(n => n.Network.Equals(network))) networks.Add(new(network, gateway));
        }
        for (var i = 1; i <= 1024; i++)
        {
            var netText = Get($"route_ipv6_network_{i}");
            if (netText is null) break;
            var network = Net.ParsePrefix($"route_ipv6_network_{i}", netText, AddressFamily.InterNetworkV6);
            IPAddress? gateway = Get($"route_ipv6_gateway_{i}") is { } g
                ? Net.ParseAddress($"route_ipv6_gateway_{i}", g, AddressFamily.InterNetworkV6) : null;
            if (!networks.Any(n => n.Network.Equals(network))) networks.Add(new(network, gateway));
        }

        if (action == HookAction.Up && networks.Count == 0)
            throw new InputException("ifconfig_local", "is not set, nor ifconfig_ipv6_local; the tunnel has no address to route");

        return new OpenVpnTunnel(action, device, context, local4, local6, networks);
    }

    /// <summary>255.0.0.0/8 is reserved (class E) and never a peer, so a fifth argument starting with 255. is a
    /// netmask, and a non-contiguous one is an error rather than a host route to 255.0.255.0.</summary>
    static bool LooksLikeNetmask(string text) => text.StartsWith("255.", StringComparison.Ordinal);
}
