using System.Diagnostics;

namespace TunnelRouter.Cli;

/// <summary>
/// Phase timings of one run on stderr, when TRACE_TUNNEL_ROUTER_STARTUP is set (not TUNNEL_ROUTER_*: those are configuration keys): the OpenVPN hook's wall
/// time adds to every VPN start, so what it builds before touching the kernel is worth seeing.
/// </summary>
public static class StartupTrace
{
    static long _start;
    static TextWriter? _out;

    public static void Enable(IReadOnlyDictionary<string, string> env, TextWriter stderr)
    {
        if (!env.ContainsKey("TRACE_TUNNEL_ROUTER_STARTUP")) return;
        _out = stderr;
        _start = Stopwatch.GetTimestamp();
        Mark("main");
    }

    public static void Mark(string phase)
    {
        if (_out is null) return;
        // The heap beside the time: at a million routes the GC's work and the peak RSS are what a phase costs.
        _out.Write($"trace: {Stopwatch.GetElapsedTime(_start).TotalMilliseconds,7:0.000} ms  {phase}  (heap {GC.GetTotalMemory(false) >> 20} MB, rss {Environment.WorkingSet >> 20} MB, gc {GC.CollectionCount(0)}/{GC.CollectionCount(1)}/{GC.CollectionCount(2)} paused {GC.GetTotalPauseDuration().TotalMilliseconds:0.0} ms)\n");
    }
}
