using System.Globalization;
using System.Text.RegularExpressions;
using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.Hardening;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary>status --format prometheus: checked by Prometheus' own promtool, and read back sample by sample.</summary>
public class StatusMetricsSpecs
{
    const string Promtool = "/usr/bin/promtool";

    /// <summary>The samples of an exposition text, strictly: every line a # HELP, a # TYPE or "name{labels} value"; a
    /// sample's family has its HELP and TYPE before it.</summary>
    static Dictionary<string, double> Samples(string text)
    {
        var samples = new Dictionary<string, double>();
        var typed = new HashSet<string>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0) continue;
            if (Regex.Match(line, @"^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$") is { Success: true } h)
            {
                if (h.Groups[1].Value == "TYPE") { Assert.Equal("gauge", h.Groups[3].Value); typed.Add(h.Groups[2].Value); }
                continue;
            }
            var m = Regex.Match(line, @"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*=""(?:[^""\\\n]|\\.)*"",?)*\})? (-?[0-9.e+]+)$");
            Assert.True(m.Success, $"not a sample line: {line}");
            Assert.Contains(m.Groups[1].Value, typed);
            samples.Add(m.Groups[1].Value + m.Groups[2].Value, double.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture));
        }
        return samples;
    }

    [Fact]
    public void Status_in_the_prometheus_format_passes_promtool_and_counts_what_is_owned()
    {
        Assert.True(File.Exists(Promtool), $"{Promtool} is missing: scripts/deps.sh test installs Debian's prometheus package");
        using var ns = new NetNs();
        AddVeth(ns, "wan", "192.168.1.2/24");
        var policy = WritePolicy(ns, """
            { "Tables": { "wan": 100, "vpn": 200 }, "FailClosed": [ "vpn" ],
              "Routes": [ "default via 192.168.1.1 table wan", "10.9.0.0/16 via 192.168.1.1 table wan" ],
              "Rules": [ "from 10.1.0.0/16 lookup vpn" ] }
            """);
        Run(ns, ["apply", "--config", policy]).ShouldSucceed();
        ns.Ip("-6", "route", "del", "unreachable", "default", "table", "200", "metric", "4294967295");

        var status = Run(ns, ["status", "--format", "prometheus", "--config", policy]);
        var check = Sh.Run(Promtool, ["check", "metrics"], stdin: status.Stdout);

        Assert.Equal(0, status.ExitCode);
        Assert.True(check.ExitCode == 0 && check.Stdout.Trim() == "" && check.Stderr.Trim() == "", $"promtool: {check.Stdout}{check.Stderr}");
        var samples = Samples(status.Stdout);
        Assert.Equal(2, samples["tunnel_router_owned_routes{table=\"wan\",family=\"inet\",owner=\"tunnel-router\"}"]);
        Assert.Equal(1, samples["tunnel_router_owned_routes{table=\"vpn\",family=\"inet\",owner=\"tunnel-router\"}"]);
        Assert.Equal(1, samples["tunnel_router_owned_rules{table=\"vpn\",family=\"inet\",owner=\"tunnel-router\"}"]);
        Assert.Equal(1, samples["tunnel_router_fail_closed{table=\"vpn\",family=\"inet\"}"]);
        Assert.Equal(0, samples["tunnel_router_fail_closed{table=\"vpn\",family=\"inet6\"}"]);
        Assert.Equal(0, samples["tunnel_router_live_tunnels"]);
        Assert.Equal(0, samples["tunnel_router_live_drift_changes"]);
        Assert.True(samples.ContainsKey("tunnel_router_guard_loaded"));
    }

    [Fact]
    public void An_unknown_format_is_one_line_naming_the_option()
    {
        using var ns = new NetNs();

        var status = Run(ns, ["status", "--format", "openmetrics"]);

        Assert.Equal(1, status.ExitCode);
        Assert.Contains("tunnel-router: error: --format: 'openmetrics' is not a format of status: text or prometheus", status.Stderr);
    }
}
