using Serilog;
using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Host;
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
    /// <summary>iproute2's names, read again under the host lock (<see cref="Lock"/>): what another run named
    /// meanwhile is seen, and a name is never given an id twice.</summary>
    public required Iproute2Files Names { get; set; }

    /// <summary>The policy file read, or null when there was none (errors then name "configuration").</summary>
    public string? ConfigPath { get; init; }

    /// <summary>The policy file's text as it loaded (null without one, or when the last good policy stands in for it):
    /// what a successful apply, up or watch keeps as the last good policy.</summary>
    public string? ConfigText { get; init; }

    /// <summary>Keeps the policy as the last good one (<see cref="LastGoodPolicy"/>) after a successful run; a copy that
    /// cannot be written is a warning, never a failure of the run.</summary>
    /// <param name="text">the policy's text, when it is not the one this run loaded (watch's reload).</param>
    public void KeepAsLastGood(string? text = null)
    {
        if ((text ?? ConfigText) is not { } kept || Args.DryRun) return;
        try { LastGoodPolicy.ForLock(Options.LockFile).Save(kept); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or TunnelRouterException)
        {
            Log.Warning("tunnel-router: warning: cannot keep the last good policy: {Message}", e.Message);
        }
    }

    IKernel? _kernel;
    public IKernel Kernel => _kernel ??= KernelFactory();

    public byte Protocol => Names.ResolveProtocol(Options.FieldOf("Protocol"), Options.Protocol, "tunnel-router");
    public byte HookProtocol => Options.HookProtocol == Options.Protocol
        ? throw new InputException(Options.FieldOf("HookProtocol"), $"{Options.HookProtocol} is also Protocol; the hook and apply need numbers of their own, or each would delete the other's routes and rules")
        : Names.ResolveProtocol(Options.FieldOf("HookProtocol"), Options.HookProtocol, "tunnel-router-hook");

    public Ownership Owned => Ownership.ByProtocol(Protocol, HookProtocol);

    public Nftables Nft { get; init; } = new();
    public Sysctls Sysctls { get; init; } = new();

    /// <summary>One snapshot of the kernel for this run (under the lock, for commands that change it).</summary>
    /// <param name="early">the dumps started by <see cref="StartSnapshot"/>, when they were.</param>
    public KernelSnapshot ReadSnapshot(SnapshotQuery query, SnapshotReader.Pending? early = null)
    {
        var snapshot = early?.Finish(query) ?? new SnapshotReader(Kernel, Nft, Sysctls).Read(query);
        StartupTrace.Mark("kernel read");
        return snapshot;
    }

    /// <summary>For a policy of a thousand lines or more: the kernel's dumps started now, to run on a second core
    /// while the lines are parsed (at 100,000 lines, ~70 ms of dumps beside ~140 ms of parsing; a no-op apply
    /// 286 → 230 ms). Null otherwise: a small policy reads after parsing as before, and so does one with prefix
    /// files — a million prefixes parsed while a million routes are dumped made the no-op's peak RSS 20–25 MB
    /// higher (164 → 184–189 MB) for no time measurably gained.</summary>
    public SnapshotReader.Pending? StartSnapshot() =>
        Options.Routes.Count + Options.Rules.Count >= 1000 && Options.PrefixLists.Count == 0 ? new SnapshotReader(Kernel, Nft, Sysctls).Start() : null;

    /// <summary>The hook's records of the live tunnels, next to the lock.</summary>
    public TunnelRecords Records => TunnelRecords.ForLock(Options.LockFile);

    /// <summary>Appliers of non-rtnetlink changes (nftables, sysctls).</summary>
    public List<IChangeHandler> Handlers { get; } = [];

    public ChangeApplier Applier() => new(Kernel, Log, Names.Tables, Names.Protocols, Handlers);

    /// <summary>Takes the host-wide lock; a dry run only reads, and needs none.</summary>
    public IDisposable Lock()
    {
        if (Args.DryRun) return NoLock.Instance;
        Capabilities.RequireNetAdmin();
        var hostLock = HostLock.Acquire(Options.LockFile, TimeSpan.FromSeconds(Options.LockTimeoutSeconds));
        try
        {
            // Two hooks naming vpnA and vpnB with the same default id must not both take it: names are resolved
            // from what the files say now, with nobody else writing them.
            Names = Iproute2Files.Load(Options.Iproute2Dir);
            _ = (Protocol, HookProtocol);
        }
        catch
        {
            hostLock.Dispose();
            throw;
        }
        return hostLock;
    }

    /// <summary>Writes names the host lacked to the drop-ins (unless this is a dry run), before the kernel
    /// changes that use them; returns what undoes the write, for a run whose kernel changes fail.</summary>
    public Action CommitNames() =>
        !Args.DryRun && Names.HasPendingNames ? Names.WriteDropIns() : () => { };

    /// <summary>Names first, then the kernel: a name file that cannot be written (a read-only /etc/iproute2,
    /// ENOSPC) fails the run before the kernel changed; kernel changes that fail take the names back.</summary>
    public void ApplyWithNames(IReadOnlyList<Change> plan, bool writeNames = true)
    {
        var undoNames = writeNames ? CommitNames() : () => { };
        try { Applier().Apply(plan, Args.DryRun); }
        catch
        {
            undoNames();
            throw;
        }
    }

    /// <summary>Waits until the routing daemon runs OSPF on every interface (<see cref="SettleOspf"/>), after the
    /// change it follows took effect; throws one line naming each one it never took, and takes nothing back.</summary>
    public void Settle(SettleOspf settle)
    {
        Log.Information("[#] {Command}", settle.Display(Names.Tables, Names.Protocols));
        if (Args.DryRun) return;
        foreach (var h in Handlers)
            if (h.Handles(settle))
            {
                h.Apply(settle);
                return;
            }
    }

    sealed class NoLock : IDisposable
    {
        public static readonly NoLock Instance = new();
        public void Dispose() { }
    }
}
