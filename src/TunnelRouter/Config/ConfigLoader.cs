using Microsoft.Extensions.Configuration;

namespace TunnelRouter.Config;

/// <summary>Builds the configuration from the policy file, the environment and the command line, in
/// that order of precedence (later wins), and binds it with precise errors.</summary>
public static class ConfigLoader
{
    public const string DefaultPath = "/etc/tunnel-router/tunnel-router.json";
    public const string EnvPrefix = "TUNNEL_ROUTER_";

    /// <summary>Top-level keys, as the binder matches them (case-insensitive). "Config" is the path itself.</summary>
    static readonly string[] Known =
    [
        "Config", "Table", "TableId", "Protocol", "HookProtocol", "PoolRules", "PoolRulePriority", "Backend",
        "LogFile", "Iproute2Dir", "LockFile", "LockTimeoutSeconds", "Tables", "Rules", "Routes",
        "Uplinks", "Marks", "Sysctls", "Tunnels",
    ];

    /// <summary>Keys of the entries of list sections: a misspelt key inside an entry is an error too.</summary>
    static readonly Dictionary<string, string[]> KnownInEntries = new(StringComparer.OrdinalIgnoreCase)
    {
        ["Tunnels"] = ["Name", "Mode", "Local", "Remote", "Key", "IKey", "OKey", "Ttl", "Tos", "PMtuDisc", "Mtu",
            "Underlay", "Dev", "Addresses", "Routes"],
    };

    /// <param name="env">the process environment (OpenVPN's, for a hook).</param>
    /// <param name="overrides">Key=Value pairs from the command line.</param>
    /// <param name="explicitPath">--config PATH; then TUNNEL_ROUTER_CONFIG; then the default path, which may be absent.</param>
    public static (TunnelRouterOptions Options, string? Path) Load(
        IReadOnlyDictionary<string, string> env, IReadOnlyList<KeyValuePair<string, string>> overrides, string? explicitPath)
    {
        var path = explicitPath ?? (env.TryGetValue(EnvPrefix + "CONFIG", out var p) ? p : null);
        var required = path is not null;
        path ??= DefaultPath;
        var exists = File.Exists(path);
        if (required && !exists) throw new InputException("--config", $"'{path}' does not exist");

        // An unknown key set through the environment is named as the variable the admin wrote.
        foreach (var key in env.Keys)
        {
            if (!key.StartsWith(EnvPrefix, StringComparison.OrdinalIgnoreCase) || key == Kernel.FaultPoint.Variable) continue;
            var top = key[EnvPrefix.Length..].Split("__")[0];
            if (!Known.Contains(top, StringComparer.OrdinalIgnoreCase))
                throw new InputException(key, $"unknown configuration key '{Core.Net.Printable(top)}' (known: {string.Join(", ", Known.Skip(1))})");
        }

        var builder = new ConfigurationBuilder();
        if (exists)
        {
            CheckPermissions(path);
            // Relative to the working directory, as a user means "-c policy.json"; the JSON provider alone
            // would look for it next to the binary.
            builder.AddJsonFile(Path.GetFullPath(path), optional: false, reloadOnChange: false);
        }
        // What AddEnvironmentVariables(prefix) does, over the environment we were handed rather than the
        // process's own, so a command can be run with any environment (tests, OpenVPN's setenv).
        builder.AddInMemoryCollection(env
            .Where(kv => kv.Key.StartsWith(EnvPrefix, StringComparison.OrdinalIgnoreCase) && kv.Key != Kernel.FaultPoint.Variable)
            .Select(kv => new KeyValuePair<string, string?>(kv.Key[EnvPrefix.Length..].Replace("__", ":"), kv.Value)));
        builder.AddInMemoryCollection(overrides.Select(kv => new KeyValuePair<string, string?>(kv.Key, kv.Value)));

        IConfigurationRoot root;
        try { root = builder.Build(); }
        catch (Exception e) when (e is FormatException or InvalidDataException or System.Text.Json.JsonException)
        {
            throw new InputException(exists ? path : "configuration", OneLine(e.InnerException?.Message ?? e.Message));
        }

        var source = exists ? path : "configuration";
        foreach (var section in root.GetChildren())
            if (!Known.Contains(section.Key, StringComparer.OrdinalIgnoreCase))
                throw new InputException($"{source}: {section.Key}", $"unknown key (known: {string.Join(", ", Known.Skip(1))})");
        PolicyShape.Check(root, source);
        foreach (var (list, keys) in KnownInEntries)
            foreach (var entry in root.GetSection(list).GetChildren())
                foreach (var item in entry.GetChildren())
                    if (!keys.Contains(item.Key, StringComparer.OrdinalIgnoreCase))
                        throw new InputException($"{source}: {list}:{entry.Key}:{item.Key}", $"unknown key (known: {string.Join(", ", keys)})");

        CheckMarksAndSysctls(root, source);

        ConfigShape.Check(root, source);

        var options = new TunnelRouterOptions();
        try { root.Bind(options); }
        catch (InvalidOperationException e)
        {
            // "Failed to convert configuration value at 'TableId' to type 'System.UInt32'."
            var key = Between(e.Message, "at '", "'") ?? "configuration";
            var value = root[key];
            throw new InputException($"{source}: {PolicyPath(key)}", $"'{Net(value)}' is not a valid value");
        }
        return (options, exists ? path : null);
    }

    /// <summary>The binder ignores keys it does not know and flattens nesting; a typo in a mark entry
    /// ("SourcePort") or a nested sysctl would silently match more traffic than meant.</summary>
    static void CheckMarksAndSysctls(IConfiguration root, string source)
    {
        foreach (var entry in root.GetSection("Marks").GetChildren())
        {
            if (entry.Value is not null)
                throw new InputException($"{source}: Marks[{entry.Key}]", "expected an object like { \"Chain\": \"output\", \"Mark\": \"0xf2\" }");
            foreach (var key in entry.GetChildren())
                if (!MarkOptions.Keys.Contains(key.Key, StringComparer.OrdinalIgnoreCase))
                    throw new InputException($"{source}: Marks[{entry.Key}].{key.Key}", $"unknown key (known: {string.Join(", ", MarkOptions.Keys)})");
        }
        foreach (var entry in root.GetSection("Sysctls").GetChildren())
            if (entry.Value is null)
                throw new InputException($"{source}: Sysctls.{entry.Key}", "expected a value like \"1\", not an object; write keys dotted: \"net.ipv4.ip_forward\"");
    }

    /// <summary>Like sshd's StrictModes: a policy that others can write could route root's traffic anywhere.</summary>
    static void CheckPermissions(string path) => StrictModes.Check(path);

    /// <summary>"Uplinks:0:Priority" as the policy file spells it: "Uplinks[0].Priority".</summary>
    static string PolicyPath(string key) =>
        string.Concat(key.Split(':').Select((part, i) => part.All(char.IsAsciiDigit) && i > 0 ? $"[{part}]" : i == 0 ? part : "." + part));

    static string Net(string? value) => value is null ? "" : Core.Net.Printable(value);

    static string? Between(string text, string start, string end)
    {
        var i = text.IndexOf(start, StringComparison.Ordinal);
        if (i < 0) return null;
        i += start.Length;
        var j = text.IndexOf(end, i, StringComparison.Ordinal);
        return j < 0 ? null : text[i..j];
    }

    static string OneLine(string text) => text.Replace('\n', ' ').Replace('\r', ' ');
}
