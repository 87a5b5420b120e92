using System.Globalization;
using System.Net;
using TunnelRouter.Config;
using TunnelRouter.Core;

namespace TunnelRouter.Policy;

/// <summary>The policy's Routing section, checked: the daemon's settings, the file tunnel-router owns for
/// it, and how to tell the daemon to read it again.</summary>
/// <param name="Settle">how long an apply waits for the daemon to run OSPF on every interface it was given.</param>
public sealed record RoutingSpec(string Field, OspfSettings Ospf, string ConfigFile, string? Control, TimeSpan Settle)
{
    public RoutingDaemonKind Daemon => Ospf.Daemon;

    /// <summary>The file's text for this policy.</summary>
    public string Render(string policySource) => OspfConfig.Render(Ospf, policySource);

    /// <summary>The check that the daemon runs OSPF on every interface: the owned <paramref name="tunnels"/> among
    /// them with the IPv4 addresses tunnel-router gave them (the only ones it may announce again).</summary>
    public SettleOspf Settler(IReadOnlyList<TunnelConfigEntry> tunnels)
    {
        var names = Ospf.Interfaces.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        var owned = tunnels.Where(t => names.Contains(t.Link.Name)).ToDictionary(t => t.Link.Name,
            t => (IReadOnlyList<InterfaceAddress>)t.Addresses.Where(a => a.Family == System.Net.Sockets.AddressFamily.InterNetwork).ToList(), StringComparer.Ordinal);
        return new SettleOspf(Daemon, Control, Ospf, owned, Settle);
    }
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
        // Every key checked: all mistakes of the section at once.
        var errors = new List<InputException>();
        T? Check<T>(Func<T> parse) => InputErrors.Collect(errors, parse);
        RoutingDaemonKind? daemon = o.Daemon?.ToLowerInvariant() switch
        {
            "bird" => RoutingDaemonKind.Bird,
            "frr" => RoutingDaemonKind.Frr,
            null or "" => Fail($"{field}.Daemon", "is not set; expected bird or frr"),
            _ => Fail($"{field}.Daemon", $"'{Net.Printable(o.Daemon!)}' is not a daemon tunnel-router configures; expected bird or frr"),
        };
        RoutingDaemonKind? Fail(string at, string message)
        {
            errors.Add(new InputException(at, message));
            return null;
        }
        if (!string.Equals(o.Protocol, "ospf", StringComparison.OrdinalIgnoreCase))
            errors.Add(new InputException($"{field}.Protocol", $"'{Net.Printable(o.Protocol)}' is not supported; expected ospf (OSPFv2, and OSPFv3 where the interfaces have IPv6)"));
        var area = Check(() => Area($"{field}.Area", o.Area));
        if (o.Settle is 0 or > 600) errors.Add(new InputException($"{field}.Settle", $"{o.Settle} is not a wait; expected 1 to 600 seconds (how long apply waits for the daemon to run OSPF on every interface)"));
        if (o.Hello is 0 or > 65535) errors.Add(new InputException($"{field}.Hello", $"{o.Hello} is not a hello interval; expected 1 to 65535 seconds"));
        else if (o.Dead <= o.Hello || o.Dead > 65535)
            errors.Add(new InputException($"{field}.Dead", $"{o.Dead} must be more than Hello ({o.Hello}) and at most 65535; OSPF's own default is 4 × Hello"));

        var interfaces = new List<OspfInterface>();
        var seen = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < o.Interfaces.Count; i++)
        {
            var at = $"{field}.Interfaces[{i}]";
            var words = (o.Interfaces[i] ?? "").Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (words.Length == 0) { errors.Add(new InputException(at, "is empty; expected an interface and its cost, e.g. \"gre_ab cost 10\"")); continue; }
            if (Check(() => InterfaceName.Validate(at, words[0])) is not { } name) continue;
            var cost = DefaultCost;
            if (words.Length == 3 && words[1] == "cost")
            {
                if (!uint.TryParse(words[2], NumberStyles.None, CultureInfo.InvariantCulture, out cost) || cost is 0 or > 65535)
                {
                    errors.Add(new InputException(at, $"cost '{Net.Printable(words[2])}' is not an OSPF cost; expected 1 to 65535"));
                    continue;
                }
            }
            else if (words.Length != 1)
            {
                errors.Add(new InputException(at, $"'{Net.Printable(o.Interfaces[i])}': expected \"NAME\" or \"NAME cost N\""));
                continue;
            }
            if (!seen.TryAdd(name, at)) { errors.Add(new InputException(at, $"{name} is already in {seen[name]}")); continue; }
            interfaces.Add(new OspfInterface(name, cost, Stub: false));
        }
        for (var i = 0; i < o.Stubs.Count; i++)
        {
            var at = $"{field}.Stubs[{i}]";
            var stub = o.Stubs[i];
            if (Check(() => InterfaceName.Validate(at, stub)) is not { } name) continue;
            if (!seen.TryAdd(name, at)) { errors.Add(new InputException(at, $"{name} is already in {seen[name]}")); continue; }
            interfaces.Add(new OspfInterface(name, 0, Stub: true));
        }
        if (interfaces.All(i => i.Stub) && !errors.Any(e => e.Field.StartsWith($"{field}.Interfaces", StringComparison.Ordinal)))
            errors.Add(new InputException($"{field}.Interfaces", "names no interface to run OSPF over; expected the tunnels, e.g. [ \"gre_ab cost 10\" ]"));

        var file = o.ConfigFile ?? (daemon == RoutingDaemonKind.Frr ? "/etc/frr/tunnel-router.conf" : "/etc/bird/tunnel-router.conf");
        if (!Path.IsPathFullyQualified(file)) errors.Add(new InputException($"{field}.ConfigFile", $"'{Net.Printable(file)}' is not an absolute path"));
        if (o.Control is { } control && !Path.IsPathFullyQualified(control))
            errors.Add(new InputException($"{field}.Control", $"'{Net.Printable(control)}' is not an absolute path"));
        InputErrors.ThrowIfAny(errors);
        var ipv6 = tunnels.Any(t => seen.ContainsKey(t.Link.Name) && t.Addresses.Any(a => a.Family == System.Net.Sockets.AddressFamily.InterNetworkV6));
        return new RoutingSpec(field, new OspfSettings(daemon!.Value, area!, o.Hello, o.Dead, ipv6, interfaces), file, o.Control, TimeSpan.FromSeconds(o.Settle));
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
