namespace TunnelRouter.Core;

/// <summary>What was read from the kernel: the routes of the tables asked for (every owner's, so that a
/// foreign route in the way is seen) and every rule.</summary>
public sealed record KernelState(IReadOnlyList<Route> Routes, IReadOnlyList<Rule> Rules)
{
    /// <summary>Nexthop objects (every owner's): the groups weighted Failover lines balance over.</summary>
    public IReadOnlyList<Nexthop> Nexthops { get; init; } = [];

    public static readonly KernelState Empty = new([], []);
}

/// <summary>What a read covers. Tables null means every table.</summary>
public sealed record StateQuery(IReadOnlySet<uint>? Tables, bool Rules = true, string? Device = null)
{
    public static readonly StateQuery All = new((IReadOnlySet<uint>?)null);
}
