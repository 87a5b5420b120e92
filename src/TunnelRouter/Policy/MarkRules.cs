using System.Globalization;
using System.Net;
using System.Net.Sockets;
using TunnelRouter.Config;
using TunnelRouter.Core;

namespace TunnelRouter.Policy;

/// <summary>Parses <see cref="TunnelRouterOptions.Marks"/> into <see cref="MarkRule"/>s, with errors that
/// name the entry, the key and the value: "Marks[3].Source: '5.5.5.300' is not a valid IP address".</summary>
public static class MarkRules
{
    /// <summary>Protocols with ports; iptables' multiport accepts the same three (plus dccp/udplite, which
    /// nft matches differently and no how-to of ours needs).</summary>
    static readonly byte[] PortProtocols = [6, 17, 132];

    public static IReadOnlyList<MarkRule> Parse(IReadOnlyList<MarkOptions> entries)
    {
        var rules = new List<MarkRule>(entries.Count);
        for (var i = 0; i < entries.Count; i++) rules.Add(Parse($"Marks[{i}]", entries[i]));
        return rules;
    }

    /// <summary>One entry, every key of it checked: all its mistakes at once.</summary>
    public static MarkRule Parse(string field, MarkOptions o)
    {
        var errors = new List<InputException>();
        T? Check<T>(Func<T> parse) => InputErrors.Collect(errors, parse);
        var chain = Check(() => (MarkChain?)ParseChain($"{field}.Chain", o.Chain));
        var source = Check(() => ParseAddress($"{field}.Source", o.Source));
        var destination = Check(() => ParseAddress($"{field}.Destination", o.Destination));
        var family = Check(() => ParseFamily($"{field}.Family", o.Family));

        // Name what decided the family: the Family key as written, or the other address.
        var decidedBy = family is null ? null : $"Family is {FamilyName(family.Value)}";
        foreach (var (key, match) in new[] { ("Source", source), ("Destination", destination) })
        {
            if (match is null) continue;
            if (family is { } f && f != match.Family)
            {
                errors.Add(new InputException($"{field}.{key}", $"'{match}' is {FamilyName(match.Family)} but {decidedBy}"));
                continue;
            }
            family = match.Family;
            decidedBy ??= $"{key} '{match}' is {FamilyName(match.Family)}";
        }

        var protocolOk = true;
        byte? protocol = null;
        if (o.Protocol is not null)
        {
            protocol = Check(() => ParseProtocol($"{field}.Protocol", o.Protocol));
            protocolOk = protocol is not null;
        }
        // Ports are judged against a Protocol that parsed; a wrong Protocol is already one error.
        var sourcePorts = protocolOk ? Check(() => ParsePorts($"{field}.SourcePorts", o.SourcePorts, protocol)) : null;
        var destinationPorts = protocolOk ? Check(() => ParsePorts($"{field}.DestinationPorts", o.DestinationPorts, protocol)) : null;
        if (protocol is 1 && family is AddressFamily.InterNetworkV6 || protocol is 58 && family is AddressFamily.InterNetwork)
            errors.Add(new InputException($"{field}.Protocol", $"'{o.Protocol}' does not exist in {FamilyName(family!.Value)}"));

        var iif = Check(() => ParseInterface($"{field}.InputInterface", o.InputInterface));
        var oif = Check(() => ParseInterface($"{field}.OutputInterface", o.OutputInterface));
        // The kernel knows no input interface of a packet it generates, nor an output interface before routing.
        if (iif is not null && chain == MarkChain.Output)
            errors.Add(new InputException($"{field}.InputInterface", "needs Chain 'prerouting': packets this host sends have no input interface"));
        if (oif is not null && chain == MarkChain.Prerouting)
            errors.Add(new InputException($"{field}.OutputInterface", "needs Chain 'output': before routing there is no output interface yet"));

        uint? mark = null;
        if (o.Mark is null) errors.Add(new InputException($"{field}.Mark", "is required: a mark like '0xf2', or '0'/'clear' to clear it"));
        else mark = Check(() => ParseMark($"{field}.Mark", o.Mark, allowClear: true));
        var mask = o.Mask is null ? uint.MaxValue : Check(() => ParseMark($"{field}.Mask", o.Mask, allowClear: false));
        if (mask == 0) errors.Add(new InputException($"{field}.Mask", "'0' would change no bit of the mark"));
        else if (mark is { } mk && mask is { } mm && (mk & ~mm) != 0)
            errors.Add(new InputException($"{field}.Mark", $"'{o.Mark}' sets bits outside Mask '{o.Mask}'"));

        InputErrors.ThrowIfAny(errors);
        return new MarkRule(chain!.Value, mark!.Value, mask!.Value, family, source, destination, protocol, sourcePorts, destinationPorts, iif, oif);
    }

