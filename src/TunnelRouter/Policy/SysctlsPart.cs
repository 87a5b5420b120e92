using System.Text.Json;
using TunnelRouter.Core;
using TunnelRouter.Kernel;

namespace TunnelRouter.Cli;

/// <summary>
/// The policy's <c>Sysctls</c>: set when they differ, shown by plan as "sysctl -w key=value". They are not
/// owned objects: flush leaves them as they are, because they are host settings an admin asked for
/// (turning ip_forward off on flush would cut a router off its clients, and the value before TunnelRouter
/// first set it is not known after a reboot). Apply does roll them back if the same apply fails.
/// </summary>
public sealed class SysctlsPart(Sysctls? sysctls = null) : IPolicyPart
{
    readonly Sysctls _sysctls = sysctls ?? new Sysctls();

    public string Name => "sysctls";

    public void Validate(Context ctx) => Sysctl.Parse(ctx.Options.Sysctls);

    public IReadOnlyList<Change> Plan(Context ctx)
    {
        var changes = new List<Change>();
        foreach (var (key, value) in Sysctl.Parse(ctx.Options.Sysctls))
        {
            var current = _sysctls.Read(key)
                ?? throw new InputException($"Sysctls.{key}", "no such setting in this kernel or network namespace (is the interface present, the module loaded?)");
            if (!Sysctl.SameValue(current, value)) changes.Add(new SetSysctl(key, current, value));
        }
        return changes;
    }

    public IReadOnlyList<Change> Flush(Context ctx) => [];

    public void Status(Context ctx, TextWriter o)
    {
        var rows = Rows(ctx);
        if (rows.Count == 0) return;
        o.WriteLine("sysctls (set by the policy, left as they are by flush):");
        foreach (var (key, want, have) in rows)
            o.WriteLine(have is not null && Sysctl.SameValue(have, want) ? $"  {key} = {Sysctl.Normalize(have)}"
                : $"  {key} = {(have is null ? "(absent)" : Sysctl.Normalize(have))} (policy: {want}; run apply)");
    }

    public void WriteJson(Context ctx, Utf8JsonWriter json)
    {
        json.WriteStartArray("sysctls");
        foreach (var (key, want, have) in Rows(ctx))
        {
            json.WriteStartObject();
            json.WriteString("key", key);
            json.WriteString("policy", want);
            if (have is null) json.WriteNull("value"); else json.WriteString("value", Sysctl.Normalize(have));
            json.WriteBoolean("asInPolicy", have is not null && Sysctl.SameValue(have, want));
            json.WriteEndObject();
        }
        json.WriteEndArray();
    }

    /// <summary>Valid policy entries with their current values; status skips invalid keys rather than
    /// reading whatever path they spell.</summary>
    List<(string Key, string Want, string? Have)> Rows(Context ctx)
    {
        var rows = new List<(string, string, string?)>();
        foreach (var (key, value) in ctx.Options.Sysctls)
        {
            try
            {
                Sysctl.ValidateKey("Sysctls", key);
                rows.Add((key, Sysctl.ValidateValue("Sysctls", value), _sysctls.Read(key)));
            }
            catch (InputException) { }
        }
        return rows;
    }
}
