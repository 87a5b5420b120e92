using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using TunnelRouter.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace TunnelRouter.Tests.EndToEnd;

/// <summary>What the far end counted, per path and family: echo requests that came through the tunnel's path, and
/// packets of the protected traffic that came by the plain path (a leak).</summary>
public readonly record struct PathCounts(long Tunnel4, long Tunnel6, long Clear4, long Clear6)
{
    public static PathCounts operator -(PathCounts a, PathCounts b) =>
        new(a.Tunnel4 - b.Tunnel4, a.Tunnel6 - b.Tunnel6, a.Clear4 - b.Clear4, a.Clear6 - b.Clear6);

    public long Tunnel(bool v6) => v6 ? Tunnel6 : Tunnel4;
    public long Clear(bool v6) => v6 ? Clear6 : Clear4;
}

/// <summary>A lab whose protected traffic the matrix generates and counts.</summary>
public interface ILeakLab
{
    /// <summary>Where the traffic comes from and goes to: one bounded ping loop each.</summary>
    IReadOnlyList<(NetNs From, string To, bool V6)> Sources { get; }

    /// <summary>The far end's counters, since the lab was made.</summary>
    PathCounts Counts();

    /// <summary>The routing state worth reading when a row fails.</summary>
    string Diagnostics();

    /// <summary>tunnel-router with the words of one of the shipped unit's Exec lines, as the unit runs it.</summary>
    RunResult Unit(params string[] args);

    /// <summary>Makes the neighbour entries on the paths the traffic takes, with pings the far end does not count as
    /// protected traffic. A fresh veth's first IPv6 neighbour solicitation can be lost, and then the first second of
    /// IPv6 echo requests waits for its retransmission (ping, with many unanswered, slows down too): without this a row's
    /// first IPv6 second would show nothing at all.</summary>
    void WarmUp();
}

public static class NeighbourWarmUp
{
    /// <summary>One ping from each namespace to each address, all at once, whatever their answers.</summary>
    public static void Ping(params (NetNs From, string To)[] paths) =>
        Parallel.ForEach(paths, p => p.From.Exec("/usr/bin/ping", ["-n", "-q", "-c", "1", "-W", "3", p.To]));
}

/// <summary>One bounded ping loop in a namespace: at most <c>maxSeconds</c> worth of echo requests, stopped with SIGINT, after
/// which it says how many it sent. No <c>-w</c>: with a deadline iputils ping quits at the first ICMP error, so a refused
/// packet (a kill switch holding) would end the traffic before the moment a leak could begin.</summary>
public sealed class PingLoop : IDisposable
{
    readonly Process _process;
    readonly StringBuilder _output = new();

    public bool V6 { get; }

