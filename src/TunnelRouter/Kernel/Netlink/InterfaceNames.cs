using TunnelRouter.Interop;

namespace TunnelRouter.Kernel.Netlink;

/// <summary>if_indextoname, once per index per read: a dump of 10,000 routes names a handful of devices.</summary>
internal sealed class InterfaceNames
{
    readonly Dictionary<uint, string?> _known = [];

    public string? Of(uint index)
    {
        if (!_known.TryGetValue(index, out var name)) _known[index] = name = Libc.InterfaceName(index);
        return name;
    }
}
