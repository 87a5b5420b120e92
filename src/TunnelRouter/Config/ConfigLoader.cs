using Microsoft.Extensions.Configuration;

namespace TunnelRouter.Config;

/// <summary>Builds the configuration from the policy file, the environment and the command line, in
/// that order of precedence (later wins), and binds it with precise errors.</summary>
public static class ConfigLoader
{
    public const string DefaultPath = "/etc/tunnel-router/tunnel-router.json";
    public const string EnvPrefix = "TUNNEL_ROUTER_";

    /// <summary>Where the policy is: --config PATH, then TUNNEL_ROUTER_CONFIG (both must exist; empty for no policy
    /// file at all), then the default path, which may be absent. Only the composition root asks; everything else is
    /// handed the answer.</summary>
    public static (string? Path, bool Required) Locate(string? explicitPath, IReadOnlyDictionary<string, string> env) =>
        (explicitPath ?? (env.TryGetValue(EnvPrefix + "CONFIG", out var p) ? p : null)) switch
        {
            null => (DefaultPath, false),
            "" => (null, false),
            var named => (named, true),
        };

    /// <param name="env">the process environment (OpenVPN's, for a hook).</param>
    /// <param name="overrides">Key=Value pairs from the command line.</param>
    /// <param name="path">the policy file (see <see cref="Locate"/>); null for none: the defaults, the
    /// environment and the command line only.</param>
    /// <param name="required">whether a missing file is an error (it was named) or means "no policy".</param>
    /// <param name="deepCheck">when the shape check finds mistakes, the policy's own check run over the rest (the
    /// values named left out), so that every mistake is reported in one run; its errors come after the shape's.</param>
    /// <param name="loaded">told the file's text once it loaded (what the last good policy keeps): with fragments, the
    /// merged policy.</param>
    /// <param name="fragments">whether conf.d/*.json beside the file is merged onto it (<see cref="PolicyFragments"/>);
    /// not for the last good policy, which is merged already.</param>
    public static (TunnelRouterOptions Options, string? Path) Load(
        IReadOnlyDictionary<string, string> env, IReadOnlyList<KeyValuePair<string, string>> overrides, string? path, bool required = true,
        Func<TunnelRouterOptions, string?, IReadOnlyList<InputException>>? deepCheck = null, Action<string>? loaded = null, bool fragments = true)
    {
        // Checked and read in one go, from one descriptor (StrictModes): what was checked is what is parsed.
        var read = path is null ? null : StrictModes.ReadShowing(path);
        var content = read?.Bytes;
        var exists = content is not null;
        if (required && path is not null && !exists) throw new InputException("--config", $"'{Core.Net.Printable(path)}' does not exist");
        FragmentMap? fragmentMap = null;
        var fragmentsReadable = true;
        if (exists && fragments && PolicyFragments.Find(path!) is { Count: > 0 } found)
        {
            var parts = new List<(string, byte[], bool)>(found.Count);
            foreach (var f in found)
                if (StrictModes.ReadShowing(f, what: "the policy fragment") is { } r)
                {
                    parts.Add((f, r.Bytes, r.WorldReadable));
                    fragmentsReadable &= r.WorldReadable;
                }
            if (PolicyFragments.Merge(path!, content!, parts) is { } merged) (content, fragmentMap) = merged;
        }

        // An unknown key set through the environment is named as the variable the admin wrote; the fault point
        // (test only) is not a configuration key. What AddEnvironmentVariables(prefix) does, over the
        // environment we were handed rather than the process's own, so a command can be run with any
        // environment (tests, OpenVPN's setenv).
        var fromEnv = new List<KeyValuePair<string, string?>>();
        var variables = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var unknown = new List<InputException>();
        foreach (var (key, value) in env)
        {
            if (!key.StartsWith(EnvPrefix, StringComparison.OrdinalIgnoreCase) || key == Kernel.FaultPoint.Variable) continue;
            var top = key[EnvPrefix.Length..].Split("__")[0];
            if (!ConfigSchema.IsKnown(top))
            {
                unknown.Add(new InputException(Core.Net.Printable(key), $"unknown configuration key '{Core.Net.Printable(top)}'{Core.Suggest.DidYouMean(top, ConfigSchema.Known)} (known: {string.Join(", ", ConfigSchema.Known)})"));
                continue;
            }
            var configKey = key[EnvPrefix.Length..].Replace("__", ":");
            fromEnv.Add(new(configKey, value));
            variables[configKey] = Core.Net.Printable(key);
        }
        InputErrors.ThrowIfAny(unknown);
        // Nothing to bind (no policy file, no TUNNEL_ROUTER_*, no Key=Value): the defaults, without building a
        // configuration at all. The OpenVPN hook on a host without a policy file takes this path.
        if (!exists && fromEnv.Count == 0 && overrides.Count == 0) return (new TunnelRouterOptions(), null);

        var builder = new ConfigurationBuilder();
        if (exists)
        {
            builder.Add(new IndexedJsonConfigurationSource { Content = content!, Path = path!, Optional = false, ReloadOnChange = false });
        }
        // Only providers with something in them: every provider re-sorts the keys of the ones before it on each lookup.
        if (fromEnv.Count > 0) builder.AddInMemoryCollection(fromEnv);
        if (overrides.Count > 0) builder.AddInMemoryCollection(overrides.Select(kv => new KeyValuePair<string, string?>(kv.Key, kv.Value)));

        IConfigurationRoot root;
        try { root = builder.Build(); }
        catch (Exception e) when (e is FormatException or InvalidDataException or System.Text.Json.JsonException)
        {
            // The reader says only that it failed, and in this build as a resource key: ask the file itself.
            var problem = exists ? PolicyJson.Problem(content!, quote: read!.Value.WorldReadable) : null;
            throw new InputException(exists ? path! : "configuration", OneLine(problem ?? FrameworkMessages.Of(e.InnerException ?? e)));
        }

        var source = exists ? path! : "configuration";
        // A policy file (or fragment) not everyone may read (plan -c /root/secret.json under a sudo rule): its errors name the
        // place and what was expected, never the file's words.
        var origins = new ConfigOrigins(source, variables, overrides.Select(kv => kv.Key).ToList(), fragmentMap)
            { Quotes = !exists || read!.Value.WorldReadable && fragmentsReadable };
        var shape = ConfigSchema.Check(root, source, out var broken, out var meant);
        if (shape.Count > 0)
        {
            // Every mistake in one run: what the rest of the policy gets wrong too, each section read without the
            // values already named (a value that is wrong is one message, not two).
            var errors = shape.Select(origins.Relabel).ToList();
            // Past the error cap the rest is not judged: Salvage weighs every key against every broken one.
            if (deepCheck is not null && shape.Count < InputErrors.Max && Salvage(root, broken) is { } rest)
            {
                var paths = broken.Concat(meant).Select(PolicyPath).ToList();
                errors.AddRange(deepCheck(rest.WithOrigins(origins), exists ? path : null)
                    .Where(e => !paths.Any(p => Names(e.Field, p))));
            }
            InputErrors.ThrowIfAny(errors);
        }

        var options = new TunnelRouterOptions();
        try { root.Bind(options); }
        catch (InvalidOperationException e)
        {
            // "Failed to convert configuration value at 'TableId' to type 'System.UInt32'."
            var key = Between(e.Message, "at '", "'") ?? "configuration";
            var value = root[key];
            throw origins.Relabel(new InputException($"{source}: {PolicyPath(key)}", $"'{Net(value)}' is not a valid value"));
        }
        MergeLines(root, options);
        if (exists && loaded is not null) loaded(System.Text.Encoding.UTF8.GetString(content!));
        return (options.WithOrigins(origins), exists ? path : null);
    }

