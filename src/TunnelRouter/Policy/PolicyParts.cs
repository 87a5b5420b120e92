using TunnelRouter.Core;

namespace TunnelRouter.Cli;

/// <summary>
/// One part of the policy that <c>apply</c>, <c>plan</c>, <c>status</c> and <c>flush</c> reconcile: routes and
/// rules, nftables marks, sysctls, GRE tunnels. Each part plans against what it reads from the kernel and
/// owns only its own objects; the commands concatenate the parts' plans (in <see cref="All"/> order) and
/// apply them as one all-or-nothing change.
/// </summary>
public interface IPolicyPart
{
    string Name { get; }

    /// <summary>Validates this part of the policy; throws <see cref="InputException"/> naming file, key and
    /// value. Called for every part before any part reads or plans, so nothing changes on a bad policy.</summary>
    void Validate(Context ctx);

    /// <summary>Changes that make the kernel match the policy (apply, plan).</summary>
    IReadOnlyList<Change> Plan(Context ctx);

    /// <summary>Changes that remove everything this part owns (flush).</summary>
    IReadOnlyList<Change> Flush(Context ctx);

    /// <summary>What this part owns now, for people; nothing written when it owns nothing.</summary>
    void Status(Context ctx, TextWriter output);

    /// <summary>The same for <c>status --json</c>: this part's properties of the top-level object.</summary>
    void WriteJson(Context ctx, System.Text.Json.Utf8JsonWriter json);
}

public static class PolicyParts
{
    /// <summary>In apply order: links before the addresses and routes that use them, marks and sysctls last.</summary>
    public static IReadOnlyList<IPolicyPart> All(Context ctx) =>
    [
        new TunnelsPart(),
        new RoutingPart(),
        new MarksPart(),
        new SysctlsPart(),
    ];
}

/// <summary>Routes and rules: apply and plan reconcile the policy's Rules, Routes and Uplinks (protocol 147,
/// see <see cref="PolicyRouting"/>); flush and status cover everything tunnel-router owns, the hook's too.</summary>
public sealed class RoutingPart : IPolicyPart
{
    PolicyRouting? _policy;

    public string Name => "routing";

    public void Validate(Context ctx) => _policy = PolicyRouting.Validate(ctx);

    public IReadOnlyList<Change> Plan(Context ctx) => (_policy ??= PolicyRouting.Validate(ctx)).Plan(ctx);

    public IReadOnlyList<Change> Flush(Context ctx) => Planner.Remove(ctx.Kernel.Read(StateQuery.All), ctx.Owned);

    public void Status(Context ctx, TextWriter o) => StatusCommand.WriteRouting(ctx, o);

    public void WriteJson(Context ctx, System.Text.Json.Utf8JsonWriter json) => StatusCommand.WriteRoutingJson(ctx, json);
}
