using Serilog;
using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Kernel;

namespace TunnelRouter.Cli;

/// <summary>Everything a command needs, built once by <see cref="App"/>: inputs passed in, never read
/// from the process by the commands themselves.</summary>
public sealed class Context
{
    public required CliArgs Args { get; init; }
    public required IReadOnlyDictionary<string, string> Environment { get; init; }
    public required TunnelRouterOptions Options { get; init; }
    public required ILogger Log { get; init; }
    public required TextWriter Out { get; init; }
    public required Func<IKernel> KernelFactory { get; init; }
    public required Iproute2Files Names { get; init; }

    /// <summary>The policy file read, or null when there was none (errors then name "configuration").</summary>
    public string? ConfigPath { get; init; }

    IKernel? _kernel;
    public IKernel Kernel => _kernel ??= KernelFactory();

    public byte Protocol => Names.ResolveProtocol("Protocol", Options.Protocol, "tunnel-router");
    public byte HookProtocol => Names.ResolveProtocol("HookProtocol", Options.HookProtocol, "tunnel-router-hook");

    public Ownership Owned => Ownership.ByProtocol(Protocol, HookProtocol);

    public Nftables Nft { get; init; } = new();
    public Sysctls Sysctls { get; init; } = new();

    /// <summary>One snapshot of the kernel for this run (under the lock, for commands that change it).</summary>
    public KernelSnapshot ReadSnapshot(SnapshotQuery query)
    {
        var snapshot = new SnapshotReader(Kernel, Nft, Sysctls).Read(query);
        StartupTrace.Mark("kernel read");
        return snapshot;
    }

    /// <summary>Appliers of non-rtnetlink changes (nftables, sysctls).</summary>
    public List<IChangeHandler> Handlers { get; } = [];

    public ChangeApplier Applier() => new(Kernel, Log, Names.Tables, Names.Protocols, Handlers);

    /// <summary>Takes the host-wide lock; a dry run only reads, and needs none.</summary>
    public IDisposable Lock()
    {
        if (Args.DryRun) return NoLock.Instance;
        Capabilities.RequireNetAdmin();
        return HostLock.Acquire(Options.LockFile, TimeSpan.FromSeconds(Options.LockTimeoutSeconds));
    }

    /// <summary>Writes names the host lacked to the drop-ins, unless this is a dry run.</summary>
    public void CommitNames()
    {
        if (!Args.DryRun && Names.HasPendingNames) Names.WriteDropIns();
    }

    sealed class NoLock : IDisposable
    {
        public static readonly NoLock Instance = new();
        public void Dispose() { }
    }
}
