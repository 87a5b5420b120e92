using System.Net;
using System.Net.Sockets;

namespace TunnelRouter.Core;

/// <summary>An address on an interface: the address itself with its prefix length (host bits kept,
/// unlike a route's masked destination).</summary>
public sealed record InterfaceAddress(IPAddress Address, int PrefixLength)
{
    public AddressFamily Family => Address.AddressFamily;
    public IPNetwork Network => Net.Masked(Address, PrefixLength);

    /// <summary>fe80::/10: the kernel gives every IPv6-capable link one of its own; never ours to remove.</summary>
    public bool IsLinkLocal => Address.IsIPv6LinkLocal;

    public static InterfaceAddress Parse(string field, string? text)
    {
        if (string.IsNullOrEmpty(text)) throw new InputException(field, "is empty; expected an address with prefix length, e.g. 10.255.0.1/30");
        var slash = text.IndexOf('/');
        var address = Net.ParseAddress(field, slash < 0 ? text : text[..slash]);
        var prefix = slash < 0 ? Net.MaxPrefix(address.AddressFamily) : Net.ParsePrefixLength(field, text[(slash + 1)..], address.AddressFamily);
        return new InterfaceAddress(address, prefix);
    }

    public override string ToString() => $"{Address}/{PrefixLength}";
}
