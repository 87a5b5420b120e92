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
}
