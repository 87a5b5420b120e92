namespace TunnelRouter.Core;

/// <summary>
/// Sysctl keys and values the policy may set. Keys are restricted to <c>net.*</c> in dotted form with
/// plain components, because a key becomes a path under /proc/sys: no "..", no "/", nothing outside the
/// network settings a routing policy has any business with.
/// </summary>
public static class Sysctl
{
    const int MaxKeyLength = 128, MaxValueLength = 64;

    public static string ValidateKey(string field, string? key)
    {
        if (string.IsNullOrEmpty(key)) throw new InputException(field, "is empty; expected a key like 'net.ipv4.ip_forward'");
        if (key.Length > MaxKeyLength) throw new InputException(field, $"'{Net.Printable(key)}' is longer than {MaxKeyLength} characters");
        var components = key.Split('.');
        if (components[0] != "net" || components.Length < 3)
            throw new InputException(field, $"'{Net.Printable(key)}' is not a net.* sysctl; only network settings can be set (e.g. net.ipv4.ip_forward)");
        foreach (var c in components)
        {
            // Interface names with dots (VLANs) need sysctl's "/" escape, which would also let a key climb
            // out of /proc/sys/net; those are set through net.ipv4.conf.all or .default instead.
            if (c.Length == 0 || !c.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '_' or '-'))
                throw new InputException(field, $"'{Net.Printable(key)}' is not a sysctl key; expected dotted names of letters, digits, '_' and '-'");
        }
        return key;
    }

    public static string ValidateValue(string field, string? value)
    {
        var v = value?.Trim();
        if (string.IsNullOrEmpty(v)) throw new InputException(field, "is empty; expected a value like '1'");
        if (v.Length > MaxValueLength || !v.All(c => c is >= ' ' and <= '~'))
            throw new InputException(field, $"'{Net.Printable(v)}' is not a short printable value (at most {MaxValueLength} characters)");
        return v;
    }

    /// <summary>The path under /proc/sys of a validated key.</summary>
    public static string RelativePath(string key) => key.Replace('.', '/');

    /// <summary>The kernel prints multi-value settings tab-separated ("32768\t60999") and ends with a newline;
    /// a policy writes them with spaces.</summary>
    public static string Normalize(string value) =>
        string.Join(' ', value.Split([' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries));

    public static bool SameValue(string a, string b) => Normalize(a) == Normalize(b);

    /// <summary>Parses and validates the policy's sysctls, in the policy's order.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Parse(IReadOnlyDictionary<string, string> sysctls)
    {
        var errors = new List<InputException>();
        var result = Parse(sysctls, errors);
        InputErrors.ThrowIfAny(errors);
        return result;
    }

    /// <summary>The valid entries, in the policy's order; each mistake goes to <paramref name="errors"/>.</summary>
    public static List<KeyValuePair<string, string>> Parse(IReadOnlyDictionary<string, string> sysctls, List<InputException> errors)
    {
        // Every key and value checked: all mistakes of the section at once.
        var result = new List<KeyValuePair<string, string>>();
        foreach (var (key, value) in sysctls)
        {
            var field = $"Sysctls.{Net.Printable(key)}";
            var k = InputErrors.Collect(errors, () => ValidateKey(field, key));
            var v = InputErrors.Collect(errors, () => ValidateValue(field, value));
            if (k is not null && v is not null) result.Add(KeyValuePair.Create(k, v));
        }
        return result;
    }
}

/// <summary>Sets one sysctl; the inverse restores the value it had.</summary>
public sealed record SetSysctl(string Key, string Old, string New) : Change
{
    public override Change Inverse() => new SetSysctl(Key, New, Old);

    public override string Display(TableNames tables, ProtocolNames protocols)
    {
        var value = Sysctl.Normalize(New);
        return value.Contains(' ') ? $"sysctl -w '{Key}={value}'" : $"sysctl -w {Key}={value}";
    }
}
