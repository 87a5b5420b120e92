using TunnelRouter.Core;

namespace TunnelRouter.Kernel;

/// <summary>
/// TEST ONLY, and only in the test flavour (built with FaultInjection=true, which defines FAULT_INJECTION;
/// install.sh --fault-injection, test.sh). In any other build <see cref="Wrap"/> returns the kernel as is and the
/// variable has no effect. A failure injected after the first k kernel changes of a run, so that tests can prove a
/// failure at every step of a multi-step apply leaves the kernel as it was; with "K:stop" the process stops itself
/// (SIGSTOP) after the first k changes instead, so that a test's SIGKILL lands exactly there, mid-change, however
/// loaded the machine is. A named point instead of a number ("guard:stop", "records:stop") stops or fails apply at
/// that step of <see cref="Cli.Commands"/> (<see cref="Reached"/>), where no kernel change is counted. Enabled only by the
/// environment variable <see cref="Variable"/> (read once, at the edge, in <see cref="Cli.App"/>); without
/// it the kernel is used as is and this type costs nothing. It is not a configuration key and is not
/// documented for admins: it exists so the rollback path is tested against a real kernel.
/// </summary>
public sealed class FaultPoint(IKernel inner, int after, bool stop = false, string? point = null) : IKernel
{
    public const string Variable = "TUNNEL_ROUTER_FAULT_AFTER";

    /// <summary>The named points: just before apply loads the fail-closed guard, and just before it writes the live
    /// tunnels' records (after every kernel change).</summary>
    public static readonly string[] Points = ["guard", "records"];

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
        if (Array.IndexOf(Points, stop ? text[..^5] : text) is var named and >= 0) return new FaultPoint(kernel, int.MaxValue, stop, Points[named]);
        if (!int.TryParse(stop ? text[..^5] : text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var k))
            throw new InputException(Variable, $"'{Net.Printable(text)}' is not a number of changes or one of {string.Join(", ", Points)}");
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

    /// <summary>Apply has come to the named <paramref name="name"/>: stops or fails there when that is the chosen point. The
    /// call itself is compiled only into the test flavour.</summary>
    [System.Diagnostics.Conditional("FAULT_INJECTION")]
    public static void Reached(IKernel kernel, string name) => (kernel as FaultPoint)?.At(name);

    void At(string name)
    {
        if (_fired || point != name) return;
        _fired = true;
        if (stop) Interop.Libc.kill(Interop.Libc.getpid(), Interop.Libc.SIGSTOP);
        else throw new KernelException($"injected fault ({Variable}) at {name}") { Errno = 5 };
    }

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
