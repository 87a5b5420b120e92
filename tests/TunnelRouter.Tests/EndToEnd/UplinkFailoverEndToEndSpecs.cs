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
    const string Internet = "192.0.2.100", Internet6 = "2001:db8::100";
    const int HoldSeconds = 5;

    sealed class Lab : IDisposable
    {
        public readonly NetNs Lan = new(), Gateway = new(), Router1 = new(), Router2 = new(), Host = new();

        /// <summary>Both families on every link (IPv6 without DAD: the lab's addresses are usable at once), the NAT routers
        /// masquerading both (NAT66 too) and counting the LAN host's packets of each.</summary>
        public Lab()
        {
            Topology.Link(Lan, "eth0", ["192.168.50.2/24", "fd50::2/64"], Gateway, "lan0", ["192.168.50.1/24", "fd50::1/64"]);
            Topology.Link(Gateway, "wan1", ["198.51.100.2/24", "fd01::2/64"], Router1, "w1", ["198.51.100.1/24", "fd01::1/64"]);
            Topology.Link(Gateway, "wan2", ["203.0.113.2/24", "fd02::2/64"], Router2, "w2", ["203.0.113.1/24", "fd02::1/64"]);
            Topology.Link(Router1, "i1", ["100.64.1.1/24", "fd64:1::1/64"], Host, "i1", ["100.64.1.2/24", "fd64:1::2/64"]);
            Topology.Link(Router2, "i2", ["100.64.2.1/24", "fd64:2::1/64"], Host, "i2", ["100.64.2.2/24", "fd64:2::2/64"]);
            Lan.Ip("route", "add", "default", "via", "192.168.50.1");
            Lan.Ip("-6", "route", "add", "default", "via", "fd50::1");
            Host.Ip("addr", "add", Internet + "/32", "dev", "lo");
            Host.Ip("-6", "addr", "add", Internet6 + "/128", "dev", "lo");
            foreach (var (router, n) in new[] { (Router1, 1), (Router2, 2) })
            {
                router.Forwarding();
                RoutesToTheLan(router, n);
                router.Ip("route", "add", Internet, "via", $"100.64.{n}.2", "dev", $"i{n}");
                router.Ip("-6", "route", "add", Internet6, "via", $"fd64:{n}::2", "dev", $"i{n}");
                // The NAT router: what leaves to the internet host is masqueraded; what it forwards from the LAN host is counted.
                router.Nft($$"""
                    table ip nat {
                        chain post {
                            type nat hook postrouting priority 100;
                            oifname "i{{n}}" masquerade
                        }
                    }
                    table ip6 nat {
                        chain post {
                            type nat hook postrouting priority 100;
                            oifname "i{{n}}" masquerade
                        }
                    }
                    table inet count {
                        chain counted {
                            type filter hook forward priority 0;
                            ip saddr 192.168.50.2 counter
                            ip6 saddr fd50::2 counter
                        }
                    }
                    """).ShouldSucceed();
            }
            Gateway.Forwarding();
        }

        /// <summary>Router <paramref name="n"/>'s address on its uplink and its routes back to the LAN, both families (a link
        /// set down takes the IPv6 address and the routes over it: the router's own configuration puts them back).</summary>
        public static void RoutesToTheLan(NetNs router, int n)
        {
            router.Ip("-6", "addr", "replace", $"fd0{n}::1/64", "dev", $"w{n}", "nodad");
            router.Ip("route", "replace", "192.168.50.0/24", "via", n == 1 ? "198.51.100.2" : "203.0.113.2", "dev", $"w{n}");
            router.Ip("-6", "route", "replace", "fd50::/64", "via", $"fd0{n}::2", "dev", $"w{n}");
        }

        /// <summary>The LAN host's packets of one family that the router forwarded.</summary>
        public long Counted(NetNs router, bool v6 = false)
        {
            var m = Regex.Matches(router.NftList("chain", "inet", "count", "counted"), @"counter packets (\d+)");
            return m.Count == 2 ? long.Parse(m[v6 ? 1 : 0].Groups[1].Value) : throw new InvalidOperationException("no counters in " + router.Name);
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

        public Pinger(NetNs ns, string target)
        {
            var psi = new ProcessStartInfo("/usr/sbin/ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in (string[])["netns", "exec", ns.Name, "/usr/bin/stdbuf", "-oL", "/usr/bin/ping", target.Contains(':') ? "-6" : "-4", "-n", "-i", "0.1", target]) psi.ArgumentList.Add(a);
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

    /// <summary>The gateway's policy: both uplinks tracked by 1 s probes to the internet host, the LAN into table out,
    /// which is FailClosed and follows <paramref name="failover"/>. <paramref name="both"/>: IPv6 too (the LAN's prefix into
    /// table out, each uplink's IPv6 gateway, probes to the internet host's IPv6 address).</summary>
    static string Policy(Lab lab, string failover, string sysctls = "", bool both = false)
    {
        var (rule6, targets) = both ? (", \"from fd50::/64 lookup out\"", $"{Internet} {Internet6}") : ("", Internet);
        // With IPv6, the uplink's addresses of both families are read from its device (an Address would be one family's).
        string Addressed(int n, string address, string gateway) =>
            both ? $"\"Gateway\": \"{gateway}\", \"Gateway6\": \"fd0{n}::1\"" : $"\"Address\": \"{address}\", \"Gateway\": \"{gateway}\"";
        return Topology.Policy(lab.Gateway, $$"""
            { "Tables": { "wan1": 11, "wan2": 12, "out": 200 },
              "FailClosed": [ "out" ],
              "Rules": [ "from 192.168.50.0/24 lookup out"{{rule6}} ],
              "Sysctls": { {{sysctls}} },
              "Uplinks": [
                { "Name": "wan1", "Interface": "wan1", "Table": "wan1", {{Addressed(1, "198.51.100.2/24", "198.51.100.1")}},
                  "Track": "{{targets}} interval 1 down 3 up 3 hold {{HoldSeconds}}" },
                { "Name": "wan2", "Interface": "wan2", "Table": "wan2", {{Addressed(2, "203.0.113.2/24", "203.0.113.1")}},
                  "Track": "{{targets}} interval 1 down 3 up 3 hold {{HoldSeconds}}" } ],
              "Failover": [ "{{failover}}" ] }
            """);
    }

    [Theory]
    [InlineData(Kill.Carrier)]
    [InlineData(Kill.Gateway)]
    [InlineData(Kill.Path)]
    public void Uplink_1_dies_traffic_flows_by_uplink_2_and_comes_back_after_the_hold(Kill how) => FailsOverAndBack(how, v6: false);

    /// <summary>The same over IPv6: the policy has both families, the LAN host pings the internet host's IPv6 address.</summary>
    [Theory]
    [InlineData(Kill.Carrier)]
    [InlineData(Kill.Gateway)]
    [InlineData(Kill.Path)]
    public void Over_IPv6_uplink_1_dies_traffic_flows_by_uplink_2_and_comes_back_after_the_hold(Kill how) => FailsOverAndBack(how, v6: true);

    void FailsOverAndBack(Kill how, bool v6)
    {
        var (family, ip, target, gw1, gw2) = v6 ? ("IPv6", "-6", Internet6, "fd01::1", "fd02::1") : ("IPv4", "-4", Internet, "198.51.100.1", "203.0.113.1");
        using var lab = new Lab();
        var policy = Policy(lab, "table out via wan1 wan2", both: v6);
        using var watch = new WatchProcess(lab.Gateway, ["-c", policy]);
        Assert.Contains($"{gw1} dev wan1", lab.Gateway.Ip(ip, "route", "show", "table", "200"));
        using var ping = new Pinger(lab.Lan, target);
        Eventually.True(() => lab.Counted(lab.Router1, v6) >= 10, () => $"no LAN traffic ({family}) through router 1:\n{watch.Output}");

        var killedAt = ping.Now;
        var clock = Stopwatch.StartNew();
        Break(lab, how, broken: true);
        var before2 = lab.Counted(lab.Router2, v6);
        Eventually.True(() => lab.Counted(lab.Router2, v6) > before2 + 5, () => $"no LAN traffic ({family}) through router 2 after uplink 1 died ({how}):\n{watch.Output}");
        var flowing = ping.Now;
        Eventually.True(() => ping.AnsweredSince(flowing), () => $"pings are not answered through uplink 2:\n{watch.Output}");
        var failover = ping.LongestGapMs(killedAt);
        Assert.Contains(gw1, lab.Gateway.Ip(ip, "route", "show", "table", "11")); // uplink 1's own table keeps its reply routing
        Assert.Contains($"{gw2} dev wan2", lab.Gateway.Ip(ip, "route", "show", "table", "200"));
        if (how == Kill.Carrier && !v6)
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
        var before1 = lab.Counted(lab.Router1, v6);
        Eventually.True(() => lab.Counted(lab.Router1, v6) > before1 + 5, () => $"traffic ({family}) did not fail back to uplink 1 ({how}):\n{watch.Output}", 60_000);
        var failback = clock.Elapsed;
        var back = ping.Now;
        Eventually.True(() => ping.AnsweredSince(back), () => $"pings are not answered through uplink 1 again:\n{watch.Output}");
        var gapBack = ping.LongestGapMs(restoredAt);

        output.WriteLine($"{family}, {how}: time without answers until traffic flowed via uplink 2: {failover} ms (pings every 100 ms; " +
                         $"router 2 had counted it {flowing - killedAt} ms after the kill); fail-back {failback.TotalSeconds:0.0} s after uplink 1 returned " +
                         $"(3 answered 1 s probes + hold {HoldSeconds} s), {gapBack} ms without answers then");
        Assert.Equal(1, Regex.Count(watch.Output, $"uplink wan1 {family} is down"));
        Assert.Contains($"uplink wan1 {family} has been up for its hold", watch.Output);
    }

    [Fact]
    public void An_uplink_whose_carrier_flaps_every_2_s_moves_the_route_away_once_and_back_once_after_the_hold()
    {
        // A minute of flapping, as the issue asks (30 flaps of 1 s down, 1 s up); the count is printed and bounded.
        const int Flaps = 30;
        using var lab = new Lab();
        var policy = Policy(lab, "table out via wan1 wan2");
        using var watch = new WatchProcess(lab.Gateway, ["-c", policy]);
        Assert.Contains("198.51.100.1 dev wan1", lab.Gateway.Ip("route", "show", "table", "200"));
        static int Moves(string log) => Regex.Count(log, @"\[#\] ip -4 route (add|replace|del) default via \S+ dev wan\d table (200|out)");
        var before = Moves(watch.Output);

        var clock = Stopwatch.StartNew();
        for (var i = 0; i < Flaps; i++)
        {
            lab.Router1.Ip("link", "set", "w1", "down");
            Thread.Sleep(1000);
            lab.Router1.Ip("link", "set", "w1", "up");
            Lab.RoutesToTheLan(lab.Router1, 1);
            Thread.Sleep(1000);
        }
        var flapped = clock.Elapsed;
        Assert.Contains("203.0.113.1 dev wan2", lab.Gateway.Ip("route", "show", "table", "200"));
        var during = Moves(watch.Output) - before;
        // Stable again: the route comes back once, after 3 answered probes and the hold.
        Eventually.True(() => lab.Gateway.Ip("route", "show", "table", "200").Contains("198.51.100.1 dev wan1"), () => watch.Output, 60_000);
        var back = clock.Elapsed - flapped;
        var total = Moves(watch.Output) - before;

        output.WriteLine($"{Flaps} carrier flaps of uplink 1 in {flapped.TotalSeconds:0.0} s (down 1 s, up 1 s): {during} change(s) of table out's default while it flapped, " +
                         $"{total} in all; back {back.TotalSeconds:0.0} s after the last flap (up 3 probes + hold {HoldSeconds} s)");
        Assert.Equal(1, during);
        Assert.Equal(2, total);
    }

    /// <summary>One UDP datagram from each of <paramref name="count"/> source ports of the LAN host to the internet host: as
    /// many flows, which the L4 hash spreads over a balancing table's uplinks.</summary>
    static void SendFlows(NetNs lan, int count, int firstPort = 20000) => lan.Inside(() =>
    {
        var to = new System.Net.IPEndPoint(System.Net.IPAddress.Parse(Internet), 9);
        for (var port = firstPort; port < firstPort + count; port++)
        {
            using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp);
            socket.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Parse("192.168.50.2"), port));
            socket.SendTo("flow"u8, to);
        }
    });

    /// <summary>How many of the LAN host's packets each router counts while <paramref name="send"/> runs, once the counts settle.</summary>
    static (long Router1, long Router2) CountedWhile(Lab lab, Action send)
    {
        var (r1, r2) = (lab.Counted(lab.Router1), lab.Counted(lab.Router2));
        send();
        long total = -1;
        // The datagrams are forwarded as they are sent; wait until two reads agree (no clock is asserted).
        Eventually.True(() =>
        {
            var now = lab.Counted(lab.Router1) + lab.Counted(lab.Router2);
            var settled = now == total;
            total = now;
            return settled;
        }, () => "the routers' counters did not settle");
        return (lab.Counted(lab.Router1) - r1, lab.Counted(lab.Router2) - r2);
    }

    [Fact]
    public void A_weighted_table_splits_1000_flows_by_weight_moves_a_dead_uplinks_flows_and_falls_to_its_kill_switch_with_none_left()
    {
        const int Flows = 1000;
        using var lab = new Lab();
        var policy = Policy(lab, "table out via wan1 weight 3 wan2 weight 1", sysctls: "\"net.ipv4.fib_multipath_hash_policy\": \"1\"");
        using var watch = new WatchProcess(lab.Gateway, ["-c", policy]);
        var route = lab.Gateway.Ip("route", "show", "table", "200");
        Assert.Matches(@"default nhid \d+ ", route);
        var group = Regex.Match(route, @"nhid (\d+)").Groups[1].Value;
        Assert.Matches(@"group \d+,3/\d+ ", lab.Gateway.Ip("nexthop", "show", "id", group));

        var (one, two) = CountedWhile(lab, () => SendFlows(lab.Lan, Flows));
        output.WriteLine($"weights 3:1, {Flows} UDP flows (L4 hash): router 1 counted {one}, router 2 {two} (expected 750 and 250)");
        Assert.Equal(Flows, one + two);
        // Within 10 % of the flows of the weights' split.
        Assert.InRange(one, Flows * 3 / 4 - Flows / 10, Flows * 3 / 4 + Flows / 10);

        // Uplink 1's path dies: watch takes it out of the group (one change), and every flow, its own and uplink 2's, leaves by uplink 2.
        static int RouteChanges(string log) => Regex.Count(log, @"\[#\] ip -4 route (add|replace|del) default nhid");
        var routeChanges = RouteChanges(watch.Output);
        Break(lab, Kill.Path, broken: true);
        Eventually.True(() => watch.Output.Contains("uplink wan1 IPv4 is down"), () => $"watch did not see uplink 1 die:\n{watch.Output}");
        Eventually.True(() => !lab.Gateway.Ip("nexthop", "show", "id", group).Contains(','), () => lab.Gateway.Ip("nexthop", "show"));
        // One group rewritten, the route left as it was.
        Assert.Equal(1, Regex.Count(watch.Output, $@"\[#\] ip nexthop replace id {group} group \d+ proto"));
        Assert.Equal(routeChanges, RouteChanges(watch.Output));
        Assert.Contains($"default nhid {group} ", lab.Gateway.Ip("route", "show", "table", "200"));
        var (oneAfter, twoAfter) = CountedWhile(lab, () => SendFlows(lab.Lan, Flows));
        output.WriteLine($"uplink 1 dead: router 1 counted {oneAfter} (its router forwards nothing now), router 2 {twoAfter} of the same {Flows} flows");
        Assert.Equal(Flows, twoAfter);

        // Uplink 2 dies too: the route and its group go, the kill switch refuses the traffic; nothing leaves by either router.
        lab.Router2.Nft("table inet cut {\n chain cutoff {\n type filter hook forward priority -10; policy drop;\n }\n}\n").ShouldSucceed();
        Eventually.True(() => !lab.Gateway.Ip("route", "show", "table", "200").Contains("nhid"), () => $"{lab.Gateway.Ip("route", "show", "table", "200")}\n{watch.Output}");
        Assert.Contains("unreachable default", lab.Gateway.Ip("route", "show", "table", "200"));
        // Counted where it would leave the gateway (the routers drop forwarded traffic now, so they cannot tell).
        lab.Gateway.Nft("table inet leaks {\n chain out {\n type filter hook postrouting priority 0;\n ip saddr 192.168.50.2 oifname { \"wan1\", \"wan2\" } counter\n }\n}\n").ShouldSucceed();
        SendFlows(lab.Lan, 100);
        Assert.Matches(@"counter packets 0 ", lab.Gateway.NftList("chain", "inet", "leaks", "out"));
        // The kernel's own answer for a LAN packet: the kill switch (unreachable) refuses it.
        var refused = lab.Gateway.Exec("/usr/sbin/ip", ["route", "get", Internet, "from", "192.168.50.2", "iif", "lan0"]);
        Assert.Contains("No route to host", refused.Stderr);
    }

    static void Break(Lab lab, Kill how, bool broken)
    {
        switch (how)
        {
            case Kill.Carrier:
                lab.Router1.Ip("link", "set", "w1", broken ? "down" : "up");
                // A link set down takes the router's routes over it (and its IPv6 address): its own configuration puts them back.
                if (!broken) Lab.RoutesToTheLan(lab.Router1, 1);
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
