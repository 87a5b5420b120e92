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
        "Uplinks", "Tunnels",
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

        // What AddEnvironmentVariables(prefix) does, over the environment we were handed rather than the
        // process's own, so a command can be run with any environment (tests, OpenVPN's setenv).
        // Only when there is something: every provider re-sorts the keys of the ones before it on each lookup.
        var fromEnv = new List<KeyValuePair<string, string?>>();
        foreach (var (key, value) in env)
            if (key.StartsWith(EnvPrefix, StringComparison.OrdinalIgnoreCase))
                fromEnv.Add(new(key[EnvPrefix.Length..].Replace("__", ":"), value));
        // Nothing to bind (no policy file, no TUNNEL_ROUTER_*, no Key=Value): the defaults, without building a
        // configuration at all. The OpenVPN hook on a host without a policy file takes this path.
        if (!exists && fromEnv.Count == 0 && overrides.Count == 0) return (new TunnelRouterOptions(), null);
        var builder = new ConfigurationBuilder();
        if (exists)
        {
            CheckPermissions(path);
            // Absolute: a relative path given to AddJsonFile is taken relative to the binary's directory.
            var jsonSource = new IndexedJsonConfigurationSource { Path = Path.GetFullPath(path), Optional = false, ReloadOnChange = false };
            jsonSource.ResolveFileProvider();
            builder.Add(jsonSource);
        }
        if (fromEnv.Count > 0) builder.AddInMemoryCollection(fromEnv);
        if (overrides.Count > 0) builder.AddInMemoryCollection(overrides.Select(kv => new KeyValuePair<string, string?>(kv.Key, kv.Value)));

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

        var options = new TunnelRouterOptions();
        try { root.Bind(options); }
        catch (InvalidOperationException e)
        {
            // "Failed to convert configuration value at 'TableId' to type 'System.UInt32'."
            var key = Between(e.Message, "at '", "'") ?? "configuration";
            var value = root[key];
            throw new InputException($"{source}: {key}", $"'{Net(value)}' is not a valid value");
        }
        return (options, exists ? path : null);
    }

    /// <summary>Like sshd's StrictModes: a policy that others can write could route root's traffic anywhere.</summary>
    static void CheckPermissions(string path)
    {
        if (Interop.Libc.geteuid() != 0) return;
        foreach (var p in new[] { path, System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))! })
        {
            var mode = File.GetUnixFileMode(p);
            if ((mode & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
                throw new InputException(p, "is writable by group or others; refusing it (chmod go-w)");
        }
    }

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
