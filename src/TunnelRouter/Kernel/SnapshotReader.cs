using TunnelRouter.Core;

namespace TunnelRouter.Kernel;

/// <summary>Reads one <see cref="KernelSnapshot"/>: every dump once, then what the query names.</summary>
public sealed class SnapshotReader(IKernel kernel, Nftables nft, Sysctls sysctls)
{
    /// <summary>Equivalent to: ip route show table all; ip rule show; ip -d address show; nft list table
    /// inet tunnel_router; and ip route get / ip addr show dev / sysctl -n for what the query names.</summary>
    public KernelSnapshot Read(SnapshotQuery query)
    {
        var state = kernel.Read(StateQuery.All);
        var links = kernel.ReadLinks();
        var addresses = new Dictionary<string, IReadOnlyList<InterfaceAddress>>(StringComparer.Ordinal);
        foreach (var device in query.AddressesOf ?? [])
            addresses.TryAdd(device, kernel.ReadAddresses(device));
        var devices = new Dictionary<System.Net.IPAddress, string?>();
        foreach (var address in query.RouteGets ?? [])
            devices.TryAdd(address, kernel.RouteDevice(address));
        var values = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var key in query.Sysctls ?? [])
            values.TryAdd(key, sysctls.Read(key));
        // Without nft no table of ours can be there. With marks wanted, Read() reports the missing nft
        // ("nft not found ...; apt-get install nftables") before anything changes.
        var table = query.NftRequired || (query.Nft && Nftables.IsInstalled()) ? nft.Read() : null;
        var files = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var path in query.Files ?? []) files[path] = OwnedFile.Read(path);
        return new KernelSnapshot
        {
            State = state, Links = links, Nft = table, GlobalAddresses = addresses, RouteDevices = devices, Sysctls = values, Files = files,
        };
    }
}
