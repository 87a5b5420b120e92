namespace TunnelRouter.Core;

/// <summary>A network interface as read from the kernel, with what the tunnel planner compares.</summary>
public sealed record Link(string Name, int Index, string? Kind, uint Mtu, bool Up, string? Alias,
    GreTunnel? Gre, IReadOnlyList<InterfaceAddress> Addresses);
