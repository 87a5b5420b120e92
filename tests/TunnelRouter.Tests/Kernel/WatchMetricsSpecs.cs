using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.Hardening;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary>watch --json's events (docs/watch.schema.json) and watch --metrics' listener, with a real watch process in a
/// namespace: scraped over TCP inside it and over a unix socket, checked with promtool, its counters moved by a restore.</summary>
public class WatchMetricsSpecs
{
    const string Promtool = "/usr/bin/promtool";
    static readonly string WatchSchema = Repo.File("docs", "watch.schema.json");
    const string Rule = "from 10.1.0.0/16 lookup vpn";

    static (NetNs Ns, string Policy) Host()
    {
        var ns = new NetNs();
        AddVeth(ns, "wan", "192.168.1.2/24");
        var policy = WritePolicy(ns, $$"""
            { "Tables": { "wan": 100, "vpn": 200 }, "FailClosed": [ "vpn" ],
              "Routes": [ "default via 192.168.1.1 table wan" ], "Rules": [ "{{Rule}} pref 1000", "from 10.2.0.0/16 lookup wan pref 1100" ] }
            """);
        Run(ns, ["apply", "--config", policy]).ShouldSucceed();
        return (ns, policy);
    }

    static List<JsonElement> Events(WatchProcess watch) =>
        watch.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();

    /// <summary>GET over TCP inside the namespace (bash's /dev/tcp: nothing to install); the whole response.</summary>
    static string GetInside(NetNs ns, string path, int port = 9477) =>
        ns.Exec("/bin/bash", ["-c", $"exec 3<>/dev/tcp/127.0.0.1/{port} && printf 'GET {path} HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && cat <&3"]).ShouldSucceed().Stdout;

    /// <summary>What the unix socket answers to <paramref name="request"/>.</summary>
    static string Ask(string socket, byte[] request)
    {
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Connect(new UnixDomainSocketEndPoint(socket));
        try { s.Send(request); }
        catch (SocketException) { } // the listener may answer and close before it read the whole of an oversized request
        var answer = new MemoryStream();
        var buffer = new byte[65536];
        int n;
        while ((n = s.Receive(buffer)) > 0) answer.Write(buffer, 0, n);
        return Encoding.UTF8.GetString(answer.ToArray());
    }

    /// <summary>The body of a GET /metrics of the watch listening on 127.0.0.1:9477 in <paramref name="ns"/>.</summary>
    internal static string Metrics(NetNs ns) => Body(GetInside(ns, "/metrics"));

