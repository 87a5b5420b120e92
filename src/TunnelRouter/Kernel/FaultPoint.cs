using TunnelRouter.Core;

namespace TunnelRouter.Kernel;

/// <summary>
/// TEST ONLY, and only in the test flavour (built with FaultInjection=true, which defines FAULT_INJECTION;
/// install.sh --fault-injection, test.sh). In any other build <see cref="Wrap"/> returns the kernel as is and the
/// variable has no effect. A failure injected after the first k kernel changes of a run, so that tests can prove a
/// failure at every step of a multi-step apply leaves the kernel as it was; with "K:stop" the process stops itself
/// (SIGSTOP) after the first k changes instead, so that a test's SIGKILL lands exactly there, mid-change, however
/// loaded the machine is. Enabled only by the
/// environment variable <see cref="Variable"/> (read once, at the edge, in <see cref="Cli.App"/>); without
/// it the kernel is used as is and this type costs nothing. It is not a configuration key and is not
/// documented for admins: it exists so the rollback path is tested against a real kernel.
/// </summary>
public sealed class FaultPoint(IKernel inner, int after, bool stop = false) : IKernel
{
    public const string Variable = "TUNNEL_ROUTER_FAULT_AFTER";

    int _remaining = after;
    bool _fired;

    /// <summary>The kernel itself, or the kernel wrapped in a fault point when the variable is set.</summary>
    public static IKernel Wrap(IKernel kernel, IReadOnlyDictionary<string, string> env)
    {
#if !FAULT_INJECTION
        return kernel;
#else
        if (!env.TryGetValue(Variable, out var text)) return kernel;
        var stop = text.EndsWith(":stop", StringComparison.Ordinal);
        if (!int.TryParse(stop ? text[..^5] : text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var k))
            throw new InputException(Variable, $"'{Net.Printable(text)}' is not a number of changes");
        return new FaultPoint(kernel, k, stop);
#endif
    }

    /// <summary>Whether this build has the fault point at all.</summary>
    public static bool Compiled =>
#if FAULT_INJECTION
        true;
#else
        false;
#endif

    public string Name => inner.Name;

    public KernelState Read(StateQuery query) => inner.Read(query);

    public bool LinkExists(string name) => inner.LinkExists(name);

    public IReadOnlyList<InterfaceAddress> ReadAddresses(string device) => inner.ReadAddresses(device);

    public IReadOnlyList<Link> ReadLinks() => inner.ReadLinks();

    public string? RouteDevice(System.Net.IPAddress destination) => inner.RouteDevice(destination);

    /// <summary>Fires once: the rollback that follows runs against the real kernel, unhindered.</summary>
    public void Apply(IReadOnlyList<Change> changes)
    {
        if (_fired || changes.Count <= _remaining)
        {
            inner.Apply(changes);
            if (!_fired) _remaining -= changes.Count;
            return;
        }
        var before = _remaining;
        if (before > 0) inner.Apply(changes.Take(before).ToList());
        _fired = true;
        if (stop)
        {
            // Stopped here until a SIGKILL (the test's) or a SIGCONT, after which the rest goes in as usual.
            Interop.Libc.kill(Interop.Libc.getpid(), Interop.Libc.SIGSTOP);
            inner.Apply(changes.Skip(before).ToList());
            return;
        }
        // EIO: not transient (no retry) and not "already so", so the applier must roll back.
        throw new ChangeFailedException($"injected fault ({Variable})", before, changes[before],
            new KernelException("injected fault") { Errno = 5 }) { Errno = 5, NotSent = changes.Count - before - 1 };
    }
}
