using System.Diagnostics;
using System.Text.RegularExpressions;
using TunnelRouter.Tests.Support;
using Xunit;
using Xunit.Abstractions;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.EndToEnd;

/// <summary>
/// Issue 26 with real packets: a LAN host behind the gateway, two uplinks through two NAT routers to an internet host.
/// Uplink 1 is killed three ways — its carrier, its router no longer answering (not even ARP), its router dropping what
/// it forwards while it answers ARP and pings — while the LAN host pings every 100 ms. The specs assert that traffic
/// flows through uplink 2 and back again (counted at the NAT routers) and print the time without answers and the time
/// to fail back: timings are printed, never asserted.
/// </summary>
public class UplinkFailoverEndToEndSpecs(ITestOutputHelper output)
{
    const string Internet = "192.0.2.100";
    const int HoldSeconds = 5;

    sealed class Lab : IDisposable
    {
        public readonly NetNs Lan = new(), Gateway = new(), Router1 = new(), Router2 = new(), Host = new();

        public Lab()
        {
            Topology.Link(Lan, "eth0", ["192.168.50.2/24"], Gateway, "lan0", ["192.168.50.1/24"]);
            Topology.Link(Gateway, "wan1", ["198.51.100.2/24"], Router1, "w1", ["198.51.100.1/24"]);
            Topology.Link(Gateway, "wan2", ["203.0.113.2/24"], Router2, "w2", ["203.0.113.1/24"]);
            Topology.Link(Router1, "i1", ["100.64.1.1/24"], Host, "i1", ["100.64.1.2/24"]);
            Topology.Link(Router2, "i2", ["100.64.2.1/24"], Host, "i2", ["100.64.2.2/24"]);
            Lan.Ip("route", "add", "default", "via", "192.168.50.1");
            Host.Ip("addr", "add", Internet + "/32", "dev", "lo");
            foreach (var (router, wan, gw, inet, next) in new[] { (Router1, "w1", "198.51.100.2", "i1", "100.64.1.2"), (Router2, "w2", "203.0.113.2", "i2", "100.64.2.2") })
            {
                router.Forwarding();
                router.Ip("route", "add", "192.168.50.0/24", "via", gw, "dev", wan);
                router.Ip("route", "add", Internet, "via", next, "dev", inet);
                // The NAT router: what leaves to the internet host is masqueraded; what it forwards from the LAN host is counted.
                router.Nft($$"""
                    table ip nat {
                        chain post {
                            type nat hook postrouting priority 100;
                            oifname "{{inet}}" masquerade
                        }
                    }
                    table inet count {
                        chain counted {
                            type filter hook forward priority 0;
                            ip saddr 192.168.50.2 counter
                        }
                    }
                    """).ShouldSucceed();
            }
            Gateway.Forwarding();
        }

        public long Counted(NetNs router)
        {
            var m = Regex.Match(router.NftList("chain", "inet", "count", "counted"), @"counter packets (\d+)");
            return m.Success ? long.Parse(m.Groups[1].Value) : throw new InvalidOperationException("no counter in " + router.Name);
        }

        public void Dispose()
        {
            foreach (var ns in new[] { Lan, Gateway, Router1, Router2, Host }) ns.Dispose();
        }
    }

    /// <summary>Pings every 100 ms from the LAN host: when each answer arrived (by the spec's clock, not by sequence number:
    /// a busy machine stretches ping's interval).</summary>
    sealed class Pinger : IDisposable
    {
        readonly Process _process;
        readonly List<long> _answers = [];
        readonly Stopwatch _clock = Stopwatch.StartNew();

        public Pinger(NetNs ns)
        {
            var psi = new ProcessStartInfo("/usr/sbin/ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in (string[])["netns", "exec", ns.Name, "/usr/bin/stdbuf", "-oL", "/usr/bin/ping", "-4", "-n", "-i", "0.1", Internet]) psi.ArgumentList.Add(a);
            _process = Process.Start(psi)!;
            _process.OutputDataReceived += (_, e) =>
            {
                if (e.Data?.Contains("icmp_seq=", StringComparison.Ordinal) == true)
                    lock (_answers) _answers.Add(_clock.ElapsedMilliseconds);
            };
            _process.BeginOutputReadLine();
        }

        public long Now => _clock.ElapsedMilliseconds;

        public bool AnsweredSince(long ms) { lock (_answers) return _answers.Count > 0 && _answers[^1] >= ms; }

        /// <summary>The longest time without an answer from <paramref name="from"/> on (from the last answer before it), in ms.</summary>
        public long LongestGapMs(long from)
        {
            lock (_answers)
            {
                long longest = 0;
                for (var i = 1; i < _answers.Count; i++)
                    if (_answers[i] >= from) longest = Math.Max(longest, _answers[i] - _answers[i - 1]);
                return longest;
            }
        }

        public void Dispose()
        {
            try { _process.Kill(); } catch (InvalidOperationException) { }
            _process.WaitForExit();
            _process.Dispose();
        }
    }

    public enum Kill { Carrier, Gateway, Path }

