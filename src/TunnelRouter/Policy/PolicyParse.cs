namespace TunnelRouter.Policy;

/// <summary>
/// The policy as far as it parses, and every mistake in it: the one policy value of every command. apply, plan and the
/// hook take only a valid one (<see cref="Valid"/>); status, doctor and explain read what parsed of a broken one (a
/// section or entry with a mistake is left out of <see cref="Policy"/>, the rest is there), so none of them goes back
/// to the raw options.
/// </summary>
public sealed record PolicyParse(ParsedPolicy Policy, IReadOnlyList<InputException> Errors)
{
    /// <summary>The mistakes of the Marks section: its rules are then not the policy's (status and explain say so).</summary>
    public IReadOnlyList<InputException> MarksErrors { get; init; } = [];

    public bool IsValid => Errors.Count == 0;

    /// <summary>Whether the policy lists Marks, valid or not (each entry either parsed or is a mistake).</summary>
    public bool UsesMarks => Policy.MarkRules.Count + MarksErrors.Count > 0;

    /// <summary>The policy; throws its mistakes (one as itself, several together) when it has any.</summary>
    public ParsedPolicy Valid()
    {
        InputErrors.ThrowIfAny(Errors);
        return Policy;
    }
}
