using TunnelRouter.Core;

namespace TunnelRouter.Kernel;

/// <summary>Applies changes that are not rtnetlink objects (an nftables table, a sysctl). Registered in
/// <see cref="Cli.Context.Handlers"/>; the applier hands each such change to the handler that claims it,
/// with the same rollback as everything else.</summary>
public interface IChangeHandler
{
    bool Handles(Change change);

    /// <summary>Throws <see cref="KernelException"/> on failure.</summary>
    void Apply(Change change);
}
