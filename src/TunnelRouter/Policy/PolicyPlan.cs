using TunnelRouter.Core;

namespace TunnelRouter.Policy;

/// <summary>How a plan was worked out. <paramref name="Stated"/>: worth saying when a person reads the plan
/// (a computed MTU); otherwise only for -v.
/// <paramref name="Always"/>: said on every run (what --adopt took over).</summary>
public sealed record PlanNote(string Text, bool Stated, bool Always = false);

/// <summary>Objects of the policy whose device does not exist yet (a tun device OpenVPN creates later, an uplink
/// still waiting for its address): not an error; they go in when the device appears.</summary>
public sealed record Waiting(string Device, int Routes, int Uplinks)
{
    public override string ToString()
    {
        var parts = new List<string>();
        if (Routes > 0) parts.Add(Routes == 1 ? "1 route" : $"{Routes} routes");
        if (Uplinks > 0) parts.Add(Uplinks == 1 ? "1 uplink" : $"{Uplinks} uplinks");
        return $"waiting for {Device}: {string.Join(", ", parts)}";
    }
}

/// <summary>Ordered changes, and notes on how they were worked out. <see cref="Waiting"/>: what waits for a
/// device; <see cref="Forgotten"/>: devices whose tunnel records are done with (the device went without a down,
/// or flush --all); <see cref="FailClosed"/>: the changes that close the fail-closed tables — their kill switches and
/// the policy's rules into them (docs/lifecycle.md) — applied first and on their own, so that no failure of the rest
/// ever takes them back.</summary>
public sealed record PolicyPlan(IReadOnlyList<Change> Changes, IReadOnlyList<PlanNote> Notes)
{
    public IReadOnlyList<Waiting> Waiting { get; init; } = [];
    public IReadOnlyList<string> Forgotten { get; init; } = [];
    public IReadOnlyList<Change> FailClosed { get; init; } = [];

    /// <summary>The fail-closed guard's table (<see cref="NftGuard"/>) replaced, added or removed; right after the kill
    /// switches, on its own: a kernel or host without nftables keeps the kill switches and the rest.</summary>
    public Change? Guard { get; init; }

    /// <summary>The routes left out because the kernel would refuse them (a gateway gone with its link), named; the caller
    /// applies the rest first and then fails with this. Null when none was.</summary>
    public EnvironmentException? Refused { get; init; }

    /// <summary>Live tunnels' records that now follow the policy (invariant 8): written again once the plan is applied.</summary>
    public IReadOnlyList<TunnelRecord> Followed { get; init; } = [];

    /// <summary>Live tunnels that cannot follow the policy until they reconnect, with why (doctor names them).</summary>
    public IReadOnlyList<string> NeedRestart { get; init; } = [];

    /// <summary>Everything but the kill switches and the guard.</summary>
    public IReadOnlyList<Change> Rest
    {
        get
        {
            var head = FailClosed.Count + (Guard is null ? 0 : 1);
            if (head == 0) return Changes;
            // The plan puts them first: what follows is cut, not copied (it may be a million routes made as they are read).
            return head <= Changes.Count && Enumerable.Range(0, FailClosed.Count).All(i => ReferenceEquals(Changes[i], FailClosed[i]))
                   && (Guard is null || ReferenceEquals(Changes[FailClosed.Count], Guard))
                ? ChangeList.Slice(Changes, head, Changes.Count - head)
                : Changes.Where(c => !FailClosed.Contains(c) && !ReferenceEquals(c, Guard)).ToList();
        }
    }
}
