using System.Net;
using System.Net.Sockets;
using System.Text;

namespace TunnelRouter.Core;

/// <summary>What a placeholder's word must be, by the word before it.</summary>
public enum PlaceholderKind { Address, Device, Prefix }

/// <summary>One <c>${NAME}</c> of a line: the variable, the word it stands for, and what that word must parse as.</summary>
public sealed record Placeholder(string Variable, int Word, PlaceholderKind Kind, string After);

/// <summary>
/// One Rules or Routes line of an <c>Instances</c> entry, in iproute2 syntax with <c>${NAME}</c> placeholders
/// naming OpenVPN's environment variables ("default via ${route_vpn_gateway} dev ${dev} table nyet"). Pure.
/// </summary>
/// <remarks>
/// Trust: on a client the values come from the VPN server's push. A placeholder is a whole word and stands
/// where iproute2 expects an address (after via, src), a device (after dev, oif, iif) or a prefix (after from,
/// to, or as a route's destination); the value must parse as exactly that and is substituted in its canonical
/// form, one word, never more. Anything else is refused with one line naming the variable.
/// A line whose first word is <c>optional</c> is skipped (with a note) when a variable it names is unset.
/// </remarks>
public sealed record InstanceLine(string Field, bool IsRule, string Text, bool Optional, IReadOnlyList<Placeholder> Placeholders)
{
    /// <summary>Longer than any address, prefix or device name: a longer value is refused unread.</summary>
    public const int MaxValueLength = 64;

    public const string OptionalWord = "optional";

    public static bool HasPlaceholder(string? line) => line?.Contains("${", StringComparison.Ordinal) == true;

    /// <summary>Splits the template into words and finds its placeholders; errors name the line and the word.</summary>
    public static InstanceLine Parse(string field, string? line, bool isRule)
    {
        var words = Words(line);
        var optional = words.Count > 0 && words[0] == OptionalWord;
        if (optional) words.RemoveAt(0);
        if (words.Count == 0)
            throw new InputException(field, $"is empty; expected {(isRule ? "an ip rule" : "an ip route")}, e.g. {(isRule ? "'from 192.168.10.0/24 lookup nyet'" : "'default via ${route_vpn_gateway} dev ${dev} table nyet'")}");
        var placeholders = new List<Placeholder>();
        var first = words[0] is "-4" or "-6" or "inet" or "inet6" ? 1 : 0;
        for (var i = 0; i < words.Count; i++)
        {
            var w = words[i];
            if (!w.Contains('$')) continue;
            if (!(w.StartsWith("${", StringComparison.Ordinal) && w.EndsWith('}') && w.Length > 3 && IsVariableName(w.AsSpan(2, w.Length - 3))))
                throw new InputException(field, $"word {i + 1 + (optional ? 1 : 0)} '{Net.Printable(w)}': a placeholder is a whole word ${{NAME}}, NAME an OpenVPN variable such as route_vpn_gateway");
            var before = i > first ? words[i - 1] : "";
            PlaceholderKind? kind = (isRule, before) switch
            {
                (_, "dev" or "oif" or "iif") => PlaceholderKind.Device,
                (false, "via" or "src") => PlaceholderKind.Address,
                (_, "from" or "to") => PlaceholderKind.Prefix,
                (false, "") => PlaceholderKind.Prefix,
                _ => null,
            };
            if (kind is null)
                throw new InputException(field, $"word {i + 1 + (optional ? 1 : 0)} '{w}': a placeholder may stand only for an address (after via, src), a device (after dev, iif, oif) or a prefix (after from, to, or as the destination)");
            placeholders.Add(new Placeholder(w[2..^1], i, kind.Value, before));
        }
        return new InstanceLine(field, isRule, string.Join(' ', words), optional, placeholders);
    }

    /// <summary>Route types that go through no device (iproute2's words): such a line gets no <c>dev</c>.</summary>
    static readonly HashSet<string> Deviceless = new(StringComparer.Ordinal) { "unreachable", "blackhole", "prohibit", "throw" };

    /// <summary>
    /// A route line bound to its tunnel: one without <c>dev</c> gets <c>dev ${dev}</c>, so the kernel refuses a gateway that
    /// is not on the tunnel — a pushed <c>route-gateway</c> that is the client's own WAN gateway would otherwise take the
    /// traffic past the tunnel, in clear. Rules, and routes of a type with no device, stay as written.
    /// </summary>
    public InstanceLine BoundToTunnel()
    {
        if (IsRule) return this;
        var words = Words(Text);
        if (words.Contains("dev") || words.Any(Deviceless.Contains)) return this;
        return this with { Text = Text + " dev ${dev}", Placeholders = [.. Placeholders, new Placeholder("dev", words.Count + 1, PlaceholderKind.Device, "dev")] };
    }

