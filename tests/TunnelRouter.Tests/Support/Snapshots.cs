using TunnelRouter.Core;

namespace TunnelRouter.Tests.Support;

/// <summary>Plain data for kernel snapshots that specs build by hand.</summary>
public static class Snapshots
{
    /// <summary>Links of those names, up, without addresses.</summary>
    public static IReadOnlyList<Link> Links(params string[] names) =>
        [.. names.Select((n, i) => new Link(n, i + 2, null, 1500, true, null, null, []))];

    /// <summary>A link with addresses: a live tunnel's device.</summary>
    public static Link Link(string name, params InterfaceAddress[] addresses) => new(name, 10, "tun", 1500, true, null, null, addresses);
}
