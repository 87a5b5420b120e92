using System.Globalization;
using System.Net;
using TunnelRouter.Config;
using TunnelRouter.Core;

namespace TunnelRouter.Policy;

/// <summary>The policy's Routing section, checked: the daemon's settings, the file tunnel-router owns for
/// it, and how to tell the daemon to read it again.</summary>
public sealed record RoutingSpec(string Field, OspfSettings Ospf, string ConfigFile, string? Control)
{
    public RoutingDaemonKind Daemon => Ospf.Daemon;

    /// <summary>The file's text for this policy.</summary>
    public string Render(string policySource) => OspfConfig.Render(Ospf, policySource);
}

/// <summary>Checks <see cref="RoutingOptions"/>; every error names the key as the policy file spells it.</summary>
public static class RoutingSection
{
    public const uint DefaultCost = 10;

    /// <param name="tunnels">the policy's tunnels: OSPFv3 runs beside OSPFv2 when one taking part has an IPv6 address.</param>
    public static RoutingSpec? Parse(RoutingOptions? o, string src, IReadOnlyList<TunnelConfigEntry> tunnels)
    {
        if (o is null) return null;
        var field = $"{src}: Routing";
        var daemon = o.Daemon?.ToLowerInvariant() switch
        {
            "bird" => RoutingDaemonKind.Bird,
            "frr" => RoutingDaemonKind.Frr,
            null or "" => throw new InputException($"{field}.Daemon", "is not set; expected bird or frr"),
            _ => throw new InputException($"{field}.Daemon", $"'{Net.Printable(o.Daemon!)}' is not a daemon tunnel-router configures; expected bird or frr"),
        };
        if (!string.Equals(o.Protocol, "ospf", StringComparison.OrdinalIgnoreCase))
            throw new InputException($"{field}.Protocol", $"'{Net.Printable(o.Protocol)}' is not supported; expected ospf (OSPFv2, and OSPFv3 where the interfaces have IPv6)");
        var area = Area($"{field}.Area", o.Area);
        if (o.Hello is 0 or > 65535) throw new InputException($"{field}.Hello", $"{o.Hello} is not a hello interval; expected 1 to 65535 seconds");
        if (o.Dead <= o.Hello || o.Dead > 65535)
            throw new InputException($"{field}.Dead", $"{o.Dead} must be more than Hello ({o.Hello}) and at most 65535; OSPF's own default is 4 × Hello");

        var interfaces = new List<OspfInterface>();
        var seen = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < o.Interfaces.Count; i++)
        {
            var at = $"{field}.Interfaces[{i}]";
            var words = (o.Interfaces[i] ?? "").Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (words.Length == 0) throw new InputException(at, "is empty; expected an interface and its cost, e.g. \"gre_ab cost 10\"");
            var name = InterfaceName.Validate(at, words[0]);
            var cost = DefaultCost;
            if (words.Length == 3 && words[1] == "cost")
            {
                if (!uint.TryParse(words[2], NumberStyles.None, CultureInfo.InvariantCulture, out cost) || cost is 0 or > 65535)
                    throw new InputException(at, $"cost '{Net.Printable(words[2])}' is not an OSPF cost; expected 1 to 65535");
            }
            else if (words.Length != 1)
                throw new InputException(at, $"'{Net.Printable(o.Interfaces[i])}': expected \"NAME\" or \"NAME cost N\"");
            if (!seen.TryAdd(name, at)) throw new InputException(at, $"{name} is already in {seen[name]}");
            interfaces.Add(new OspfInterface(name, cost, Stub: false));
        }
        for (var i = 0; i < o.Stubs.Count; i++)
        {
            var at = $"{field}.Stubs[{i}]";
            var name = InterfaceName.Validate(at, o.Stubs[i]);
            if (!seen.TryAdd(name, at)) throw new InputException(at, $"{name} is already in {seen[name]}");
            interfaces.Add(new OspfInterface(name, 0, Stub: true));
        }
        if (interfaces.All(i => i.Stub))
            throw new InputException($"{field}.Interfaces", "names no interface to run OSPF over; expected the tunnels, e.g. [ \"gre_ab cost 10\" ]");

        var file = o.ConfigFile ?? (daemon == RoutingDaemonKind.Bird ? "/etc/bird/tunnel-router.conf" : "/etc/frr/tunnel-router.conf");
        if (!Path.IsPathFullyQualified(file)) throw new InputException($"{field}.ConfigFile", $"'{Net.Printable(file)}' is not an absolute path");
        if (o.Control is { } control && !Path.IsPathFullyQualified(control))
            throw new InputException($"{field}.Control", $"'{Net.Printable(control)}' is not an absolute path");
        var ipv6 = tunnels.Any(t => seen.ContainsKey(t.Link.Name) && t.Addresses.Any(a => a.Family == System.Net.Sockets.AddressFamily.InterNetworkV6));
        return new RoutingSpec(field, new OspfSettings(daemon, area, o.Hello, o.Dead, ipv6, interfaces), file, o.Control);
    }

    /// <summary>An OSPF area as both daemons write it: a number, or a dotted quad (0.0.0.0 is area 0).</summary>
    static string Area(string field, string? text)
    {
        if (uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n)) return n.ToString(CultureInfo.InvariantCulture);
        if (text is not null && text.Count(c => c == '.') == 3 && IPAddress.TryParse(text, out var a) && a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
            return a.ToString();
        throw new InputException(field, $"'{Net.Printable(text ?? "")}' is not an OSPF area; expected a number or a dotted quad, e.g. 0");
    }
}
