using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace TunnelRouter.Core;

/// <summary>
/// What one tunnel's <c>up</c> installed, kept until its <c>down</c>: the routes (device, table, destination)
/// and pool rules it added, and who the tunnel is (its device and addresses). <c>down</c> removes exactly
/// these, and only when it is the same tunnel: when OpenVPN A closes tun0 and B gets tun0, A's late down finds
/// B's record and leaves B's state alone. Pure: formatting and parsing; the file is in Kernel/.
/// </summary>
public sealed record TunnelRecord(string Device, string Identity, IReadOnlyList<Route> Routes, IReadOnlyList<Rule> Rules)
{
    /// <summary>The lines of the tunnel's Instances entry as up resolved them ("route default via 10.8.0.1 dev tun2
    /// table nyet", "rule ..."), so that they can be shown and restored without OpenVPN's environment.</summary>
    public IReadOnlyList<string> Lines { get; init; } = [];

    /// <summary>The tunnel's own VPN server (trusted_ip, remote_N) when its OpenVPN configuration lacks
    /// allow-recursive-routing: traffic for it must not go into the tunnel.</summary>
    public IReadOnlyList<System.Net.IPAddress> Servers { get; init; } = [];

    /// <summary>Who a tunnel is: its device and its own addresses (the down-root plugin passes them too).</summary>
    public static string IdentityOf(OpenVpnTunnel t) => $"{t.Device} {t.Local4?.ToString() ?? "-"} {t.Local6?.ToString() ?? "-"}";

    public static TunnelRecord Of(OpenVpnTunnel tunnel, KernelState installed) =>
        new(tunnel.Device, IdentityOf(tunnel), installed.Routes, installed.Rules);

    public bool Matches(OpenVpnTunnel tunnel) => Identity == IdentityOf(tunnel);

    /// <summary>The objects of this record, by what identifies them in the kernel (not by every attribute: a
    /// route of ours whose gateway changed is still ours to replace).</summary>
    public Ownership Scope() => ScopeOf(Routes, Rules);

    public static Ownership ScopeOf(IEnumerable<Route> routes, IEnumerable<Rule> rules)
    {
        var routeKeys = routes.Select(RouteId).ToHashSet();
        var ruleKeys = rules.Select(RuleId).ToHashSet();
        // A route written without dev ("198.51.100.7 via ${route_vpn_gateway} table nyet") reads back with the device
        // the kernel chose: recorded without one, it matches on the rest.
        return new(r => routeKeys.Contains(RouteId(r)) || (r.Device is not null && routeKeys.Contains(RouteId(r with { Device = null }))),
            r => ruleKeys.Contains(RuleId(r)));
    }

    static (AddressFamily, uint, IPNetwork, string?, byte) RouteId(Route r) => (r.Family, r.Table, r.Destination, r.Device, r.Protocol);

    static (AddressFamily, uint, IPNetwork?, uint, byte, RuleAction) RuleId(Rule r) => (r.Family, r.Priority, r.From, r.Table, r.Protocol, r.Action);

    /// <summary>One line per object, tab-separated; "-" for nothing.</summary>
    public string Format()
    {
        var text = new StringBuilder();
        text.Append("tunnel\t").Append(Identity).Append('\n');
        foreach (var r in Routes)
            text.Append(CultureInfo.InvariantCulture,
                $"route\t{Net.Format(r.Destination)}\t{r.Table}\t{r.Protocol}\t{r.Device ?? "-"}\t{r.Gateway?.ToString() ?? "-"}\n");
        foreach (var r in Rules)
            text.Append(CultureInfo.InvariantCulture,
                $"rule\t{(r.From is { } f ? Net.Format(f) : "-")}\t{r.Family.IsV6()}\t{r.Priority}\t{r.Table}\t{r.Protocol}\n");
        foreach (var l in Lines) text.Append("line\t").Append(l).Append('\n');
        foreach (var s in Servers) text.Append("server\t").Append(s).Append('\n');
        return text.ToString();
    }

    /// <summary>Null when the text is not a record this version wrote (then nothing is taken from it).</summary>
    public static TunnelRecord? Parse(string device, string text)
    {
        try
        {
            string? identity = null;
            var routes = new List<Route>();
            var rules = new List<Rule>();
            var lines = new List<string>();
            var servers = new List<IPAddress>();
            foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                var f = line.Split('\t');
                switch (f[0])
                {
                    case "tunnel" when f.Length == 2:
                        identity = f[1];
                        break;
                    case "route" when f.Length == 6:
                        routes.Add(new Route(Net.ParsePrefix("record", f[1], null), Number(f[2]), (byte)Number(f[3]),
                            device: f[4] == "-" ? null : InterfaceName.Validate("record", f[4]),
                            gateway: f[5] == "-" ? null : Net.ParseAddress("record", f[5], null), onLink: f[5] != "-"));
                        break;
                    case "rule" when f.Length == 6:
                        var v6 = bool.Parse(f[2]);
                        rules.Add(new Rule(v6 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork, Number(f[3]), RuleAction.Lookup,
                            Number(f[4]), (byte)Number(f[5]), from: f[1] == "-" ? null : Net.ParsePrefix("record", f[1], null)));
                        break;
                    case "line" when f.Length == 2 && (f[1].StartsWith("route ", StringComparison.Ordinal) || f[1].StartsWith("rule ", StringComparison.Ordinal)):
                        lines.Add(f[1]);
                        break;
                    case "server" when f.Length == 2:
                        servers.Add(Net.ParseAddress("record", f[1], null));
                        break;
                    default:
                        return null;
                }
            }
            if (identity is null || !identity.StartsWith(device + " ", StringComparison.Ordinal)) return null;
            return new TunnelRecord(device, identity, routes, rules) { Lines = lines, Servers = servers };
        }
        catch (Exception e) when (e is InputException or FormatException or OverflowException) { return null; }
    }

    static uint Number(string text) => uint.Parse(text, NumberStyles.None, CultureInfo.InvariantCulture);
}
