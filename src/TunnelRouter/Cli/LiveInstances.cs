using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;

namespace TunnelRouter.Cli;

/// <summary>What plan, doctor and explain say about Instances: the lines each live tunnel's up resolved (from the
/// hook's records), the templates where no tunnel is up, and traffic for a tunnel's own server sent into it.</summary>
public static class LiveInstances
{
    public static IReadOnlyList<TunnelRecord> Records(Context ctx)
    {
        try { return TunnelRecords.ForLock(ctx.Options.LockFile).ReadAll(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
    }

    /// <summary>One line per instance line: resolved for each live tunnel the entry matches, else the template.</summary>
    public static IEnumerable<string> Lines(ParsedPolicy policy, IReadOnlyList<TunnelRecord> records)
    {
        foreach (var spec in policy.Instances)
        {
            // A steady rule is apply's whatever tunnel is up (docs/lifecycle.md): shown once, as apply installs it.
            foreach (var j in spec.Steady.Order())
                yield return $"{spec.Field} (steady, installed by apply): rule {spec.Rules[j].Text} pref {spec.Samples[j].Priority}";
            var live = records.Where(r => spec.Matches(r.Device) && r.Lines.Count > 0).ToList();
            foreach (var r in live)
                foreach (var line in r.Lines) yield return $"{spec.Field} ({r.Device}, up): {line}";
            if (live.Count > 0) continue;
            foreach (var line in spec.Routes) yield return $"{spec.Field} ({spec.Dev}, no tunnel up): route {Written(line)}";
            foreach (var line in spec.Rules.Where((_, j) => !spec.Steady.Contains(j))) yield return $"{spec.Field} ({spec.Dev}, no tunnel up): rule {Written(line)}";
        }
    }

    static string Written(InstanceLine line) => line.Optional ? $"{InstanceLine.OptionalWord} {line.Text}" : line.Text;

    /// <summary>For each live tunnel whose resolved lines send traffic for its own server into it, one sentence
    /// naming OpenVPN's allow-recursive-routing.</summary>
    /// <param name="policy">adds the steady rules of the entry a tunnel matches (apply's, not in the record).</param>
    public static IEnumerable<string> Recursion(Context ctx, IReadOnlyList<TunnelRecord> records, ParsedPolicy? policy)
    {
        foreach (var r in records)
        {
            if (r.Lines.Count == 0 || r.Servers.Count == 0) continue;
            KernelState state;
            try { state = State(ctx, r); }
            catch (InputException) { continue; }
            if (policy is not null && InstanceConfig.Match(policy.Instances, r.Device) is { } spec)
                state = WithSteady(state, spec, policy.Protocol);
            foreach (var finding in RecursiveRouting.Find(r.Device, state, r.Servers, ctx.Names.Tables, ctx.Names.Protocols)) yield return finding;
        }
    }

    /// <summary>A tunnel's objects with its entry's steady rules: what selects traffic into it, whoever installed it.</summary>
    public static KernelState WithSteady(KernelState tunnel, InstanceSpec spec, byte protocol) =>
        new(tunnel.Routes, [.. tunnel.Rules, .. spec.SteadyRules(protocol)]);

    /// <summary>A record's lines as objects again, table names read from the drop-in the hook wrote.</summary>
    public static KernelState State(Context ctx, TunnelRecord r)
    {
        var routes = new List<Route>();
        var rules = new List<Rule>();
        TableResolver tables = n => ctx.Names.Tables.TryGetId(n, out var id) ? id : null;
        foreach (var line in r.Lines)
        {
            if (line.StartsWith("route ", StringComparison.Ordinal))
                routes.Add(PolicyLine.ParseRoute($"record {r.Device}", line[6..], tables, ctx.HookProtocol));
            else
                rules.Add(PolicyLine.ParseRule($"record {r.Device}", line[5..], tables, ctx.HookProtocol, automaticPriority: null));
        }
        return new KernelState(routes, rules);
    }
}