    static string Body(string response)
    {
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", response);
        Assert.Contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n", response);
        return response[(response.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..];
    }

    internal static void Promtool_passes(string body)
    {
        Assert.True(File.Exists(Promtool), $"{Promtool} is missing: scripts/deps.sh test installs Debian's prometheus package");
        var check = Sh.Run(Promtool, ["check", "metrics"], stdin: body);
        Assert.True(check.ExitCode == 0 && check.Stdout.Trim() == "" && check.Stderr.Trim() == "", $"promtool: {check.Stdout}{check.Stderr}\n{body}");
    }

    static double Sample(string body, string series)
    {
        var m = Regex.Match(body, "^" + Regex.Escape(series) + @" (\S+)$", RegexOptions.Multiline);
        Assert.True(m.Success, $"no sample {series} in:\n{body}");
        return double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    [Fact]
    public void Watch_json_tells_each_restore_with_its_object_owner_and_cause_in_lines_that_follow_the_schema()
    {
        var (ns, policy) = Host();
        using var _ = ns;
        using var watch = new WatchProcess(ns, ["--json", "-c", policy]);

        ns.Ip("rule", "del", "pref", "1100");
        watch.WaitFor("was deleted by someone else: restored");
        Eventually.True(() => Events(watch).Any(e => e.GetProperty("event").GetString() == "pass" && e.GetProperty("trigger").GetString() == "event"),
            () => $"no pass event after the restore:\n{watch.Stdout}");
        watch.Signal(1);
        watch.WaitFor("re-read");
        watch.Stop();

        var events = Events(watch);
        foreach (var line in watch.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            Assert.Empty(JsonSchema.Check(WatchSchema, line));
        Assert.DoesNotContain("[#]", watch.Stdout);
        // The start pass, then the line saying watch is watching (as systemd hears READY=1 after it).
        Assert.Equal(("pass", "start", true), (events[0].GetProperty("event").GetString(), events[0].GetProperty("trigger").GetString(), events[0].GetProperty("ok").GetBoolean()));
        Assert.Equal("started", events[1].GetProperty("event").GetString());
        var restored = Assert.Single(events, e => e.GetProperty("event").GetString() == "change");
        Assert.Equal(("event", "deleted", "add", "rule", "tunnel-router", policy, "Rules", 1, false),
            (restored.GetProperty("trigger").GetString(), restored.GetProperty("cause").GetString(), restored.GetProperty("operation").GetString(),
             restored.GetProperty("object").GetString(), restored.GetProperty("owner").GetString(), restored.GetProperty("file").GetString(),
             restored.GetProperty("section").GetString(), restored.GetProperty("line").GetInt32(), restored.GetProperty("closesFailClosed").GetBoolean()));
        Assert.Equal("rule 1100 from 10.2.0.0/16 lookup wan", restored.GetProperty("subject").GetString());
        Assert.Contains(events, e => e.GetProperty("event").GetString() == "reloaded" && e.GetProperty("ok").GetBoolean());
        Assert.Equal("stopping", events[^1].GetProperty("event").GetString());
        Assert.Contains("from 10.2.0.0/16 lookup 100", ns.Ip("rule", "show"));
    }

    [Fact]
    public void The_listener_serves_what_status_shows_plus_watchs_counters_which_move_when_a_deletion_is_restored()
    {
        var (ns, policy) = Host();
        using var _ = ns;
        using var watch = new WatchProcess(ns, ["--metrics", "127.0.0.1:9477", "-c", policy]);

        var before = Body(GetInside(ns, "/metrics"));
        ns.Ip("rule", "del", "pref", "1000");
        watch.WaitFor("was deleted by someone else: restored");
        var after = Body(GetInside(ns, "/metrics"));
        var status = Run(ns, ["status", "--format", "prometheus", "--config", policy]).ShouldSucceed().Stdout;

        Promtool_passes(before);
        Promtool_passes(after);
        Assert.Equal(0, Sample(before, "tunnel_router_watch_restores_total{cause=\"deleted\"}"));
        Assert.Equal(1, Sample(after, "tunnel_router_watch_restores_total{cause=\"deleted\"}"));
        Assert.True(Sample(after, "tunnel_router_watch_events_total") > Sample(before, "tunnel_router_watch_events_total"));
        Assert.True(Sample(after, "tunnel_router_watch_passes_total{result=\"ok\"}") >= 2);
        Assert.Equal(1, Sample(after, "tunnel_router_watch_last_pass_success"));
        Assert.Equal(1, Sample(after, "tunnel_router_last_apply_success"));
        Assert.True(Sample(after, "tunnel_router_last_apply_changes") >= 5); // two kill switches, a route, two rules (and the guard, with nft)
        Assert.Equal(1, Sample(after, "tunnel_router_fail_closed{table=\"vpn\",family=\"inet\"}"));
        // Everything status shows, the listener shows the same, from the same renderer.
        foreach (var line in status.Split('\n').Where(l => l.Length > 0 && !l.StartsWith('#')))
            Assert.Contains(line, after.Split('\n'));
        Assert.Contains("from 10.1.0.0/16 lookup 200", ns.Ip("rule", "show"));
    }

    [Fact]
    public void The_drift_gauge_counts_what_watch_leaves_unmade_once_it_backs_off_and_falls_to_zero_after_SIGHUP()
    {
        var (ns, policy) = Host();
        using var _ = ns;
        using var watch = new WatchProcess(ns, ["--metrics", "127.0.0.1:9477", "-c", policy]);
        const string Wan = "from 10.2.0.0/16 lookup wan", InKernel = "from 10.2.0.0/16 lookup 100"; // ip reads no name the policy made
        Assert.Equal(0, Sample(Metrics(ns), "tunnel_router_watch_drift_changes"));

        // Someone keeps deleting a rule into a table that is not fail-closed: after five restores within a minute watch
        // backs off, and the sixth deletion stays: one change the kernel lacks.
        for (var i = 1; i <= 5; i++)
        {
            Eventually.True(() => ns.Ip("rule").Contains(InKernel), () => $"not restored ({i}):\n{watch.Output}");
            ns.Ip("rule", "del", "pref", "1100");
            watch.WaitFor($"rule 1100 {Wan} was deleted by someone else: restored", i);
        }
        watch.WaitFor("keeps being deleted by someone else");
        Eventually.True(() => ns.Ip("rule").Contains(InKernel), () => watch.Output);
        ns.Ip("rule", "del", "pref", "1100");
        Eventually.True(() => Sample(Metrics(ns), "tunnel_router_watch_drift_changes") == 1, () => $"no drift of 1 after the back-off:\n{Metrics(ns)}");
        Assert.DoesNotContain(InKernel, ns.Ip("rule"));

        watch.Signal(1); // SIGHUP forgives: the rule comes back and nothing is left to make
        Eventually.True(() => ns.Ip("rule").Contains(InKernel), () => watch.Output);
        Eventually.True(() => Sample(Metrics(ns), "tunnel_router_watch_drift_changes") == 0, () => Metrics(ns));
        Promtool_passes(Metrics(ns));
    }

    [Fact]
    public void A_unix_socket_listener_bounds_the_request_refuses_other_methods_and_paths_and_keeps_serving()
    {
        var (ns, policy) = Host();
        using var _ = ns;
        var socket = Path.Combine(ns.StateDir, "metrics.sock");
        using var watch = new WatchProcess(ns, ["--metrics", "unix:" + socket, "-c", policy]);

        var huge = Ask(socket, Encoding.ASCII.GetBytes("GET /metrics HTTP/1.1\r\nX-Padding: " + new string('a', 20_000) + "\r\n\r\n"));
        var post = Ask(socket, "POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
        var other = Ask(socket, "GET /other HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
        var garbage = Ask(socket, "hello\r\n\r\n"u8.ToArray());
        var metrics = Ask(socket, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
        var mode = File.GetUnixFileMode(socket);
        watch.Stop();

        Assert.StartsWith("HTTP/1.1 431 ", huge);
        Assert.StartsWith("HTTP/1.1 405 ", post);
        Assert.Contains("\r\nAllow: GET, HEAD\r\n", post);
        Assert.StartsWith("HTTP/1.1 404 ", other);
        Assert.StartsWith("HTTP/1.1 400 ", garbage);
        Promtool_passes(Body(metrics));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite, mode);
        Assert.False(File.Exists(socket), "the socket file outlived the watch");
    }

    [Fact]
    public void A_listener_beyond_loopback_is_refused_unless_asked_for_and_changes_nothing()
    {
        var (ns, policy) = Host();
        using var _ = ns;
        ns.Ip("rule", "del", "pref", "1100");
        var before = ns.Dump();

        var wide = Run(ns, ["watch", "--metrics", "0.0.0.0:9477", "-c", policy]);
        var bad = Run(ns, ["watch", "--metrics", "localhost", "-c", policy]);
        var alone = Run(ns, ["watch", "--metrics-remote", "-c", policy]);

        Assert.Equal((1, 1, 1), (wide.ExitCode, bad.ExitCode, alone.ExitCode));
        Assert.Contains("tunnel-router: error: --metrics: '0.0.0.0:9477' is not a loopback address", wide.Stderr);
        Assert.Contains("add --metrics-remote to serve them beyond this host", wide.Stderr);
        Assert.Contains("tunnel-router: error: --metrics: 'localhost' is not ADDRESS:PORT", bad.Stderr);
        Assert.Contains("tunnel-router: error: --metrics-remote: goes with --metrics ADDRESS:PORT", alone.Stderr);
        Assert.Equal(before, ns.Dump());
    }

    [Fact]
    public void A_remote_listener_serves_on_the_address_asked_for()
    {
        var (ns, policy) = Host();
        using var _ = ns;
        using var watch = new WatchProcess(ns, ["--metrics", "192.168.1.2:9478", "--metrics-remote", "-c", policy]);

        var response = ns.Exec("/bin/bash", ["-c", "exec 3<>/dev/tcp/192.168.1.2/9478 && printf 'GET /metrics HTTP/1.1\\r\\n\\r\\n' >&3 && cat <&3"]).ShouldSucceed().Stdout;

        Promtool_passes(Body(response));
    }
}