    [Theory]
    [InlineData(Kill.Carrier)]
    [InlineData(Kill.Gateway)]
    [InlineData(Kill.Path)]
    public void Uplink_1_dies_traffic_flows_by_uplink_2_and_comes_back_after_the_hold(Kill how)
    {
        using var lab = new Lab();
        var policy = Topology.Policy(lab.Gateway, $$"""
            { "Tables": { "wan1": 11, "wan2": 12, "out": 200 },
              "FailClosed": [ "out" ],
              "Rules": [ "from 192.168.50.0/24 lookup out" ],
              "Uplinks": [
                { "Name": "wan1", "Interface": "wan1", "Table": "wan1", "Address": "198.51.100.2/24", "Gateway": "198.51.100.1",
                  "Track": "{{Internet}} interval 1 down 3 up 3 hold {{HoldSeconds}}" },
                { "Name": "wan2", "Interface": "wan2", "Table": "wan2", "Address": "203.0.113.2/24", "Gateway": "203.0.113.1",
                  "Track": "{{Internet}} interval 1 down 3 up 3 hold {{HoldSeconds}}" } ],
              "Failover": [ "table out via wan1 wan2" ] }
            """);
        using var watch = new WatchProcess(lab.Gateway, ["-c", policy]);
        Assert.Contains("198.51.100.1 dev wan1", lab.Gateway.Ip("route", "show", "table", "200"));
        using var ping = new Pinger(lab.Lan);
        Eventually.True(() => lab.Counted(lab.Router1) >= 10, () => $"no LAN traffic through router 1:\n{watch.Output}");

        var killedAt = ping.Now;
        var clock = Stopwatch.StartNew();
        Break(lab, how, broken: true);
        var before2 = lab.Counted(lab.Router2);
        Eventually.True(() => lab.Counted(lab.Router2) > before2 + 5, () => $"no LAN traffic through router 2 after uplink 1 died ({how}):\n{watch.Output}");
        var flowing = ping.Now;
        Eventually.True(() => ping.AnsweredSince(flowing), () => $"pings are not answered through uplink 2:\n{watch.Output}");
        var failover = ping.LongestGapMs(killedAt);
        Assert.Contains("198.51.100.1", lab.Gateway.Ip("route", "show", "table", "11")); // uplink 1's own table keeps its reply routing
        Assert.Contains("203.0.113.1 dev wan2", lab.Gateway.Ip("route", "show", "table", "200"));
        if (how == Kill.Carrier)
        {
            // What an admin sees meanwhile: status has each uplink's health (written by watch at most once a second), explain the uplink a LAN packet takes.
            Eventually.True(() => Run(lab.Gateway, ["status", "-c", policy]).Stdout.Contains("wan1 IPv4 down since"), () => Run(lab.Gateway, ["status", "-c", policy]).Stdout);
            var status = Run(lab.Gateway, ["status", "-c", policy]).ShouldSucceed().Stdout;
            Assert.Matches(@"wan1 IPv4 down since \S+ \S+ UTC, dev wan1, last probes [-+]+, tables out", status);
            Assert.Matches(@"wan2 IPv4 up, dev wan2, last probes \++, tables out", status);
            var explain = Run(lab.Gateway, ["explain", "-c", policy, "--from", "192.168.50.2", "--to", Internet, "--iif", "lan0"]).ShouldSucceed().Stdout;
            Assert.Contains("Uplink:   wan2 (Failover[0]: table out via wan1 wan2; wan1 IPv4 down; wan2 IPv4 up)", explain);
        }

        var restoredAt = ping.Now;
        clock.Restart();
        Break(lab, how, broken: false);
        var before1 = lab.Counted(lab.Router1);
        Eventually.True(() => lab.Counted(lab.Router1) > before1 + 5, () => $"traffic did not fail back to uplink 1 ({how}):\n{watch.Output}", 60_000);
        var failback = clock.Elapsed;
        var back = ping.Now;
        Eventually.True(() => ping.AnsweredSince(back), () => $"pings are not answered through uplink 1 again:\n{watch.Output}");
        var gapBack = ping.LongestGapMs(restoredAt);

        output.WriteLine($"{how}: time without answers until traffic flowed via uplink 2: {failover} ms (pings every 100 ms; " +
                         $"router 2 had counted it {flowing - killedAt} ms after the kill); fail-back {failback.TotalSeconds:0.0} s after uplink 1 returned " +
                         $"(3 answered 1 s probes + hold {HoldSeconds} s), {gapBack} ms without answers then");
        Assert.Equal(1, Regex.Count(watch.Output, @"uplink wan1 IPv4 is down"));
        Assert.Contains("uplink wan1 IPv4 has been up for its hold", watch.Output);
    }

    static void Break(Lab lab, Kill how, bool broken)
    {
        switch (how)
        {
            case Kill.Carrier:
                lab.Router1.Ip("link", "set", "w1", broken ? "down" : "up");
                // A link set down takes the router's routes over it: its own configuration puts the route to the LAN back.
                if (!broken) lab.Router1.Ip("route", "replace", "192.168.50.0/24", "via", "198.51.100.2", "dev", "w1");
                break;
            case Kill.Gateway:
                // Nothing from the gateway reaches router 1, ARP included: its neighbour entry goes FAILED, the probes are lost.
                lab.Router1.Nft(broken ? "table netdev deaf {\n chain deafen {\n type filter hook ingress device w1 priority 0; policy drop;\n }\n}\n" : "delete table netdev deaf\n").ShouldSucceed();
                break;
            case Kill.Path:
                // Router 1 answers ARP and its own pings but forwards nothing.
                lab.Router1.Nft(broken ? "table inet cut {\n chain cutoff {\n type filter hook forward priority -10; policy drop;\n }\n}\n" : "delete table inet cut\n").ShouldSucceed();
                break;
        }
    }
}
