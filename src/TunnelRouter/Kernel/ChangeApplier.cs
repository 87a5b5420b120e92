using Polly;
using Polly.Retry;
using Serilog;
using TunnelRouter.Core;

namespace TunnelRouter.Kernel;

/// <summary>
/// Runs a plan against the kernel the wg-quick way: every change is printed as "[#] ip ..." first; a
/// failure rolls back, in reverse order, every change that took effect, and is then reported. EEXIST on an
/// add and ESRCH/ENOENT on a delete mean "already so" and count as done (but are not rolled back, since
/// they were not ours to undo). Only genuinely transient errors (EBUSY, EAGAIN, ENOBUFS, EINTR) are retried.
/// </summary>
public sealed class ChangeApplier(IKernel kernel, ILogger log, TableNames tables, ProtocolNames protocols,
    IReadOnlyList<IChangeHandler>? handlers = null)
{
    readonly IReadOnlyList<IChangeHandler> _handlers = handlers ?? [];

    ResiliencePipeline? _retry;

    /// <summary>Returns how many changes took effect.</summary>
    public int Apply(IReadOnlyList<Change> plan, bool dryRun)
    {
        // A dry run shows every change; a real one shows each batch as it is sent (Dispatch), so a failure leaves
        // no [#] line for the batches and handlers it never reached.
        if (dryRun || plan.Count == 0)
        {
            Show(plan, 0, plan.Count);
            return 0;
        }

        // What took effect, as ranges of the plan: a plan of a million routes is never copied to be rolled back.
        var effective = new List<(int From, int To)>();
        var next = 0;

        // Applies what is left from `next` on; a transient failure escapes to the retry, which calls it
        // again and so resumes where the kernel stopped.
        void ApplyRest()
        {
            while (next < plan.Count)
            {
                var rest = ChangeList.Slice(plan, next, plan.Count - next);
                try
                {
                    Dispatch(rest);
                    effective.Add((next, plan.Count));
                    next = plan.Count;
                }
                catch (ChangeFailedException e)
                {
                    effective.Add((next, next + e.Applied));
                    next += e.Applied;
                    if (e.Applied >= rest.Count || !AlreadySo(plan[next], e.Errno))
                    {
                        if (!e.IsTransient) SayRefused();
                        throw;
                    }
                    if (!Confirmed(plan[next]))
                    {
                        SayRefused();
                        throw new ChangeFailedException(
                            $"{e.Message}: the kernel counts another {(plan[next].IsRule ? "rule" : "route")} as this one " +
                            "(it compares only the selectors the new rule has: 'from all pref P lookup T' is refused beside 'from X pref P lookup T'); give the rules different priorities",
                            e.Applied, plan[next], e) { Errno = e.Errno };
                    }
                    log.Debug("already so: {Change}", IpCommand.Display(plan[next], tables, protocols));
                    next++;
                }
            }
        }

        try
        {
            try { ApplyRest(); }
            catch (KernelException e) when (e.IsTransient)
            {
                // Built only when needed: the hook's hot path never pays for it.
                _retry ??= new ResiliencePipelineBuilder()
                    .AddRetry(new RetryStrategyOptions
                    {
                        ShouldHandle = new PredicateBuilder().Handle<KernelException>(k => k.IsTransient),
                        MaxRetryAttempts = 4,
                        Delay = TimeSpan.FromMilliseconds(20),
                        BackoffType = DelayBackoffType.Exponential,
                        OnRetry = a => { log.Debug("retrying after {Error}", a.Outcome.Exception?.Message); return default; },
                    })
                    .Build();
                _retry.Execute(ApplyRest);
            }
        }
        catch (KernelException e)
        {
            var count = effective.Sum(r => r.To - r.From);
            RollBack(plan, effective);
            throw new ChangeFailedException(
                $"{Named(e.Message, (e as ChangeFailedException)?.Failed)}; rolled back {count} change{(count == 1 ? "" : "s")}, nothing left behind",
                count, (e as ChangeFailedException)?.Failed, e) { Errno = e.Errno };
        }
        return effective.Sum(r => r.To - r.From);
    }

    /// <summary>Runs of kernel changes go to the backend in one call (one batch, one sendmsg); a change a
    /// handler claims (nftables, sysctl) goes to that handler. Failures report the index in <paramref name="changes"/>.</summary>
    void Dispatch(IReadOnlyList<Change> changes, bool rollback = false)
    {
        _refused = null;
        var packed = changes as IPackedChanges;
        // A route of a packed list is the kernel's: it is not made just to ask the handlers.
        IChangeHandler? HandlerAt(int k) => packed is not null && packed.TryPacked(k, out _, out _) ? null : HandlerOf(changes[k]);
        var i = 0;
        while (i < changes.Count)
        {
            var handler = HandlerAt(i);
            if (handler is not null)
            {
                Show(changes, i, i + 1, rollback);
                try { handler.Apply(changes[i]); }
                catch (KernelException e) when (e is not ChangeFailedException)
                {
                    throw new ChangeFailedException(e.Message, i, changes[i], e) { Errno = e.Errno };
                }
                i++;
                continue;
            }
            var j = i;
            while (j < changes.Count && HandlerAt(j) is null) j++;
            // Printed as the batch is sent: a batch the run never reaches (after a failure) prints nothing.
            Show(changes, i, j, rollback);
            try { kernel.Apply(ChangeList.Slice(changes, i, j - i)); }
            catch (ChangeFailedException e)
            {
                // The [#] lines above are the whole batch: say which of them the kernel refused, and what came of the rest.
                _refused = j - i > 1 && e.Applied < j - i ? (changes[i + e.Applied], e.Applied + 1, j - i, e.NotSent) : null;
                if (i == 0) throw;
                throw new ChangeFailedException(e.Message, e.Applied + i, e.Failed, e) { Errno = e.Errno, NotSent = e.NotSent };
            }
            i = j;
        }
    }

    /// <summary>The [#] lines of changes [from, to). Rendering 10,000 lines nobody sees (--quiet) costs more than
    /// sending them to the kernel.</summary>
    void Show(IReadOnlyList<Change> changes, int from, int to, bool rollback = false)
    {
        // A rollback's lines are warnings: seen with --quiet too.
        var level = rollback ? Serilog.Events.LogEventLevel.Warning : Serilog.Events.LogEventLevel.Information;
        if (!log.IsEnabled(level)) return;
        for (var k = from; k < to; k++) log.Write(level, "[#] {Command}", IpCommand.Display(changes[k], tables, protocols));
    }

    /// <summary>"[#] refused: line 2 of the 3 above: ip -4 route add ...; the 1 after it was not sent": the transcript's
    /// own line for a batch that failed part-way, as the netlink backend (one ack per request) and ip -batch
    /// ("Command failed -:2") both know it.</summary>
    void SayRefused()
    {
        if (_refused is { } r) Refused(r.Change, r.Line, r.Count, r.NotSent);
        _refused = null;
    }

    (Change Change, int Line, int Count, int NotSent)? _refused;

    void Refused(Change change, int line, int count, int notSent)
    {
        var rest = count - line;
        var tail = rest == 0 ? ""
            : notSent > 0 ? $"; the {(notSent == 1 ? "1 line after it was" : $"{notSent} lines after it were")} not sent"
            : $"; the {(rest == 1 ? "1 line after it was" : $"{rest} lines after it were")} sent and what took effect taken back";
        log.Warning("[#] refused: line {Line} of the {Count} above: {Command}{Tail}", line, count, IpCommand.Display(change, tables, protocols), tail);
    }

    /// <summary>A backend's message names the change with numbers (it has no names): the same words every other line uses.</summary>
    string Named(string message, Change? failed) =>
        failed is not IpChange ip ? message
        : message.Replace(ip.ToString(), ip.Display(tables, protocols), StringComparison.Ordinal)
                 .Replace(ip.Batch()!, ip.NamedBatch(tables, protocols), StringComparison.Ordinal);

    IChangeHandler? HandlerOf(Change change)
    {
        foreach (var h in _handlers)
            if (h.Handles(change)) return h;
        return null;
    }

    static bool AlreadySo(Change change, int errno) => change switch
    {
        AddRoute or AddRule => errno == Errno.EEXIST,
        DeleteRoute or DeleteRule => errno is Errno.ESRCH or Errno.ENOENT,
        // An existing id is "already so" only when it is this very nexthop (Confirmed); a deleted one went with its device.
        AddNexthop => errno == Errno.EEXIST,
        DeleteNexthop => errno is Errno.ENOENT or Errno.ESRCH,
        AddAddress => errno == Errno.EEXIST,
        DeleteAddress => errno == Errno.EADDRNOTAVAIL,
        DeleteLink => errno == Errno.ENODEV,
        _ => false,
    };

    /// <summary>EEXIST is "already so" only when the very object is there: the kernel also answers EEXIST for a
    /// rule it merely counts as a duplicate (it compares only the selectors the new rule has, so 'from all pref P
    /// lookup T' is refused beside 'from X pref P lookup T'), and counting that as done would report a rule that
    /// does not exist.</summary>
    bool Confirmed(Change change) => change switch
    {
        AddRule add => kernel.Read(new StateQuery(new HashSet<uint>(), Rules: true)).Rules.Contains(add.Rule),
        // One route per key and table: it is "already so" when the route at that key is ours.
        AddRoute add => kernel.Read(new StateQuery(new HashSet<uint> { add.Route.Table }, Rules: false)).Routes
            .Any(r => r.Key == add.Route.Key && r.Protocol == add.Route.Protocol),
        AddNexthop add => kernel.Read(new StateQuery(new HashSet<uint>(), Rules: false)).Nexthops.Contains(add.Nexthop),
        _ => true,
    };

    void RollBack(IReadOnlyList<Change> plan, List<(int From, int To)> effective)
    {
        var undo = new List<Change>();
        for (var r = effective.Count - 1; r >= 0; r--)
            for (var i = effective[r].To - 1; i >= effective[r].From; i--)
                undo.AddRange(plan[i].Undo());
        if (undo.Count == 0) return;
        // Shown as each batch of it is sent, as everything else is: once.
        try { Dispatch(undo, rollback: true); }
        catch (KernelException e)
        {
            log.Error("rollback incomplete: {Message}; run 'tunnel-router status' and 'tunnel-router apply'", e.Message);
        }
    }
}
