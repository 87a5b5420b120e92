namespace TunnelRouter.Core;

/// <summary>TunnelRouter's nftables table as the kernel holds it: nft's listing (a definition nft can load
/// again, which is what a rollback does) and the fingerprint from its comment (null when not ours).</summary>
public sealed record NftTableState(string Definition, string? Fingerprint);
