using System.Net;
using System.Net.Sockets;

namespace TunnelRouter.Core;

/// <summary>Where a mark rule hooks in, as iptables' mangle chains.</summary>
public enum MarkChain
{
    /// <summary>Packets this host sends: marked before their route is final (nft "type route").</summary>
    Output,

    /// <summary>Packets arriving on any interface, forwarded or for this host, before routing.</summary>
    Prerouting,
}

/// <summary>An address match: "ip saddr 5.5.5.2", or negated "ip daddr != 192.168.192.0/24".</summary>
public sealed record AddressMatch(IPNetwork Network, bool Negated)
{
    public AddressFamily Family => Network.Family();

    public override string ToString() => (Negated ? "!" : "") + NftText(Network);

    /// <summary>A host as a bare address (as iptables -s and nft list print it), else the prefix.</summary>
    public static string NftText(IPNetwork n) =>
        n.PrefixLength == Net.MaxPrefix(n.Family()) ? n.BaseAddress.ToString() : Net.Format(n);
}

/// <summary>
/// One normalised mark rule: iptables <c>-t mangle -A CHAIN [matches] -j MARK --set-mark MARK[/MASK]</c>.
/// Ports are kept as their normalised text ("80,443,1000-2000") so that the record has value equality.
/// <see cref="Family"/> is null when the rule matches both IPv4 and IPv6.
/// </summary>
public sealed record MarkRule(
    MarkChain Chain,
    uint Mark,
    uint Mask = uint.MaxValue,
    AddressFamily? Family = null,
    AddressMatch? Source = null,
    AddressMatch? Destination = null,
    byte? Protocol = null,
    string? SourcePorts = null,
    string? DestinationPorts = null,
    string? InputInterface = null,
    string? OutputInterface = null)
{
    /// <summary>Sets the bits of <see cref="Mask"/> to zero, as iptables' MARK --set-mark 0x00.</summary>
    public bool Clears => Mark == 0;
}