    /// <summary>The family the line's own words fix: a leading -4/-6, or a literal address; null when only a value can.</summary>
    public AddressFamily? Family
    {
        get
        {
            var words = Words(Text);
            if (words[0] is "-4" or "inet") return AddressFamily.InterNetwork;
            if (words[0] is "-6" or "inet6") return AddressFamily.InterNetworkV6;
            foreach (var w in words)
            {
                var slash = w.IndexOf('/');
                if (Net.TryParseAddress(slash < 0 ? w : w[..slash], out var a)) return a.AddressFamily;
            }
            return null;
        }
    }

    /// <summary>The line with sample values in place of the placeholders: checks the template where no tunnel is.</summary>
    public string Sample()
    {
        var v6 = Family == AddressFamily.InterNetworkV6;
        return Substitute(p => p.Kind switch
        {
            PlaceholderKind.Device => "tun0",
            PlaceholderKind.Address => v6 ? "2001:db8::1" : "192.0.2.1",
            _ => v6 ? "2001:db8::/64" : "192.0.2.0/24",
        });
    }

    /// <summary>
    /// The line with every placeholder replaced by its variable's value from OpenVPN's environment, checked and
    /// in canonical form; null when the line is optional and a variable is unset or empty (<paramref name="skipped"/>
    /// then says which). A hostile value (more than one word, a control character, too long, of the wrong kind
    /// or family) is an error naming the variable, whatever the line's marking.
    /// </summary>
    public string? Resolve(IReadOnlyDictionary<string, string> env, out string? skipped)
    {
        skipped = null;
        var family = Family;
        var values = new Dictionary<Placeholder, string>();
        foreach (var p in Placeholders)
        {
            if (!env.TryGetValue(p.Variable, out var value) || value.Length == 0)
            {
                if (Optional) { skipped ??= $"{Field}: skipped, {p.Variable} is {(value is null ? "not set" : "empty")}"; continue; }
                throw new InputException(p.Variable, $"is {(value is null ? "not set" : "empty")}, and {Field} needs it; mark the line '{OptionalWord} ...' to skip it then");
            }
            var canonical = Check(p, value, family);
            family ??= p.Kind == PlaceholderKind.Device ? null : (canonical.Contains(':') ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork);
            values[p] = canonical;
        }
        return skipped is null ? Substitute(p => values[p]) : null;
    }

    string Check(Placeholder p, string value, AddressFamily? family)
    {
        string Refuse(string why) => throw new InputException(p.Variable,
            $"'{Shown(value)}' {why} ({Field} wants one after '{(p.After.Length == 0 ? "the start" : p.After)}'); the VPN server sets it, nothing was changed");

        if (value.Length > MaxValueLength) Refuse($"is {value.Length} characters long, not one {Expected(p.Kind)}");
        foreach (var c in value)
            if (char.IsWhiteSpace(c) || char.IsControl(c)) Refuse($"is more than one word, not one {Expected(p.Kind)}");
        switch (p.Kind)
        {
            case PlaceholderKind.Device:
                try { return InterfaceName.Validate(p.Variable, value); }
                catch (InputException) { return Refuse("is not an interface name"); }
            case PlaceholderKind.Address:
            {
                if (!Net.TryParseAddress(value, out var a)) return Refuse("is not an IPv4 or IPv6 address");
                if (family is { } f && a.AddressFamily != f) Refuse($"is an {Name(a.AddressFamily)} address in an {Name(f)} line");
                return a.ToString();
            }
            default:
            {
                var slash = value.IndexOf('/');
                if (!Net.TryParseAddress(slash < 0 ? value : value[..slash], out var a)) return Refuse("is not an address or prefix");
                if (family is { } f && a.AddressFamily != f) Refuse($"is an {Name(a.AddressFamily)} prefix in an {Name(f)} line");
                var max = Net.MaxPrefix(a.AddressFamily);
                var bits = max;
                if (slash >= 0)
                {
                    var t = value[(slash + 1)..];
                    if (t.Length is 0 or > 3 || !t.All(char.IsAsciiDigit) || (bits = int.Parse(t, System.Globalization.CultureInfo.InvariantCulture)) > max)
                        Refuse("is not an address or prefix");
                }
                return Net.Format(Net.Masked(a, bits));
            }
        }
    }

    static string Expected(PlaceholderKind k) => k switch
    {
        PlaceholderKind.Address => "address",
        PlaceholderKind.Device => "interface name",
        _ => "prefix",
    };

    static string Name(AddressFamily f) => f.IsV6() ? "IPv6" : "IPv4";

    /// <summary>At most 40 characters of a hostile value, escaped: the error stays one short line.</summary>
    static string Shown(string value) => value.Length <= 40 ? Net.Printable(value) : Net.Printable(value[..40]) + "...";

    string Substitute(Func<Placeholder, string> value)
    {
        var words = Words(Text);
        foreach (var p in Placeholders) words[p.Word] = value(p);
        return string.Join(' ', words);
    }

    static List<string> Words(string? line) =>
        [.. (line ?? "").Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries)];

    static bool IsVariableName(ReadOnlySpan<char> name)
    {
        if (name.Length == 0 || char.IsAsciiDigit(name[0])) return false;
        foreach (var c in name)
            if (!(char.IsAsciiLetterOrDigit(c) || c == '_')) return false;
        return true;
    }
}
