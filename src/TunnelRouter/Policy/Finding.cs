namespace TunnelRouter.Policy;

public enum FindingLevel { Ok, Note, Problem }

/// <summary>One line of the doctor's checklist, with what to do about it.</summary>
public sealed record Finding(string Check, FindingLevel Level, string Message, string? Fix = null);
