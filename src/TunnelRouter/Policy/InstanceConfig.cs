using TunnelRouter.Config;
using TunnelRouter.Core;

namespace TunnelRouter.Policy;

/// <summary>An <c>Instances</c> entry, its lines checked as templates.</summary>
public sealed record InstanceSpec(string Field, string Dev, IReadOnlyList<InstanceLine> Rules, IReadOnlyList<InstanceLine> Routes)
{
    /// <summary>Each Rules line as a rule with sample values (same index): what it selects and which table it looks up.</summary>
    public IReadOnlyList<Rule> Samples { get; init; } = [];

    /// <summary>The indexes of the Rules lines that are steady (<see cref="Lifecycle.Of"/>): apply installs them from boot with
    /// its own protocol, the hook installs them only when they are missing and never removes them.</summary>
    public IReadOnlySet<int> Steady { get; init; } = new HashSet<int>();

    /// <summary>The steady rules, with <paramref name="protocol"/> (apply's): the Samples are the lines themselves, having no placeholder.</summary>
    public IEnumerable<Rule> SteadyRules(byte protocol) => Steady.Order().Select(j => Samples[j] with { Protocol = protocol });

    /// <summary>Whether a device is this entry's: its name, or a match of its pattern (* any run, ? one character).</summary>
    public bool Matches(string device) => Glob(Dev, device);

    static bool Glob(ReadOnlySpan<char> pattern, ReadOnlySpan<char> text)
    {
        if (pattern.IsEmpty) return text.IsEmpty;
        if (pattern[0] == '*')
        {
            for (var i = 0; i <= text.Length; i++)
                if (Glob(pattern[1..], text[i..])) return true;
            return false;
        }
        return !text.IsEmpty && (pattern[0] == '?' || pattern[0] == text[0]) && Glob(pattern[1..], text[1..]);
    }
}

/// <summary>An instance's lines as one tunnel's environment resolves them: the objects, the lines as text
/// (what the hook records, and plan shows), and notes on optional lines skipped.</summary>
public sealed record ResolvedInstance(InstanceSpec Spec, KernelState State, IReadOnlyList<string> RouteLines, IReadOnlyList<string> RuleLines,
    IReadOnlyList<string> Notes);

/// <summary>Checks the <c>Instances</c> section, and resolves an entry for a tunnel at up.</summary>
public static class InstanceConfig
{
    /// <summary>Instance rules without "pref" get 1100 + 10 × their index: inside the hook's band (1000–1999),
    /// after the pool rules at 1000, with gaps an admin can insert rules into.</summary>
    public const uint RuleBandStart = 1100, BandStep = 10, BandSlots = 90;

    /// <param name="closed">the FailClosed tables: a rule without placeholders into one is steady (<see cref="Lifecycle"/>).</param>
    public static IReadOnlyList<InstanceSpec> Parse(IReadOnlyList<InstanceOptions> entries, Func<string, TableResolver> tables, byte protocol, string src,
        IReadOnlySet<uint>? closed = null)
    {
        // Every entry and every line of it is checked: all mistakes of the section at once.
        var result = new List<InstanceSpec>(entries.Count);
        var errors = new List<InputException>();
        for (var i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            var field = $"{src}: Instances[{i}]";
            var before = errors.Count;
            var dev = InputErrors.Collect(errors, () => ValidPattern($"{field}.Dev", e.Dev));
            var rules = e.Rules.Select((l, j) => InputErrors.Collect(errors, () => InstanceLine.Parse($"{field}.Rules[{j}]", l, isRule: true))).ToList();
            var routes = e.Routes.Select((l, j) => InputErrors.Collect(errors, () => InstanceLine.Parse($"{field}.Routes[{j}]", l, isRule: false).BoundToTunnel())).ToList();
            if (rules.Count > BandSlots) errors.Add(new InputException($"{field}.Rules", $"has more than {BandSlots} lines, the size of the instance band"));
            // Parsing is validation: each template with sample values must be a valid line now, not at some up. Each line
            // on its own, so that one bad line does not hide the next.
            var spec = new InstanceSpec(field, dev ?? "", rules.OfType<InstanceLine>().ToList(), routes.OfType<InstanceLine>().ToList());
            foreach (var line in spec.Routes)
                InputErrors.Collect(errors, () => Build(spec with { Routes = [line], Rules = [] }, tables, protocol, l => l.Sample()));
            for (var j = 0; j < spec.Rules.Count; j++)
            {
                var only = spec.Rules.Select((l, k) => k == j ? l : l with { Text = "" }).ToList();
                InputErrors.Collect(errors, () => Build(spec with { Routes = [], Rules = only }, tables, protocol, l => l.Text == "" ? null : l.Sample()));
            }
            if (errors.Count == before) InputErrors.Collect(errors, () => Build(spec, tables, protocol, l => l.Sample()));
            if (errors.Count != before) continue;
            var samples = spec.Rules.Select((l, j) => PolicyLine.ParseRule(l.Field, l.Sample(), tables(l.Field), protocol, RuleBandStart + BandStep * (uint)j)).ToList();
            var steady = new HashSet<int>();
            for (var j = 0; j < samples.Count; j++)
                if (closed is not null && Lifecycle.Of(spec.Rules[j], samples[j], closed) == Lifetime.Steady) steady.Add(j);
            result.Add(spec with { Samples = samples, Steady = steady });
        }
        InputErrors.ThrowIfAny(errors);
        return result;
    }

