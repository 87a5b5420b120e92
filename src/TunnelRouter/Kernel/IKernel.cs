using TunnelRouter.Core;

namespace TunnelRouter.Kernel;

/// <summary>
/// The kernel edge. Two implementations pass the same kernel tests: rtnetlink (default) and iproute2.
/// </summary>
public interface IKernel
{
    string Name { get; }

    /// <summary>Routes of the tables the query names (every owner's) and every rule.</summary>
    KernelState Read(StateQuery query);

    /// <summary>Applies the changes in order. On failure throws <see cref="ChangeFailedException"/>
    /// saying how many had taken effect; the caller rolls those back.</summary>
    void Apply(IReadOnlyList<Change> changes);

    bool LinkExists(string name);

    /// <summary>The global-scope addresses of <paramref name="device"/> (both families, in the kernel's
    /// order, primary first); empty when the device does not exist. Uplinks read their address and prefix
    /// here when the policy leaves them out. Equivalent to: ip -j addr show dev eth0 scope global</summary>
    IReadOnlyList<InterfaceAddress> ReadAddresses(string device);

    // Links, for GRE tunnels. The netlink backend implements the same two methods (RTM_GETLINK dump with
    // IFLA_LINKINFO/IFLA_INFO_DATA and IFLA_IFALIAS, RTM_GETADDR dump, RTM_GETROUTE for one address).

    /// <summary>Every link of this namespace with its MTU, up flag, alias, addresses and, for GRE kinds,
    /// its tunnel parameters (<see cref="Link.Gre"/>; other kinds leave it null).
    /// Equivalent to: ip -j -d address show</summary>
    IReadOnlyList<Link> ReadLinks();

    /// <summary>The device the kernel would send a packet to <paramref name="destination"/> out of, or null
    /// when it has no route there. Equivalent to: ip -j route get ADDRESS</summary>
    string? RouteDevice(System.Net.IPAddress destination);
}
