using TunnelRouter.Core;
using TunnelRouter.Host;

namespace TunnelRouter.Kernel;

/// <summary>Reads one <see cref="KernelSnapshot"/>: every dump once, then what the query names.</summary>
public sealed class SnapshotReader(IKernel kernel, Nftables nft, Sysctls sysctls)
{
    /// <summary>Equivalent to: ip route show table all; ip rule show; ip -d address show; nft list table
    /// inet tunnel_router; and ip route get / ip addr show dev / sysctl -n for what the query names.</summary>
    public KernelSnapshot Read(SnapshotQuery query) => Read(query, kernel.Read(StateQuery.All), kernel.ReadLinks());

    /// <summary>Starts the dumps no policy changes (every route, rule and link) on a thread of their own, for a run
    /// that parses a large policy meanwhile; <see cref="Pending.Finish"/> adds what the query names. Until then
    /// the kernel's socket is the thread's.</summary>
    public Pending Start() => new(this);

    public sealed class Pending
    {
        readonly SnapshotReader _reader;
        readonly Thread _thread;
        KernelState? _state;
        IReadOnlyList<Link>? _links;
        Exception? _failure;

        internal Pending(SnapshotReader reader)
        {
            _reader = reader;
            _thread = new Thread(() =>
            {
                try
                {
                    _state = reader.Kernel.Read(StateQuery.All);
                    _links = reader.Kernel.ReadLinks();
                }
                catch (Exception e) { _failure = e; }
            }, 1 << 20) { IsBackground = true, Name = "kernel dumps" };
            _thread.Start();
        }

        /// <summary>Waits for the dumps, whatever they found: what a run does after a failed parse.</summary>
        public void Wait() => _thread.Join();

        public KernelSnapshot Finish(SnapshotQuery query)
        {
            _thread.Join();
            if (_failure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(_failure);
            return _reader.Read(query, _state!, _links!);
        }
    }

    IKernel Kernel => kernel;

    KernelSnapshot Read(SnapshotQuery query, KernelState state, IReadOnlyList<Link> links)
    {
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
        var installed = Nftables.IsInstalled();
        var table = query.NftRequired || (query.Nft && installed) ? nft.Read() : null;
        var guard = query.Guard && installed ? nft.Read(NftGuard.Name) : null;
        var files = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var path in query.Files ?? []) files[path] = OwnedFile.Read(path);
        return new KernelSnapshot
        {
            State = state, Links = links, Nft = table, Guard = guard, NftInstalled = installed, GlobalAddresses = addresses, RouteDevices = devices, Sysctls = values, Files = files,
        };
    }
}