    /// <summary>The first entry whose Dev matches the device, or null.</summary>
    public static InstanceSpec? Match(IReadOnlyList<InstanceSpec> specs, string device) => specs.FirstOrDefault(s => s.Matches(device));

    /// <summary>The entry's lines with OpenVPN's values (see <see cref="InstanceLine.Resolve"/>): a hostile or
    /// missing value is an error naming the variable, before anything is changed.</summary>
    /// <param name="own">the tunnel's own networks (not the routed ones): a gateway a placeholder fills must lie in one.</param>
    public static ResolvedInstance Resolve(InstanceSpec spec, IReadOnlyDictionary<string, string> env, Func<string, TableResolver> tables, byte protocol,
        IReadOnlyList<System.Net.IPNetwork>? own = null)
    {
        var notes = new List<string>();
        var resolved = Build(spec, tables, protocol, l =>
        {
            var text = l.Resolve(env, out var skipped);
            if (skipped is not null) notes.Add(skipped);
            return text;
        }, notes);
        if (own is not null) InTunnel(spec, resolved, env, own);
        return resolved;
    }

    /// <summary>
    /// Each gateway a placeholder filled lies in the tunnel's own networks: the VPN server sets it, and one outside
    /// (the client's own WAN gateway, with onlink) would route the traffic past the tunnel. An error naming the
    /// variable, before anything is changed.
    /// </summary>
    static void InTunnel(InstanceSpec spec, ResolvedInstance resolved, IReadOnlyDictionary<string, string> env, IReadOnlyList<System.Net.IPNetwork> own)
    {
        foreach (var line in spec.Routes)
            foreach (var p in line.Placeholders)
            {
                if (p.Kind != PlaceholderKind.Address || p.After != "via" || !env.TryGetValue(p.Variable, out var value)
                    || !Net.TryParseAddress(value, out var gateway)) continue;
                if (!resolved.State.Routes.Any(r => gateway.Equals(r.Gateway)) || own.Any(n => n.Contains(gateway))) continue;
                var networks = own.Count == 0 ? "none" : string.Join(", ", own.Select(Net.Format));
                throw new InputException(p.Variable, $"'{gateway}' is not in the tunnel's own networks ({networks}), so {line.Field} would route " +
                    "past the tunnel; the VPN server sets it, nothing was changed");
            }
    }

    static ResolvedInstance Build(InstanceSpec spec, Func<string, TableResolver> tables, byte protocol, Func<InstanceLine, string?> text,
        List<string>? notes = null)
    {
        var routes = new List<Route>();
        var rules = new List<Rule>();
        var routeLines = new List<string>();
        var ruleLines = new List<string>();
        for (var i = 0; i < spec.Routes.Count; i++)
        {
            var line = spec.Routes[i];
            if (text(line) is not { } resolved) continue;
            var route = Parsed(line, resolved, () => PolicyLine.ParseRoute(line.Field, resolved, tables(line.Field), protocol));
            if (routes.FirstOrDefault(r => r.Key == route.Key) is { } same)
                throw new InputException(line.Field, $"'{Net.Printable(resolved)}' has the same table, destination and metric as '{same}'");
            routes.Add(route);
            routeLines.Add(resolved);
        }
        for (var i = 0; i < spec.Rules.Count; i++)
        {
            var line = spec.Rules[i];
            // A steady rule is apply's (and installed by the hook apart from the tunnel's objects): not the tunnel's.
            if (spec.Steady.Contains(i) || text(line) is not { } resolved) continue;
            var rule = Parsed(line, resolved, () => PolicyLine.ParseRule(line.Field, resolved, tables(line.Field), protocol, RuleBandStart + BandStep * (uint)i));
            if (!rules.Contains(rule)) rules.Add(rule);
            // The priority the line got from the band goes with it: read back later, the line means the same rule.
            var words = resolved.Split(' ');
            ruleLines.Add(words.Any(w => w is "pref" or "priority" or "preference" or "order") ? resolved : $"{resolved} pref {rule.Priority}");
        }
        return new ResolvedInstance(spec, new KernelState(routes, rules), routeLines, ruleLines, notes ?? []);
    }

    /// <summary>A line that fails to parse only with its values (two placeholders of different families) names them.</summary>
    static T Parsed<T>(InstanceLine line, string resolved, Func<T> parse)
    {
        try { return parse(); }
        catch (InputException e) when (line.Placeholders.Count > 0 && resolved != line.Sample())
        {
            var names = string.Join(", ", line.Placeholders.Select(p => p.Variable).Distinct());
            throw new InputException(names, $"the values make {e.Message}; the VPN server sets them, nothing was changed");
        }
    }

    static string ValidPattern(string field, string? dev)
    {
        if (string.IsNullOrEmpty(dev)) throw new InputException(field, "is not set; expected a device name or pattern, e.g. \"tun2\" or \"tun*\"");
        // A pattern is a name with * and ? in it: checked with sample characters in their place.
        InterfaceName.Validate(field, dev.Replace('*', 'x').Replace('?', 'x'));
        return dev;
    }
}
