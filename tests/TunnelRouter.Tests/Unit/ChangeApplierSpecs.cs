using Serilog;
using Serilog.Core;
using Serilog.Events;
using TunnelRouter.Core;
using TunnelRouter.Kernel;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>The [#] transcript of a batch the kernel refused part-way: which of its lines, and what came of the rest —
/// with plain data, a kernel that refuses one request as ip -batch (stops there) or netlink (carries on) does.</summary>
public class ChangeApplierSpecs
{
    sealed class Lines : ILogEventSink
    {
        public List<string> All { get; } = [];
        public void Emit(LogEvent e) => All.Add(e.RenderMessage().Replace("\"", ""));
    }

    /// <summary>Refuses the change at <paramref name="refuse"/> (EINVAL) the first time; <paramref name="stops"/>: as
    /// ip -batch, the ones after it are not sent.</summary>
    sealed class Refusing(int refuse, bool stops) : IKernel
    {
        bool _refused;
        public List<Change> Sent { get; } = [];
        public string Name => stops ? "ip" : "netlink";
        public KernelState Read(StateQuery query) => KernelState.Empty;
        public void Apply(IReadOnlyList<Change> changes)
        {
            if (_refused || refuse >= changes.Count) { Sent.AddRange(changes); return; }
            _refused = true;
            Sent.AddRange(changes.Take(refuse));
            throw new ChangeFailedException("refused", refuse, changes[refuse], new KernelException("refused") { Errno = Errno.EINVAL })
            {
                Errno = Errno.EINVAL,
                NotSent = stops ? changes.Count - refuse - 1 : 0,
            };
        }
        public bool LinkExists(string name) => true;
        public IReadOnlyList<InterfaceAddress> ReadAddresses(string device) => [];
        public IReadOnlyList<Link> ReadLinks() => [];
        public string? RouteDevice(System.Net.IPAddress destination) => null;
    }

    static Change Add(string prefix) => new AddRoute(new Route(Net.ParsePrefix("r", prefix), 200, 147, device: "wan"));

    static (List<string> Log, ChangeFailedException Error) ApplyFailing(int refuse, bool stops, int count)
    {
        var lines = new Lines();
        var log = new LoggerConfiguration().MinimumLevel.Information().WriteTo.Sink(lines).CreateLogger();
        var applier = new ChangeApplier(new Refusing(refuse, stops), log, TableNames.Numeric, ProtocolNames.Numeric);
        var plan = Enumerable.Range(1, count).Select(i => Add($"10.{i}.0.0/24")).ToList();
        var e = Assert.Throws<ChangeFailedException>(() => applier.Apply(plan, dryRun: false));
        return (lines.All, e);
    }

    [Fact]
    public void A_batch_refused_at_its_second_line_by_ip_batch_says_which_and_that_the_rest_was_not_sent()
    {
        var (log, error) = ApplyFailing(refuse: 1, stops: true, count: 4);

        Assert.Equal(
        [
            "[#] ip -4 route add 10.1.0.0/24 dev wan table 200 proto 147",
            "[#] ip -4 route add 10.2.0.0/24 dev wan table 200 proto 147",
            "[#] ip -4 route add 10.3.0.0/24 dev wan table 200 proto 147",
            "[#] ip -4 route add 10.4.0.0/24 dev wan table 200 proto 147",
            "[#] refused: line 2 of the 4 above: ip -4 route add 10.2.0.0/24 dev wan table 200 proto 147; the 2 lines after it were not sent",
            "[#] ip -4 route del 10.1.0.0/24 dev wan table 200 proto 147",
        ], log);
        Assert.Equal(1, error.Applied);
    }

    [Fact]
    public void A_batch_netlink_refused_part_way_says_the_rest_was_sent_and_taken_back()
    {
        var (log, _) = ApplyFailing(refuse: 2, stops: false, count: 4);

        Assert.Equal("[#] refused: line 3 of the 4 above: ip -4 route add 10.3.0.0/24 dev wan table 200 proto 147; the 1 line after it was sent and what took effect taken back", log[4]);
    }

    [Fact]
    public void The_last_line_refused_has_nothing_after_it_to_speak_of()
    {
        var (log, _) = ApplyFailing(refuse: 2, stops: true, count: 3);

        Assert.Equal("[#] refused: line 3 of the 3 above: ip -4 route add 10.3.0.0/24 dev wan table 200 proto 147", log[3]);
    }

    [Fact]
    public void A_batch_of_one_line_needs_no_such_line_the_error_names_it()
    {
        var (log, error) = ApplyFailing(refuse: 0, stops: true, count: 1);

        Assert.Equal(["[#] ip -4 route add 10.1.0.0/24 dev wan table 200 proto 147"], log);
        Assert.Contains("refused", error.Message);
    }
}