    static MarkChain ParseChain(string field, string? text) => text?.Trim().ToLowerInvariant() switch
    {
        "output" => MarkChain.Output,
        "prerouting" => MarkChain.Prerouting,
        null or "" => throw new InputException(field, "is required: 'output' (packets this host sends) or 'prerouting' (packets it receives or forwards)"),
        _ => throw new InputException(field, $"'{Net.Printable(text)}' is not a chain; expected 'output' or 'prerouting'"),
    };

    static AddressFamily? ParseFamily(string field, string? text) => text?.Trim().ToLowerInvariant() switch
    {
        null or "" => null,
        "ipv4" or "inet" or "4" => AddressFamily.InterNetwork,
        "ipv6" or "inet6" or "6" => AddressFamily.InterNetworkV6,
        _ => throw new InputException(field, $"'{Net.Printable(text)}' is not a family; expected 'ipv4' or 'ipv6'"),
    };

    static AddressMatch? ParseAddress(string field, string? text)
    {
        if (text is null) return null;
        var t = text.Trim();
        var negated = t.StartsWith('!');
        if (negated) t = t[1..].TrimStart();
        if (t.Length == 0) throw new InputException(field, $"'{Net.Printable(text)}' is empty; expected an address or prefix, '!' before it negates");
        if (t is "default" or "all" or "any")
            throw new InputException(field, $"'{t}' matches everything; leave {field} out instead");
        return new AddressMatch(Net.ParsePrefix(field, t, strictHostBits: true), negated);
    }

    static byte? ParseProtocol(string field, string? text)
    {
        if (text is null) return null;
        var t = text.Trim().ToLowerInvariant();
        if (t is "all" or "") throw new InputException(field, $"'{Net.Printable(text)}' is not a protocol; leave Protocol out to match all");
        if (!IpProtocols.TryParse(t, out var number) || number == 0)
            throw new InputException(field, $"'{Net.Printable(text)}' is not a protocol; expected tcp, udp, sctp, icmp, icmpv6, gre, esp or a number 1-255");
        return number;
    }

    /// <summary>"80,443", "1000-2000", "80, 1000-2000" → normalised "80,443" text; overlapping entries are
    /// refused because nft refuses them in a set (and they are always a typo).</summary>
    static string? ParsePorts(string field, string? text, byte? protocol)
    {
        if (text is null) return null;
        if (protocol is not { } p || !PortProtocols.Contains(p))
            throw new InputException(field, "needs Protocol tcp, udp or sctp (ports exist only there)");
        var ranges = new List<(int Lo, int Hi)>();
        foreach (var raw in text.Split(','))
        {
            var item = raw.Trim();
            var dash = item.IndexOf('-');
            var lo = ParsePort(field, text, dash < 0 ? item : item[..dash]);
            var hi = dash < 0 ? lo : ParsePort(field, text, item[(dash + 1)..]);
            if (hi < lo) throw new InputException(field, $"'{Net.Printable(item)}' is a range from high to low");
            ranges.Add((lo, hi));
        }
        var sorted = ranges.OrderBy(r => r.Lo).ToList();
        for (var i = 1; i < sorted.Count; i++)
            if (sorted[i].Lo <= sorted[i - 1].Hi)
                throw new InputException(field, $"'{Net.Printable(text)}' lists port {sorted[i].Lo} twice");
        return string.Join(',', ranges.Select(r => r.Lo == r.Hi ? $"{r.Lo}" : $"{r.Lo}-{r.Hi}"));
    }

    static int ParsePort(string field, string whole, string text)
    {
        var t = text.Trim();
        if (t.Length is 0 or > 5 || !t.All(char.IsAsciiDigit) || int.Parse(t, CultureInfo.InvariantCulture) > 65535)
            throw new InputException(field, $"'{Net.Printable(whole)}' is not a port list; expected ports 0-65535 like '80,443' or '1000-2000'");
        return int.Parse(t, CultureInfo.InvariantCulture);
    }

    static string? ParseInterface(string field, string? text) =>
        text is null ? null : InterfaceName.Validate(field, text.Trim());

    /// <summary>"0xf2", "242"; "clear" is 0. Null when absent.</summary>
    static uint? ParseMark(string field, string? text, bool allowClear)
    {
        if (text is null) return null;
        var t = text.Trim().ToLowerInvariant();
        if (allowClear && t == "clear") return 0;
        uint v = 0;
        var ok = t.StartsWith("0x", StringComparison.Ordinal)
            ? t.Length is > 2 and <= 10 && uint.TryParse(t.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out v)
            : t.Length is > 0 and <= 10 && t.All(char.IsAsciiDigit) && uint.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out v);
        if (!ok) throw new InputException(field, $"'{Net.Printable(text)}' is not a 32-bit mark; expected hex like '0xf2' or decimal like '242'");
        return v;
    }

    static string FamilyName(AddressFamily f) => f.IsV6() ? "IPv6" : "IPv4";
}
