using Microsoft.Extensions.Configuration;

namespace TunnelRouter.Config;

/// <summary>Builds the configuration from the policy file, the environment and the command line, in
/// that order of precedence (later wins), and binds it with precise errors.</summary>
public static class ConfigLoader
{
    public const string DefaultPath = "/etc/tunnel-router/tunnel-router.json";
    public const string EnvPrefix = "TUNNEL_ROUTER_";

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

        // An unknown key set through the environment is named as the variable the admin wrote; the fault point
        // (test only) is not a configuration key. What AddEnvironmentVariables(prefix) does, over the
        // environment we were handed rather than the process's own, so a command can be run with any
        // environment (tests, OpenVPN's setenv).
        var fromEnv = new List<KeyValuePair<string, string?>>();
        foreach (var (key, value) in env)
        {
            if (!key.StartsWith(EnvPrefix, StringComparison.OrdinalIgnoreCase) || key == Kernel.FaultPoint.Variable) continue;
            var top = key[EnvPrefix.Length..].Split("__")[0];
            if (!ConfigSchema.IsKnown(top))
                throw new InputException(key, $"unknown configuration key '{Core.Net.Printable(top)}' (known: {string.Join(", ", ConfigSchema.Known)})");
            fromEnv.Add(new(key[EnvPrefix.Length..].Replace("__", ":"), value));
        }
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
        // Only providers with something in them: every provider re-sorts the keys of the ones before it on each lookup.
        if (fromEnv.Count > 0) builder.AddInMemoryCollection(fromEnv);
        if (overrides.Count > 0) builder.AddInMemoryCollection(overrides.Select(kv => new KeyValuePair<string, string?>(kv.Key, kv.Value)));

        IConfigurationRoot root;
        try { root = builder.Build(); }
        catch (Exception e) when (e is FormatException or InvalidDataException or System.Text.Json.JsonException)
        {
            throw new InputException(exists ? path : "configuration", OneLine(e.InnerException?.Message ?? e.Message));
        }

        var source = exists ? path : "configuration";
        ConfigSchema.Check(root, source);

        var options = new TunnelRouterOptions();
        try { root.Bind(options); }
        catch (InvalidOperationException e)
        {
            // "Failed to convert configuration value at 'TableId' to type 'System.UInt32'."
            var key = Between(e.Message, "at '", "'") ?? "configuration";
            var value = root[key];
            throw new InputException($"{source}: {PolicyPath(key)}", $"'{Net(value)}' is not a valid value");
        }
        MergeLines(root, options);
        return (options, exists ? path : null);
    }

    /// <summary>The file's Rules and Routes, which its provider keeps out of the key/value data, with any
    /// line the environment or the command line sets by index ("Routes:3") over the file's.</summary>
    static void MergeLines(IConfigurationRoot root, TunnelRouterOptions options)
    {
        foreach (var provider in root.Providers)
        {
            if (provider is not IndexedJsonConfigurationProvider json) continue;
            foreach (var (name, fileLines) in json.Lines)
            {
                var lines = new List<string>(fileLines);
                foreach (var item in root.GetSection(name).GetChildren())
                    if (int.TryParse(item.Key, out var i) && i >= 0 && item.Value is { } v)
                    {
                        while (lines.Count <= i) lines.Add("");
                        lines[i] = v;
                    }
                if (name == "Rules") options.Rules = lines;
                else options.Routes = lines;
            }
        }
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