    /// <summary>The configuration without the values the shape check named: a list's wrong line or entry stays in its
    /// place as an empty one (so the others keep their indexes), a table's wrong number becomes 0 (the table stands in
    /// as valid, the lines naming it are judged on their own), anything else is left out (its default is used). Null when
    /// the rest cannot be judged: Tables not being an object leaves every table name unknown.</summary>
    static TunnelRouterOptions? Salvage(IConfigurationRoot root, List<string> broken)
    {
        if (broken.Any(b => b.Equals("Tables", StringComparison.OrdinalIgnoreCase))) return null;
        bool Under(string key, string b) => key.Equals(b, StringComparison.OrdinalIgnoreCase) || key.StartsWith(b + ":", StringComparison.OrdinalIgnoreCase);
        var data = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in root.AsEnumerable())
            if (value is not null && !broken.Any(b => Under(key, b))) data[key] = value;
        foreach (var b in broken)
        {
            var parts = b.Split(':');
            if (parts.Length < 2) continue;
            if (parts[0].Equals("Tables", StringComparison.OrdinalIgnoreCase)) data[b] = "0";
            else if (int.TryParse(parts[^1], out _))
            {
                // A line of a list of lines stays as an empty line; an entry of a list of objects as an empty object.
                string[] lists = parts.Length == 2 ? ["Rules", "Routes", "FailClosed", "Failover"] : ["Rules", "Routes", "Addresses", "Interfaces", "Stubs"];
                if (lists.Contains(parts[^2], StringComparer.OrdinalIgnoreCase)) data[b] = "";
                else data[b + ":" + Placeholder] = "";
            }
        }
        var options = new TunnelRouterOptions();
        try { new ConfigurationBuilder().AddInMemoryCollection(data).Build().Bind(options); }
        catch (InvalidOperationException) { return null; }
        MergeLines(root, options);
        return options;
    }

    /// <summary>A key no section has: it makes an empty object of a list's entry, and binds to nothing.</summary>
    const string Placeholder = "_";

    /// <summary>Whether an error's field ("policy.json: Uplinks[0].Gateway") is the path or under it.</summary>
    static bool Names(string field, string path) =>
        field.Equals(path, StringComparison.OrdinalIgnoreCase) || field.EndsWith(": " + path, StringComparison.OrdinalIgnoreCase)
        || field.Contains(": " + path + ".", StringComparison.OrdinalIgnoreCase) || field.Contains(": " + path + "[", StringComparison.OrdinalIgnoreCase);

    /// <summary>For flush, which needs only the protocol numbers: a policy file that does not load is set aside
    /// with one warning, and the defaults, the environment and the command line are used.</summary>
    public static (TunnelRouterOptions Options, string? Path) LoadOrSetAside(IReadOnlyDictionary<string, string> env,
        IReadOnlyList<KeyValuePair<string, string>> overrides, string? path, bool required, Action<string> warn)
    {
        try { return Load(env, overrides, path, required); }
        catch (TunnelRouterException e) when (e is InputException or InputErrors && path is not null && File.Exists(path))
        {
            var (options, _) = Load(env, overrides, null);
            warn($"{OneLine(e.Message)}; the policy file is set aside: flush removes what carries protocol {options.Protocol} or {options.HookProtocol}");
            return (options, null);
        }
    }

    /// <summary>
    /// For the hook and watch: a policy file that does not load is replaced by the last good policy (<paramref name="lastGood"/>,
    /// when there is one), with one loud warning naming the error; without one, the error stands.
    /// </summary>
    public static (TunnelRouterOptions Options, string? Path) LoadOrLastGood(IReadOnlyDictionary<string, string> env,
        IReadOnlyList<KeyValuePair<string, string>> overrides, string? path, bool required, Func<TunnelRouterOptions, string> lastGood,
        Func<TunnelRouterOptions, string?, IReadOnlyList<InputException>>? deepCheck, Action<string> loaded, Action<string> warn)
    {
        try { return Load(env, overrides, path, required, deepCheck, loaded); }
        catch (TunnelRouterException e) when (e is InputException or InputErrors && path is not null && File.Exists(path))
        {
            // The run directory (and so the copy) is where the lock is: known from the environment and the defaults.
            var (defaults, _) = Load(env, overrides, null);
            var copy = lastGood(defaults);
            if (!File.Exists(copy)) throw;
            var errors = e is InputErrors many ? string.Join("; ", many.Errors.Select(x => OneLine(x.Message))) : OneLine(e.Message);
            warn($"the policy does not load ({errors}); running on the last good policy, {copy}, until it is fixed");
            return Load(env, overrides, copy, required: true, fragments: false);
        }
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

    static string PolicyPath(string key) => ConfigOrigins.PolicyPath(key);

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
