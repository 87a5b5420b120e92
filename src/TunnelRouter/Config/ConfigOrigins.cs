namespace TunnelRouter.Config;

/// <summary>
/// Where each configuration value came from: the policy file, a <c>TUNNEL_ROUTER_*</c> variable, or a
/// command-line <c>Key=Value</c> argument (later wins, as the configuration is built). Errors name it, so a
/// mistake in OpenVPN's <c>setenv TUNNEL_ROUTER_TABLE</c> is not blamed on the policy file.
/// </summary>
public sealed class ConfigOrigins(string file, IReadOnlyDictionary<string, string> variables, IReadOnlyCollection<string> arguments,
    FragmentMap? fragments = null)
{
    readonly Dictionary<string, string> _variables = new(variables, StringComparer.OrdinalIgnoreCase);
    readonly HashSet<string> _arguments = new(arguments, StringComparer.OrdinalIgnoreCase);

    public static ConfigOrigins FileOnly(string file) => new(file, new Dictionary<string, string>(), []);

    /// <summary>The origin of a key ("Uplinks:0:Gateway") or of the nearest enclosing key that was set as a whole.</summary>
    public string Of(string key)
    {
        for (var k = key; k.Length > 0; k = k.LastIndexOf(':') is var i and > 0 ? k[..i] : "")
        {
            if (_arguments.Contains(k)) return "command line";
            if (_variables.TryGetValue(k, out var variable)) return variable;
            if (fragments?.FileOf(k) is { } fragment) return fragment;
        }
        return file;
    }

    /// <summary>Where a path of the policy ("Routes[11]", "Uplinks[0].Gateway") was set, and the path as that file spells
    /// it: a fragment's own index of a line it appended ("conf.d/10-site.json", "Routes[1]").</summary>
    public (string File, string Path) Place(string path)
    {
        var origin = Of(KeyOf(path));
        return (origin, fragments is not null && origin != file ? fragments.Localize(path) : path);
    }

    /// <summary>"Uplinks:0:Priority" as the policy file spells it: "Uplinks[0].Priority".</summary>
    public static string PolicyPath(string key) =>
        string.Concat(key.Split(':').Select((part, i) => part.All(char.IsAsciiDigit) && i > 0 ? $"[{part}]" : i == 0 ? part : "." + part));

    /// <summary>An error's field ("policy.json: Uplinks[0].Gateway", or "Marks[3].Source" without a file) with the
    /// value's true origin in front: "TUNNEL_ROUTER_UPLINKS__0__GATEWAY: Uplinks[0].Gateway".</summary>
    public InputException Relabel(InputException e)
    {
        var inFile = e.Field.StartsWith(file + ": ", StringComparison.Ordinal);
        var path = inFile ? e.Field[(file.Length + 2)..] : e.Field;
        // Only fields naming a configuration key are relabelled: a variable, a prefix file's line ("/lists/ru.txt:2")
        // or an option already says where it came from.
        var top = path.Split('[', '.', ':', ' ')[0];
        if (!ConfigSchema.IsKnown(top)) return inFile && !Quotes ? new InputException($"{file}: a key", Unquoted(e.Message[(e.Field.Length + 2)..])) : e;
        var text = e.Message[(e.Field.Length + 2)..];
        var (origin, shown) = Place(path);
        // A value of the policy file or a fragment (not a variable's, not the command line's) is the file's words.
        if (!Quotes && origin != "command line" && !_variables.ContainsValue(origin)) (shown, text) = (Structural(shown), Unquoted(text));
        return new InputException($"{origin}: {shown}", text);
    }

    /// <summary>Whether errors may quote the policy file's words: false for a file not everyone may read (trust
    /// boundaries, docs/hardening.md): then they name the key and what was expected, and each quoted word becomes '…'.</summary>
    public bool Quotes { get; init; } = true;

    /// <summary>The message with every quoted word ('10.0.0/24', "x") left out.</summary>
    public static string Unquoted(string message) =>
        System.Text.RegularExpressions.Regex.Replace(message, "'[^']*'|\"[^\"]*\"", "'…'");

    /// <summary>A key path without the names a map section's entries carry (Tables.vpn, Sysctls.net.ipv4.x): those are the file's words.</summary>
    static string Structural(string path)
    {
        foreach (var map in new[] { "Sysctls.", "Tables." })
            if (path.StartsWith(map, StringComparison.Ordinal)) return map + "…";
        return path;
    }

    /// <summary>"Uplinks[0].Gateway" → "Uplinks:0:Gateway"; map sections keep their dotted keys ("Sysctls:net.ipv4.ip_forward").</summary>
    static string KeyOf(string path)
    {
        foreach (var map in new[] { "Sysctls.", "Tables." })
            if (path.StartsWith(map, StringComparison.Ordinal)) return map[..^1] + ":" + path[map.Length..];
        return path.Replace("[", ":").Replace("]", "").Replace('.', ':');
    }
}
