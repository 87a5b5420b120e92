namespace TunnelRouter.Policy;

/// <summary>One of the policy's sysctls against the kernel: <see cref="Have"/> is null when this kernel or network
/// namespace has no such setting; <see cref="InPlace"/> when the values are the same (as the kernel prints them).</summary>
public sealed record SysctlState(string Key, string Want, string? Have, bool InPlace);