    public PingLoop(NetNs from, string to, bool v6, int intervalMs, int maxSeconds)
    {
        V6 = v6;
        var psi = new ProcessStartInfo("/usr/sbin/ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        var count = maxSeconds * 1000 / intervalMs;
        foreach (var a in (string[])["netns", "exec", from.Name, "/usr/bin/ping", "-n", "-q", "-i", (intervalMs / 1000.0).ToString("0.000",
                     System.Globalization.CultureInfo.InvariantCulture), "-c", count.ToString(), to])
            psi.ArgumentList.Add(a);
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>SIGINT (ping prints its statistics), then the number of echo requests it sent.</summary>
    public long Stop()
    {
        if (!_process.HasExited) kill(_process.Id, 2);
        if (!_process.WaitForExit(10_000)) _process.Kill(true);
        _process.WaitForExit();
        string text;
        lock (_output) text = _output.ToString();
        var m = Regex.Match(text, @"(\d+) packets transmitted");
        return m.Success ? long.Parse(m.Groups[1].Value) : 0;
    }

    public void Dispose()
    {
        if (!_process.HasExited) { try { _process.Kill(true); } catch (InvalidOperationException) { } }
        _process.Dispose();
    }

    [DllImport("libc", SetLastError = true)]
    static extern int kill(int pid, int sig);
}

/// <summary>One measured line of the matrix for one family.</summary>
public sealed record LeakResult(int Order, string Side, string Event, bool V6, long Sent, long TunnelDuring, long TunnelAfter, long Clear,
    bool TunnelExpected, bool Passed, string Note);

/// <summary>
/// The leak matrix: one row per event and family, collected from every row that ran in this test process and
/// printed whole by each row, in the matrix's own order (so the last row's output holds the table).
/// </summary>
public static class LeakMatrix
{
    static readonly List<LeakResult> Results = [];

    public static void Record(IEnumerable<LeakResult> results)
    {
        lock (Results) Results.AddRange(results);
    }

    public static string Table()
    {
        List<LeakResult> rows;
        lock (Results) rows = [.. Results.OrderBy(r => r.Side == "client" ? 0 : 1).ThenBy(r => r.Order).ThenBy(r => r.Event, StringComparer.Ordinal).ThenBy(r => r.V6)];
        var text = new StringBuilder();
        text.AppendLine("| side | event | family | sent | in tunnel (during) | in tunnel (after) | in clear | expected | result |");
        text.AppendLine("| --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- |");
        foreach (var r in rows)
            text.AppendLine($"| {r.Side} | {r.Event} | {(r.V6 ? "IPv6" : "IPv4")} | {r.Sent} | {r.TunnelDuring} | {r.TunnelAfter} | {r.Clear} | " +
                            $"{(r.TunnelExpected ? "0 in clear, through the tunnel" : "0 in clear")} | {(r.Passed ? "pass" : "**FAIL**")}{(r.Note.Length > 0 ? $" ({r.Note})" : "")} |");
        return text.ToString();
    }
}

/// <summary>
/// One event of the matrix on one lab: traffic runs (a 20 ms ping loop per source) while the event happens, then a
/// short burst after it; the far end's counters say what came through the tunnel and what came in clear. In clear
/// counts from the lab's making (nothing of the protected traffic may ever arrive there); through the tunnel counts
/// during the event and in the burst after it, which must arrive through the tunnel wherever the tunnel is up.
/// </summary>
public sealed class LeakRow(ILeakLab lab, ITestOutputHelper output, int order, string side, string name)
{
    readonly Dictionary<bool, long> _sent = new() { [false] = 0, [true] = 0 };
    readonly StringBuilder _notes = new();
    PathCounts _start = lab.Counts();
    PathCounts _during;
    bool _incomplete;

    public const int IntervalMs = 20;

    /// <summary>Runs <paramref name="act"/> while the sources ping (<paramref name="intervalMs"/> apart, at most 60 s);
    /// a failure of the event itself (OpenVPN exiting, a wait that timed out) is noted, and the row still measured.</summary>
    public void During(Action act, int intervalMs = IntervalMs, int leadMs = 300, int tailMs = 500)
    {
        lab.WarmUp();
        _start = lab.Counts();
        var loops = lab.Sources.Select(s => new PingLoop(s.From, s.To, s.V6, intervalMs, 60)).ToList();
        try
        {
            Thread.Sleep(leadMs);
            try { act(); }
            catch (Exception e) when (e is Xunit.Sdk.XunitException or TimeoutException or InvalidOperationException)
            {
                _incomplete = true;
                _notes.AppendLine($"the event did not complete: {e.Message}");
            }
            Thread.Sleep(tailMs);
        }
        finally
        {
            foreach (var l in loops) { _sent[l.V6] += l.Stop(); l.Dispose(); }
        }
        _during = lab.Counts() - _start;
    }

    public void Note(string text) => _notes.AppendLine(text);

    /// <summary>The event of the restart rows: the shipped unit's ExecStop, then its ExecStart, each noted.</summary>
    public void DuringUnitRestart() => During(() =>
    {
        Note("stop", lab.Unit(ShippedUnit.Stop));
        Note("start", lab.Unit(ShippedUnit.Start));
    }, tailMs: 1_000);

    /// <summary>Notes what watch said that matters here: its restores, back-offs, refusals and forgetting.</summary>
    public void Note(WatchProcess watch)
    {
        var lines = watch.Output.Split('\n').Select(l => l.Trim())
            .Where(l => l.Length > 0 && !l.StartsWith("[#]", StringComparison.Ordinal)).TakeLast(10).ToList();
        _notes.AppendLine("watch said (last lines, [#] lines left out):\n    " + string.Join("\n    ", lines));
    }

    /// <summary>Notes a command's exit code and, when it failed, its last line.</summary>
    public void Note(string what, RunResult run) =>
        _notes.AppendLine($"{what}: exit {run.ExitCode}" + (run.ExitCode == 0 ? "" : ": " + run.Stderr.Trim().Split('\n').LastOrDefault()));

    /// <summary>The burst after the event, then the verdict: 0 in clear in both families, and through the tunnel in each
    /// family the tunnel is expected to carry.</summary>
    public void Check(bool tunnel4, bool tunnel6)
    {
        var before = lab.Counts();
        var loops = lab.Sources.Select(s => new PingLoop(s.From, s.To, s.V6, 50, 60)).ToList();
        // At least 1.2 s of traffic; then on until each family the tunnel should carry has carried some, up to 60 s: a
        // tunnel on a loaded machine may pass its first packet later, and that is no verdict on the row.
        bool Carried(PathCounts c) => (!tunnel4 || c.Tunnel(false) > 0) && (!tunnel6 || c.Tunnel(true) > 0);
        var clock = Stopwatch.StartNew();
        while (clock.ElapsedMilliseconds < 1_200 || clock.ElapsedMilliseconds < 60_000 && !Carried(lab.Counts() - before)) Thread.Sleep(100);
        foreach (var l in loops) { _sent[l.V6] += l.Stop(); l.Dispose(); }
        Thread.Sleep(100);
        var end = lab.Counts();
        var after = end - before;

        var results = new List<LeakResult>();
        foreach (var v6 in (bool[])[false, true])
        {
            var expected = v6 ? tunnel6 : tunnel4;
            // A row whose event did not happen as it should (OpenVPN exiting, a wait that timed out) has not shown anything.
            var passed = !_incomplete && end.Clear(v6) == 0 && (!expected || after.Tunnel(v6) > 0);
            results.Add(new LeakResult(order, side, name, v6, _sent[v6], _during.Tunnel(v6), after.Tunnel(v6), end.Clear(v6), expected, passed,
                _incomplete ? "the event did not complete" : ""));
        }
        LeakMatrix.Record(results);
        output.WriteLine($"{side}: {name}");
        foreach (var r in results)
            output.WriteLine($"  {(r.V6 ? "IPv6" : "IPv4")}: sent {r.Sent}, in tunnel {r.TunnelDuring} during + {r.TunnelAfter} after, in clear {r.Clear}: " +
                             (r.Passed ? "pass" : "FAIL"));
        if (_notes.Length > 0) output.WriteLine("  " + _notes.ToString().Trim().Replace("\n", "\n  "));
        output.WriteLine("");
        output.WriteLine("The leak matrix so far (every row of this run that has finished):");
        output.WriteLine(LeakMatrix.Table());
        var failed = results.Where(r => !r.Passed).ToList();
        Assert.True(failed.Count == 0,
            $"{side}: {name}: " + (_incomplete ? "the event did not complete; " : "") + string.Join("; ", failed.Select(r =>
                $"{(r.V6 ? "IPv6" : "IPv4")} {r.Clear} in clear" + (r.TunnelExpected ? $", {r.TunnelAfter} through the tunnel after the event" : ""))) +
            $"\n{_notes}\n{lab.Diagnostics()}");
    }
}

/// <summary>The shipped unit's Exec lines (contrib/systemd/tunnel-router.service), read from the unit file so the rows
/// follow the unit: their program is the installed binary, their arguments what the matrix runs.</summary>
public static class ShippedUnit
{
    public static string[] Exec(string key)
    {
        var line = File.ReadLines(Repo.File("contrib", "systemd", "tunnel-router.service"))
            .Single(l => l.StartsWith(key + "=", StringComparison.Ordinal));
        var words = line[(key.Length + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("/usr/local/sbin/tunnel-router", words[0]);
        return words[1..];
    }

    public static string[] Start => Exec("ExecStart");
    public static string[] Stop => Exec("ExecStop");
}

/// <summary>
/// Seed 000's router (<see cref="ClientLab"/>) as the matrix uses it: the LAN host pings the server in both families,
/// the server counts what arrives on its tunnel side and on its plain side. Clients and watch processes started here
/// are this wrapper's and go before the lab.
/// </summary>
public sealed class ClientLeakLab : ILeakLab, IDisposable
{
    readonly List<IDisposable> _own = [];

    public ClientLab Lab { get; } = new();

    /// <summary>The host lock the router's commands and hooks use; the tunnels' records live beside it. The lab's own
    /// unless a row shares one between two labs, as two network namespaces on one host share /run.</summary>
    public string LockPath { get; }

    public ClientLeakLab(string? lockPath = null) => LockPath = lockPath ?? Path.Combine(Lab.Dir, "lock");

    /// <summary>Points the policy file just written at <see cref="LockPath"/>.</summary>
    public void PointPolicyAtLock()
    {
        var text = File.ReadAllText(Lab.PolicyPath);
        File.WriteAllText(Lab.PolicyPath, text.Replace($"\"{Path.Combine(Lab.Dir, "lock")}\"", $"\"{LockPath}\""));
    }

    Dictionary<string, string> Environment => TunnelRouterProcess.Environment(Lab.Router, new Dictionary<string, string> { ["TUNNEL_ROUTER_LOCKFILE"] = LockPath });

    public IReadOnlyList<(NetNs From, string To, bool V6)> Sources =>
        [(Lab.Lan, ClientLab.Server4, false), (Lab.Lan, ClientLab.Server6, true)];

    public PathCounts Counts() => new(Lab.Seen(0), Lab.Seen(1), Lab.Seen(2), Lab.Seen(3));

    /// <summary>The LAN host pings the router, the router the server: neither is the LAN's traffic to the server.</summary>
    public void WarmUp() => NeighbourWarmUp.Ping((Lab.Lan, "192.168.10.1"), (Lab.Lan, "fd10::1"),
        (Lab.Router, ClientLab.Server4), (Lab.Router, ClientLab.Server6));

    public string Diagnostics() => string.Join("\n---\n",
        Lab.Router.Ip("-4", "rule", "show"), Lab.Router.Ip("-6", "rule", "show"), Lab.Nyet(), Lab.Nyet("-6"),
        "what the hook and OpenVPN said about it:\n" + string.Join("\n", _own.OfType<OpenVpnProcess>().SelectMany(c =>
            c.Log.Split('\n').Where(l => l.Contains("tunnel-router", StringComparison.Ordinal) || l.Contains("skipped", StringComparison.Ordinal)
                                         || l.Contains("SIGUSR1", StringComparison.Ordinal) || l.Contains("script", StringComparison.OrdinalIgnoreCase)
                                         || l.Contains("Exiting", StringComparison.Ordinal)).Select(l => $"{c.Name}: {l.Trim()}"))));

    /// <summary>The router's OpenVPN client on tun2 as <see cref="ClientLab.StartClient"/> writes it (the hook, allow-recursive-routing),
    /// plus <paramref name="extra"/> lines.</summary>
    public OpenVpnProcess Client(int run, params string[] extra)
    {
        var pki = Pki.Instance;
        var bin = Prerequisites.Binary;
        var name = $"leak-client-{run}";
        var log = Path.Combine(Lab.Dir, name + ".log");
        var config = Path.Combine(Lab.Dir, name + ".conf");
        File.WriteAllLines(config,
        [
            "client", "dev tun2", "dev-type tun", "proto udp", $"remote {ClientLab.Server4} 1194", "nobind", "remote-cert-tls server",
            $"ca {pki.Ca}", $"cert {pki.Cert(Pki.Clients[0])}", $"key {pki.Key(Pki.Clients[0])}", "verb 3", $"log {log}",
            "script-security 2", $"up \"{bin} --config {Lab.PolicyPath}\"", $"down \"{bin} --config {Lab.PolicyPath}\"", "allow-recursive-routing",
            // The lab's names and lock for the hook even when the policy does not parse (on a host they are the defaults).
            $"setenv TUNNEL_ROUTER_IPROUTE2DIR {Path.Combine(Lab.Dir, "iproute2")}", $"setenv TUNNEL_ROUTER_LOCKFILE {LockPath}",
            .. extra,
        ]);
        return Own(new OpenVpnProcess(Lab.Router, name, config, log));
    }

    public WatchProcess Watch() => Own(new WatchProcess(Lab.Router, ["--config", Lab.PolicyPath], Environment));

    /// <summary>tunnel-router with the lab's policy as the unit runs it, whatever its exit code. The lab's names and lock
    /// come from the environment too, so a policy that does not parse still finds them (on a host they are the defaults).</summary>
    public RunResult Unit(params string[] args) =>
        Lab.Router.Exec(Prerequisites.Binary, [.. args, "--config", Lab.PolicyPath], Environment);

    public T Own<T>(T thing) where T : IDisposable
    {
        _own.Add(thing);
        return thing;
    }

    /// <summary>The last client or watch started here.</summary>
    public T Last<T>() => _own.OfType<T>().Last();

    public void Dispose()
    {
        for (var i = _own.Count - 1; i >= 0; i--) _own[i].Dispose();
        Lab.Dispose();
    }
}

/// <summary>
/// Seed 003's server (<see cref="OpenVpnLab"/>, PoolRules, the vpn table's default routes via the NAT router) as the matrix
/// uses it, with one thing added: the server's own uplink. Its main table's default routes lead to a gateway of their
/// own (isp0: 192.168.179.1, fd00:179::1), which counts every packet for the internet host that reaches it — a client's
/// packet there left the server by its plain path. Through the tunnel's path is what the internet host counts from the
/// NAT router (masqueraded). Both clients ping the internet host in both families.
/// </summary>
public sealed class ServerLeakLab : ILeakLab, IDisposable
{
    readonly List<IDisposable> _own = [];

    public OpenVpnLab Lab { get; } = new(clients: 2);
    public NetNs Uplink { get; }

    public ServerLeakLab()
    {
        try
        {
            Uplink = new NetNs();
            OpenVpnLab.Link(Lab.Server, "isp0", "192.168.179.2/24", "fd00:179::2/64", Uplink, "eth0", "192.168.179.1/24", "fd00:179::1/64");
            Lab.Server.Ip("route", "replace", "default", "via", "192.168.179.1");
            Lab.Server.Ip("-6", "route", "replace", "default", "via", "fd00:179::1");
            Uplink.Exec("/usr/sbin/nft", ["-f", "-"], stdin: $$"""
                table inet lab {
                    chain seen {
                        type filter hook prerouting priority 0;
                        ip daddr {{OpenVpnLab.InternetV4}} counter
                        ip6 daddr {{OpenVpnLab.InternetV6}} counter
                    }
                }
                """).ShouldSucceed();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public IReadOnlyList<(NetNs From, string To, bool V6)> Sources =>
        [.. Lab.Clients.SelectMany(c => new[] { (c, OpenVpnLab.InternetV4, false), (c, OpenVpnLab.InternetV6, true) })];

    public PathCounts Counts()
    {
        var (t4, t6) = Lab.SeenFromNat();
        return new(t4, t6, OpenVpnLab.Counter(Uplink, "seen", 0), OpenVpnLab.Counter(Uplink, "seen", 1));
    }

    public string Diagnostics() => Lab.PolicyState();

    /// <summary>The server pings the NAT router and its own gateway, the NAT router the internet host (what the internet
    /// host counts from the NAT router here is before the row's first reading).</summary>
    public void WarmUp() => NeighbourWarmUp.Ping((Lab.Server, "192.168.1.1"), (Lab.Server, "fd00:1010:1010:1010::1"),
        (Lab.Server, "192.168.179.1"), (Lab.Server, "fd00:179::1"), (Lab.Nat!, OpenVpnLab.InternetV4), (Lab.Nat!, OpenVpnLab.InternetV6));

    /// <summary>The server's policy: seed 003 with PoolRules and the vpn table's kill switch, or static pool rules.</summary>
    /// <param name="hookTable">the hook's Table when not the default vpn: a second table (201) with the same default routes
    /// and its own kill switch.</param>
    public void WritePolicy(bool poolRules = true, string extra = "", string? hookTable = null)
    {
        var rules = poolRules ? "" : """
            "Rules": [ "from 10.10.10.0/24 lookup vpn", "from fd00:4242:4242:4242::/64 lookup vpn" ],
            """;
        var second = hookTable is null ? "" : $$"""
            "Table": "{{hookTable}}",
            """;
        var tables = hookTable is null ? "\"vpn\": 200" : $"\"vpn\": 200, \"{hookTable}\": 201";
        var closed = hookTable is null ? "\"vpn\"" : $"\"vpn\", \"{hookTable}\"";
        var routes = "\"default via 192.168.1.1 table vpn\", \"default via fd00:1010:1010:1010::1 table vpn\""
                     + (hookTable is null ? "" : $", \"default via 192.168.1.1 table {hookTable}\", \"default via fd00:1010:1010:1010::1 table {hookTable}\"");
        File.WriteAllText(Lab.PolicyPath, $$"""
            {
              "Iproute2Dir": "{{Path.Combine(Lab.Dir, "iproute2")}}",
              "LockFile": "{{Path.Combine(Lab.Dir, "lock")}}",
              "Tables": { {{tables}} },
              "FailClosed": [ {{closed}} ],
              "Routes": [ {{routes}} ],
              {{rules}}{{second}}{{extra}}
              "PoolRules": {{(poolRules ? "true" : "false")}}
            }
            """);
    }

    /// <summary>The default server (tun0) and both clients connected to it.</summary>
    public OpenVpnProcess Connect(params string[] serverExtra)
    {
        var server = Lab.StartServer(new ServerSpec(Extra: [.. HookEnvironment, .. serverExtra]));
        server.WaitFor(OpenVpnProcess.Ready);
        Lab.StartClient(0).WaitFor(OpenVpnProcess.Ready);
        Lab.StartClient(1).WaitFor(OpenVpnProcess.Ready);
        return server;
    }

    public WatchProcess Watch() => Own(new WatchProcess(Lab.Server, ["--config", Lab.PolicyPath]));

    /// <summary>The last watch started here.</summary>
    public T Last<T>() => _own.OfType<T>().Last();

    /// <summary>tunnel-router with the lab's policy as the unit runs it, whatever its exit code. The lab's names and lock
    /// come from the environment too, so a policy that does not parse still finds them (on a host they are the defaults).</summary>
    public RunResult Unit(params string[] args) =>
        Lab.Server.Exec(Prerequisites.Binary, [.. args, "--config", Lab.PolicyPath], TunnelRouterProcess.Environment(Lab.Server));

    /// <summary>What OpenVPN's hooks need to find the lab's names and lock when the policy does not parse.</summary>
    public string[] HookEnvironment =>
        [$"setenv TUNNEL_ROUTER_IPROUTE2DIR {Path.Combine(Lab.Dir, "iproute2")}", $"setenv TUNNEL_ROUTER_LOCKFILE {Path.Combine(Lab.Dir, "lock")}"];

    public T Own<T>(T thing) where T : IDisposable
    {
        _own.Add(thing);
        return thing;
    }

    public void Dispose()
    {
        for (var i = _own.Count - 1; i >= 0; i--) _own[i].Dispose();
        Lab.Dispose();
        Uplink?.Dispose();
    }
}
