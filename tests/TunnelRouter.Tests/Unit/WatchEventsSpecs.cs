using System.Net;
using System.Net.Sockets;
using TunnelRouter.Cli;
using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Policy;
using TunnelRouter.Tests.Support;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>watch's events and counters on plain data, the metrics listener's address, and the last apply's record.</summary>
public class WatchEventsSpecs
{
    static readonly string WatchSchema = Repo.File("docs", "watch.schema.json");

    static Rule RuleTo(uint table) => new(AddressFamily.InterNetwork, 1000, RuleAction.Lookup, table, 147, from: IPNetwork.Parse("10.1.0.0/16"));

    [Fact]
    public void A_restore_is_caused_by_a_deletion_a_change_a_device_that_appeared_or_a_removal_and_other_passes_by_their_trigger()
    {
        var rule = RuleTo(200);
        var route = new Route(IPNetwork.Parse("10.9.0.0/16"), 200, 147, device: "tun2");
        var appeared = new HashSet<string> { "tun2" };

        Assert.Equal("deleted", WatchEvents.Cause(new AddRule(rule), "event", new HashSet<string>()));
        Assert.Equal("appeared", WatchEvents.Cause(new AddRoute(route), "resync", appeared));
        Assert.Equal("changed", WatchEvents.Cause(new ReplaceRoute(route, new Route(IPNetwork.Parse("10.9.0.0/16"), 200, 147, device: "tun2", metric: 5)), "event", appeared));
        Assert.Equal("unwanted", WatchEvents.Cause(new DeleteRule(rule), "event", appeared));
        Assert.Equal("reload", WatchEvents.Cause(new AddRule(rule), "reload", appeared));
    }

    [Fact]
    public void Every_event_is_one_line_that_follows_the_schema_and_the_counters_add_up()
    {
        var output = new StringWriter();
        var told = new WatchEvents(output);
        var change = new PlannedChange("add", "rule", "ip -4 rule add from 10.1.0.0/16 pref 1000 lookup vpn protocol tunnel-router", "tunnel-router",
            "/etc/tunnel-router/tunnel-router.json", "Rules", 0, "the policy wants it");

        told.Started("/etc/tunnel-router/tunnel-router.json", 300);
        told.Seen(3);
        told.Changed("event", "deleted", change, "rule 1000 from 10.1.0.0/16 lookup vpn", "rule 1000 ... restored", closesFailClosed: true);
        told.Changed("reload", "reload", change, "rule 1000 from 10.1.0.0/16 lookup vpn", "ip -4 rule add ...", closesFailClosed: true);
        told.Suppressed(backedOff: 2, rateLimited: 1, TimeSpan.FromSeconds(4.2));
        told.BackedOff("rule 1100 from 10.2.0.0/16 lookup wan", 5, 60, "a script", 300);
        told.Uplinks(new Dictionary<UplinkPath, PathState> { [new UplinkPath("wan1", AddressFamily.InterNetwork)] = PathState.Up });
        told.Uplinks(new Dictionary<UplinkPath, PathState> { [new UplinkPath("wan1", AddressFamily.InterNetwork)] = PathState.Down });
        told.Waiting("tun2", "route default dev tun2 table nyet waits for tun2");
        told.Reloaded(false, "/etc/tunnel-router/tunnel-router.json", "Rules[0]: word 3 'lokup': expected a selector");
        told.Pass("event", ok: true, TimeSpan.FromMilliseconds(12.5), 1, null);
        told.Stopping(3, 1, 1);
        var metrics = new MetricsText();
        told.Render(metrics);

        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(11, lines.Length);
        Assert.All(lines, l => Assert.Empty(JsonSchema.Check(WatchSchema, l)));
        Assert.Contains("\"event\":\"uplink\",\"uplink\":\"wan1\",\"family\":\"inet\",\"state\":\"down\",\"previous\":\"up\"", lines[6]);
        Assert.Contains("\"state\":\"up\",\"previous\":null", lines[5]);
        var text = metrics.ToString();
        Assert.Contains("tunnel_router_watch_events_total 3\n", text);
        Assert.Contains("tunnel_router_watch_restores_total{cause=\"deleted\"} 1\n", text);
        Assert.Contains("tunnel_router_watch_restores_total{cause=\"changed\"} 0\n", text);
        Assert.Contains("tunnel_router_watch_suppressed_restores_total{reason=\"backed-off\"} 2\n", text);
        Assert.Contains("tunnel_router_watch_suppressed_restores_total{reason=\"rate-limited\"} 1\n", text);
        Assert.Contains("tunnel_router_watch_backoffs_total 1\n", text);
        Assert.Contains("tunnel_router_watch_passes_total{result=\"ok\"} 1\n", text);
        Assert.Contains("tunnel_router_watch_last_pass_duration_seconds 0.0125\n", text);
        Assert.Contains("# TYPE tunnel_router_watch_restores_total counter\n", text);
    }

