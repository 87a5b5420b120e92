using System.Globalization;
using System.Net;
using System.Net.Sockets;
using TunnelRouter.Config;
using TunnelRouter.Core;

namespace TunnelRouter.Policy;

/// <summary>A policy tunnel after validation: everything but the MTU when the policy leaves it to be
/// computed from the underlay (Link.Mtu is 0 then).</summary>
public sealed record TunnelConfigEntry(string Field, GreTunnel Link, IReadOnlyList<InterfaceAddress> Addresses, IReadOnlyList<Route> Routes);

/// <summary>Checks the <c>Tunnels</c> section and turns it into values, with errors that name the key.</summary>
public static class TunnelConfig
{
    /// <summary>Links the kernel creates itself when ip_gre / ip6_gre load; their names are taken.</summary>
    static readonly string[] FallbackDevices = ["gre0", "gretap0", "erspan0", "ip6gre0", "ip6tnl0", "ip6erspan0"];

    /// <param name="tables">table name or number → id; null when unknown.</param>
    /// <remarks>Every tunnel and every key of it is checked: all mistakes of the section come out in one run.</remarks>
    public static IReadOnlyList<TunnelConfigEntry> Parse(IReadOnlyList<TunnelOptions> tunnels, byte protocol, TableResolver tables)
    {
        var result = new List<TunnelConfigEntry>();
        var errors = new List<InputException>();
        for (var i = 0; i < tunnels.Count; i++)
        {
            if (InputErrors.Collect(errors, () => ParseOne(tunnels[i], $"Tunnels[{i}]", protocol, tables)) is not { } entry) continue;
            var clash = false;
            foreach (var other in result)
            {
                if (other.Link.Name == entry.Link.Name)
                    errors.Add(new InputException($"{entry.Field}.Name", $"'{entry.Link.Name}' is already the name of {other.Field}"));
                else if (SameEndpoints(other.Link, entry.Link))
                    errors.Add(new InputException(entry.Field,
                        $"has the same mode, local, remote and key as {other.Field}; the kernel could not tell their packets apart"));
                else continue;
                clash = true;
                break;
            }
            if (!clash) result.Add(entry);
        }
        InputErrors.ThrowIfAny(errors);
        return result;
    }

    static TunnelConfigEntry ParseOne(TunnelOptions o, string field, byte protocol, TableResolver tables)
    {
        var errors = new List<InputException>();
        T? Check<T>(Func<T> parse) => InputErrors.Collect(errors, parse);

        var name = Check(() =>
        {
            var n = InterfaceName.Validate($"{field}.Name", o.Name);
            if (FallbackDevices.Contains(n))
                throw new InputException($"{field}.Name", $"'{n}' is the kernel's own fallback device; choose another name");
            return n;
        });

        GreMode? mode = GreModes.TryParse(o.Mode, out var m) ? m : null;
        if (mode is null)
            errors.Add(new InputException($"{field}.Mode", $"'{Net.Printable(o.Mode ?? "")}' is not a GRE mode (gre, gretap, ip6gre, ip6gretap)"));

        IPAddress? remote = null, local = null;
        if (mode is { } md)
        {
            var family = md.UnderlayFamily();
            if (string.IsNullOrEmpty(o.Remote))
                errors.Add(new InputException($"{field}.Remote", $"is not set; a {md.Kind()} tunnel needs the other end's {(family.IsV6() ? "IPv6" : "IPv4")} address"));
            else remote = Check(() => Endpoint($"{field}.Remote", o.Remote, md));
            local = string.IsNullOrEmpty(o.Local) ? null : Check(() => Endpoint($"{field}.Local", o.Local, md));
            if (local is not null && local.Equals(remote))
                errors.Add(new InputException($"{field}.Local", $"'{local}' is also Remote; a tunnel joins two different addresses"));
            if (o.PMtuDisc == false && family.IsV6())
                errors.Add(new InputException($"{field}.PMtuDisc", $"applies to gre and gretap only; {md.Kind()} has no such switch"));
        }

        uint? ikey = null, okey = null;
        if (o.Key is not null)
        {
            if (o.IKey is not null || o.OKey is not null)
                errors.Add(new InputException($"{field}.Key", "is set together with IKey/OKey; use Key for one key both ways, or IKey and OKey"));
            else ikey = okey = Check(() => (uint?)ParseKey($"{field}.Key", o.Key));
        }
        else
        {
            if (o.IKey is not null) ikey = Check(() => (uint?)ParseKey($"{field}.IKey", o.IKey));
            if (o.OKey is not null) okey = Check(() => (uint?)ParseKey($"{field}.OKey", o.OKey));
        }

        if (o.Ttl is > 255) errors.Add(new InputException($"{field}.Ttl", $"{o.Ttl} is not a TTL (0 = inherit, 1 to 255)"));
        if (o.Tos is > 255) errors.Add(new InputException($"{field}.Tos", $"{o.Tos} is not a TOS byte (0 to 255)"));

        string? underlay = null;
        if (o.Underlay is not null && o.Dev is not null && o.Underlay != o.Dev)
            errors.Add(new InputException($"{field}.Dev", $"'{Net.Printable(o.Dev)}' contradicts Underlay '{Net.Printable(o.Underlay)}'; set one of them"));
        else if ((o.Underlay ?? o.Dev) is { } u)
        {
            var at = o.Underlay is null ? $"{field}.Dev" : $"{field}.Underlay";
            underlay = Check(() => InterfaceName.Validate(at, u));
            if (underlay is not null && underlay == name) errors.Add(new InputException($"{field}.Underlay", "is the tunnel itself"));
        }

        var addresses = new List<InterfaceAddress>();
        for (var i = 0; i < o.Addresses.Count; i++)
        {
            var at = $"{field}.Addresses[{i}]";
            var text = o.Addresses[i];
            if (Check(() => InterfaceAddress.Parse(at, text)) is not { } a) continue;
            if (addresses.Contains(a)) errors.Add(new InputException(at, $"'{a}' is listed twice"));
            else addresses.Add(a);
        }

        if (o.Mtu is { } mtu)
        {
            if (mtu is < 68 or > 65535) errors.Add(new InputException($"{field}.Mtu", $"{mtu} is not an MTU (68 to 65535)"));
            else if (mtu < 1280 && addresses.Any(a => a.Family.IsV6()))
                errors.Add(new InputException($"{field}.Mtu", $"{mtu} is below 1280, the least IPv6 needs, and the tunnel has IPv6 addresses"));
        }

        // The routes are judged with the tunnel as their device, whether or not its name is valid.
        var device = name ?? "tunnel";
        var routes = new List<Route>();
        for (var i = 0; i < o.Routes.Count; i++)
        {
            var at = $"{field}.Routes[{i}]";
            var text = o.Routes[i];
            if (Check(() => ParseRoute(at, text, device, protocol, tables)) is not { } r) continue;
            if (routes.Any(x => x.Key == r.Key)) errors.Add(new InputException(at, $"'{Net.Printable(text)}' is listed twice"));
            else routes.Add(r);
        }

        InputErrors.ThrowIfAny(errors);
        var link = new GreTunnel(name!, mode!.Value, local, remote!, ikey, okey, (byte?)o.Ttl, (byte)(o.Tos ?? 0), o.PMtuDisc ?? true,
            o.Mtu ?? 0, underlay);
        return new TunnelConfigEntry(field, link, addresses, routes);
    }

