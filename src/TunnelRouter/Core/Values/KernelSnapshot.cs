using System.Net;

namespace TunnelRouter.Core;

/// <summary>
/// Everything a plan compares the policy against, read once per run under the host lock: the routes of
/// every table and every rule (any owner's, so a foreign object in the way is seen), every link with its
/// addresses, TunnelRouter's nftables table, and the few answers the policy asks for by name (the global
/// addresses of uplinks, the device towards each tunnel's remote, the sysctls it sets). Plain data: specs
/// build one by hand.
/// </summary>
public sealed record KernelSnapshot
{
    public KernelState State { get; init; } = KernelState.Empty;
    public IReadOnlyList<Link> Links { get; init; } = [];

    /// <summary>inet tunnel_router as nft lists it; null when absent (or nft is not installed).</summary>
    public NftTableState? Nft { get; init; }

    /// <summary>inet tunnel_router_guard, the fail-closed guard, as nft lists it; null when absent (or nft is not installed).</summary>
    public NftTableState? Guard { get; init; }

    /// <summary>Whether nft is installed: without it there is no guard to read or load.</summary>
    public bool NftInstalled { get; init; } = true;

    /// <summary>Global-scope addresses by device, primary first (ip addr show dev D scope global).</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<InterfaceAddress>> GlobalAddresses { get; init; } =
        new Dictionary<string, IReadOnlyList<InterfaceAddress>>();

    /// <summary>The device the kernel routes each address out of (ip route get A); null for no route.</summary>
    public IReadOnlyDictionary<IPAddress, string?> RouteDevices { get; init; } = new Dictionary<IPAddress, string?>();

    /// <summary>Current sysctl values by key; null for a setting this kernel lacks.</summary>
    public IReadOnlyDictionary<string, string?> Sysctls { get; init; } = new Dictionary<string, string?>();

    /// <summary>The text of the files tunnel-router owns outside the kernel (a routing daemon's
    /// configuration), by path; null for a file that does not exist.</summary>
    public IReadOnlyDictionary<string, string?> Files { get; init; } = new Dictionary<string, string?>();

    /// <summary>The uplinks' health as watch tracks it (<see cref="UplinkHealth"/>); empty outside watch: a path it does
    /// not name is up while its device is up.</summary>
    public IReadOnlyDictionary<UplinkPath, PathState> UplinkStates { get; init; } = new Dictionary<UplinkPath, PathState>();

    public static readonly KernelSnapshot Empty = new();
}

/// <summary>What a snapshot reads beyond routes, rules and links.</summary>
/// <param name="Nft">read our nftables table (when nft is installed, or whenever <paramref name="NftRequired"/>).</param>
public sealed record SnapshotQuery(
    bool Nft = true,
    bool NftRequired = false,
    bool Guard = true,
    IReadOnlyList<string>? AddressesOf = null,
    IReadOnlyList<IPAddress>? RouteGets = null,
    IReadOnlyList<string>? Sysctls = null,
    IReadOnlyList<string>? Files = null)
{
    public static readonly SnapshotQuery Everything = new();
}