    [Fact]
    public void Without_json_nothing_is_written_and_the_counters_still_count()
    {
        var told = new WatchEvents(null);

        told.Changed("resync", "changed", null, "route default table wan", "... restored", closesFailClosed: false);
        var metrics = new MetricsText();
        told.Render(metrics);

        Assert.False(told.Json);
        Assert.Contains("tunnel_router_watch_restores_total{cause=\"changed\"} 1\n", metrics.ToString());
        Assert.DoesNotContain("last_pass", metrics.ToString());
    }

    [Theory]
    [InlineData("127.0.0.1:9477", "127.0.0.1:9477")]
    [InlineData("[::1]:9477", "[::1]:9477")]
    [InlineData("localhost:9100", "127.0.0.1:9100")]
    public void The_listener_takes_a_loopback_address_and_port(string value, string endpoint) =>
        Assert.Equal(endpoint, MetricsEndpoint.Parse(value, remote: false).EndPoint.ToString());

    [Theory]
    [InlineData("0.0.0.0:9477", false, "'0.0.0.0:9477' is not a loopback address")]
    [InlineData("192.168.1.2:9477", false, "add --metrics-remote to serve them beyond this host")]
    [InlineData("::1:9477", false, "is not an IP address (an IPv6 one in brackets: [::1]:9477)")]
    [InlineData("127.0.0.1:0", false, "is not ADDRESS:PORT")]
    [InlineData("127.0.0.1:65536", false, "is not ADDRESS:PORT")]
    [InlineData("unix:metrics.sock", false, "a unix socket needs an absolute path")]
    [InlineData("example.org:9477", true, "'example.org' is not an IP address")]
    public void A_listener_address_that_is_not_one_or_not_loopback_is_one_line_naming_the_option(string value, bool remote, string expected)
    {
        var e = Assert.Throws<InputException>(() => MetricsEndpoint.Parse(value, remote));
        Assert.Equal("--metrics", e.Field);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Beyond_loopback_is_taken_when_asked_for_and_a_unix_path_as_it_is()
    {
        Assert.Equal("0.0.0.0:9477", MetricsEndpoint.Parse("0.0.0.0:9477", remote: true).EndPoint.ToString());
        Assert.Equal("/run/tunnel-router/metrics.sock", MetricsEndpoint.Parse("unix:/run/tunnel-router/metrics.sock", remote: false).SocketPath);
    }

    [Fact]
    public void The_last_apply_record_reads_back_what_was_written_and_nothing_from_a_line_not_its_own()
    {
        var record = new LastApply(DateTimeOffset.FromUnixTimeMilliseconds(1_765_000_000_123), Ok: false, 0.25, 17);

        Assert.Equal("1 1765000000.123 0 0.25 17\n", record.Line());
        Assert.Equal(record, LastApply.Parse(record.Line()));
        Assert.Null(LastApply.Parse("2 1765000000 1 0.25 17"));
        Assert.Null(LastApply.Parse("1 1765000000 yes 0.25 17"));
        Assert.Null(LastApply.Parse(null));
    }
}