    static IPAddress Endpoint(string field, string text, GreMode mode)
    {
        var family = mode.UnderlayFamily();
        if (!Net.TryParseAddress(text, out var address))
            throw new InputException(field, $"'{Net.Printable(text)}' is not a valid {(family.IsV6() ? "IPv6" : "IPv4")} address");
        if (address.AddressFamily != family)
            throw new InputException(field,
                $"'{text}' is {(family.IsV6() ? "IPv4" : "IPv6")} but mode {mode.Kind()} runs over {(family.IsV6() ? "IPv6" : "IPv4")}" +
                $" (use {(family.IsV6() ? (mode.IsTap() ? "gretap" : "gre") : (mode.IsTap() ? "ip6gretap" : "ip6gre"))} for that)");
        if (address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any))
            throw new InputException(field, $"'{text}' is the unspecified address; leave Local unset for 'any'");
        return address;
    }

    /// <summary>A 32-bit GRE key: a number (0 to 4294967295) or a dotted quad, as iproute2 accepts it.</summary>
    public static uint ParseKey(string field, string text)
    {
        if (text.Contains('.'))
        {
            if (Net.TryParseAddress(text, out var a) && a.AddressFamily == AddressFamily.InterNetwork)
                return System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(a.GetAddressBytes());
        }
        else if (text.Length is > 0 and <= 10 && text.All(char.IsAsciiDigit)
                 && ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n <= uint.MaxValue)
            return (uint)n;
        throw new InputException(field, $"'{Net.Printable(text)}' is not a GRE key (0 to 4294967295, or a dotted quad like 0.0.0.42)");
    }

    /// <summary>
    /// A route over the tunnel, in the policy's route syntax (<see cref="PolicyLine.ParseRoute"/>) with the
    /// tunnel as its device: "192.168.50.0/24", "192.168.50.0/24 dev gre_black", "default table vpn",
    /// "10.9.0.0/16 via 10.255.0.2 metric 10".
    /// </summary>
    public static Route ParseRoute(string field, string text, string device, byte protocol, TableResolver tables)
    {
        var words = (text ?? "").Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        if (words.FirstOrDefault(w => w is not ("-4" or "-6" or "inet" or "inet6")) is "unreachable" or "blackhole" or "prohibit" or "throw")
            throw new InputException(field, $"'{Net.Printable(text!)}' is a {words.First(w => !w.StartsWith('-') && !w.StartsWith("inet"))} route; only unicast routes go over a tunnel");
        var line = words.Contains("dev") || words.Contains("oif") ? text : $"{text} dev {device}";
        var route = PolicyLine.ParseRoute(field, line, tables, protocol);
        if (route.Device != device)
            throw new InputException(field, $"dev '{Net.Printable(route.Device ?? "")}' is not this tunnel ({device}); a tunnel's routes go over the tunnel");
        return route;
    }

    static bool SameEndpoints(GreTunnel a, GreTunnel b) =>
        a.Mode.UnderlayFamily() == b.Mode.UnderlayFamily() && a.Mode.IsTap() == b.Mode.IsTap()
        && Equals(a.Local, b.Local) && a.Remote.Equals(b.Remote) && a.IKey == b.IKey;
}
