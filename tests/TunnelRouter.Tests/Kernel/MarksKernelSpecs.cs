using System.Net.Sockets;
using System.Text.Json;
using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.Seed002;

namespace TunnelRouter.Tests.Kernel;

/// <summary>
/// Seed 002's router in namespaces: the router (R) with a VPN uplink (V, 5.5.5.1), a WAN uplink (W,
/// 172.20.10.1) and a LAN client (L, 192.168.192.10), each a namespace joined by veth. The routes and
/// "fwmark 0xf2 lookup vpn" / "fwmark 0xf1 lookup wan" rules are the seed's, typed with ip as the seed does;
/// the marks come from the published binary's apply. Real packets show which uplink they leave by.
/// </summary>
public sealed class Seed002Lab : IDisposable
{
    public const string Internet = "198.51.100.7", Internet6 = "2001:db8::7";
    const string VpnTable = "10", WanTable = "20";

    public NetNs R { get; } = new();
    public NetNs V { get; } = new();
    public NetNs W { get; } = new();
    public NetNs L { get; } = new();

    public Seed002Lab()
    {
        // A new namespace copies the host's IPv4 conf/all and conf/default; a host with rp_filter or
        // ip_forward set must not decide what these tests see, so every namespace starts from the kernel's defaults.
        foreach (var ns in new[] { R, V, W, L })
            ns.Exec("/usr/sbin/sysctl", ["-qw", "net.ipv4.ip_forward=0", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"]).ShouldSucceed();
        Links.Veth(R, "vpn0", [IpVpn + "/24", "fd00:5::2/64"], V, "eth0", [GwVpn + "/24", "fd00:5::1/64"]);
        Links.Veth(R, "wan0", [IpWan + "/28", "fd00:20::2/64"], W, "eth0", [GwWan + "/28", "fd00:20::1/64"]);
        Links.Veth(R, "lan0", ["192.168.192.2/24"], L, "eth0", ["192.168.192.10/24"]);
        L.Ip("route", "add", "default", "via", "192.168.192.2");
        // The uplinks route back to the router, as the VPN server and the ISP do.
        V.Ip("route", "add", "default", "via", IpVpn);
        W.Ip("route", "add", "default", "via", IpWan);

        // OpenWrt's interfaces: wan is the default (metric 2), vpn a second default (metric 10).
        R.Ip("route", "add", "default", "via", GwWan, "dev", "wan0", "metric", "2");
        R.Ip("route", "add", "default", "via", GwVpn, "dev", "vpn0", "metric", "10");
        R.Ip("-6", "route", "add", "default", "via", "fd00:20::1", "dev", "wan0");
        // Complete configuration: define route tables and rules.
        R.Ip("route", "add", "default", "via", GwVpn, "src", IpVpn, "dev", "vpn0", "table", VpnTable, "metric", "10");
        R.Ip("route", "add", "default", "via", GwWan, "src", IpWan, "dev", "wan0", "table", WanTable, "metric", "2");
        R.Ip("-6", "route", "add", "default", "via", "fd00:5::1", "dev", "vpn0", "table", VpnTable);
        R.Ip("rule", "add", "fwmark", MarkVpn, "table", VpnTable, "pref", "100");
        R.Ip("rule", "add", "fwmark", MarkWan, "table", WanTable, "pref", "101");
        R.Ip("-6", "rule", "add", "fwmark", MarkVpn, "table", VpnTable, "pref", "100");
    }

    /// <summary>Seed 002's marks plus an IPv6 twin of "source IP_VPN goes through the VPN", and the
    /// router's forwarding switched on through the policy's Sysctls.</summary>
    public static string Policy(string? marks = null, string sysctls = """{ "net.ipv4.ip_forward": "1" }""") => $$"""
        {
          "Marks": {{marks ?? MarksWithV6()}},
          "Sysctls": {{sysctls}}
        }
        """;

    static string MarksWithV6() =>
        MarksJson().TrimEnd(']', '\n', ' ') + ",\n    { \"Chain\": \"output\", \"Source\": \"fd00:5::2\", \"Destination\": \"!fd00:192::/64\", \"Mark\": \"0xf2\" }\n  ]";

    public string WritePolicy(string json)
    {
        var path = Path.Combine(R.StateDir, "policy.json");
        File.WriteAllText(path, json);
        return path;
    }

    public RunResult Run(string json, params string[] command) =>
        TunnelRouterProcess.Run(R, [.. command, "--config", WritePolicy(json)]);

    public string Out(string? src, int sport, string dst = Internet, int dport = 7000, ProtocolType proto = ProtocolType.Tcp) =>
        Probe.Where(R, proto, src, sport, dst, dport, ("vpn", V), ("wan", W));

    public string Lan(int sport, string dst = Internet, int dport = 7000, ProtocolType proto = ProtocolType.Tcp) =>
        Probe.Where(L, proto, null, sport, dst, dport, ("vpn", V), ("wan", W));

    public void Dispose()
    {
        R.Dispose(); V.Dispose(); W.Dispose(); L.Dispose();
    }
}

public class MarksKernelSpecs
{
    static int TablesNamed(NetNs ns, string name) =>
        ns.NftList("tables").Split('\n').Count(l => l.Trim() == $"table inet {name}");

    [Fact]
    public void Seed_002s_marks_steer_the_routers_and_the_lans_traffic_to_the_uplink_the_seed_intends()
    {
        using var lab = new Seed002Lab();
        // Before: everything the router sends takes main's default, the WAN.
        Assert.Equal("wan", lab.Out(IpVpn, 40000));
        Assert.Equal("wan", lab.Out("192.168.192.2", 80));
        Assert.Equal("wan", lab.Out("fd00:5::2", 40000, Seed002Lab.Internet6));

        lab.Run(Seed002Lab.Policy(), "apply").ShouldSucceed();

        // output: source port 80 goes through the VPN unless the destination is the LAN ...
        Assert.Equal("vpn", lab.Out("192.168.192.2", 80));
        Assert.Equal("wan", lab.Out("192.168.192.2", 81));
        // ... source IP_VPN through the VPN, source IP_WAN through the WAN ...
        Assert.Equal("vpn", lab.Out(IpVpn, 40000));
        Assert.Equal("wan", lab.Out(IpWan, 40000));
        // ... and a later match overrides an earlier one: port 80 from IP_WAN is marked 0xf2, then 0xf1.
        Assert.Equal("wan", lab.Out(IpWan, 80));
        // IPv6 alike, through the same inet table.
        Assert.Equal("vpn", lab.Out("fd00:5::2", 40000, Seed002Lab.Internet6));
        Assert.Equal("wan", lab.Out("fd00:20::2", 40000, Seed002Lab.Internet6));

        // prerouting: LAN source ports 80,443 (tcp and udp) through the VPN, others by main ...
        Assert.Equal("vpn", lab.Lan(443));
        Assert.Equal("vpn", lab.Lan(80, proto: ProtocolType.Udp));
        Assert.Equal("wan", lab.Lan(8443));
        // ... and to NET_WAN the mark is cleared: main's connected route, not the vpn table's default.
        Assert.Equal("wan", lab.Lan(443, GwWan));
        Assert.Equal("1", lab.R.Sysctl("net.ipv4.ip_forward"));
    }

    [Fact]
    public void Protocol_and_port_matches_work_without_netfilter_as_native_ip_rules()
    {
        using var lab = new Seed002Lab();
        lab.Run(Seed002Lab.Policy(marks: "[]"), "apply").ShouldSucceed();
        // What docs/marks.md offers instead of a mark when nothing needs netfilter: one rule per port range.
        lab.R.Ip("rule", "add", "ipproto", "tcp", "sport", "80", "lookup", "10", "pref", "90");
        lab.R.Ip("rule", "add", "iif", "lan0", "ipproto", "udp", "sport", "440-443", "lookup", "10", "pref", "91");

        Assert.Equal("vpn", lab.Out("192.168.192.2", 80));
        Assert.Equal("wan", lab.Out("192.168.192.2", 81));
        Assert.Equal("vpn", lab.Lan(443, proto: ProtocolType.Udp));
        Assert.Equal("wan", lab.Lan(443));
        Assert.Equal(0, TablesNamed(lab.R, "tunnel_router"));
    }

    [Fact]
    public void Output_marks_are_cleared_for_the_excluded_destinations()
    {
        using var lab = new Seed002Lab();
        lab.Run(Seed002Lab.Policy(), "apply").ShouldSucceed();
        // The marks a packet leaves with, counted after the mangle chains (both go out by vpn0 either way).
        lab.R.Nft("""
            table inet observe {
            	chain post {
            		type filter hook postrouting priority srcnat; policy accept;
            		th dport 7100 meta mark 0x00000000 counter
            		th dport 7100 meta mark 0x000000f2 counter
            	}
            }
            """).ShouldSucceed();

        Probe.Send(lab.R, ProtocolType.Tcp, IpVpn, 40001, "5.5.5.77", 7100);
        Probe.Send(lab.R, ProtocolType.Tcp, IpVpn, 40002, Seed002Lab.Internet, 7100);

        var counters = System.Text.RegularExpressions.Regex.Matches(lab.R.NftList("table", "inet", "observe"), @"counter packets (\d+)")
            .Select(m => long.Parse(m.Groups[1].Value)).ToArray();
        Assert.True(counters[0] >= 1, "to NET_VPN from IP_VPN: mark cleared");
        Assert.True(counters[1] >= 1, "to the internet from IP_VPN: mark 0xf2");
    }

    [Fact]
    public void Applying_twice_keeps_one_table_and_the_second_apply_and_plan_change_nothing()
    {
        using var lab = new Seed002Lab();
        var policy = Seed002Lab.Policy();
        var first = lab.Run(policy, "apply").ShouldSucceed();
        var listing = lab.R.NftList("table", "inet", "tunnel_router");

        var second = lab.Run(policy, "apply").ShouldSucceed();
        var plan = lab.Run(policy, "plan");

        Assert.Contains("[#] nft -f - <<'EOF'", first.Stderr);
        Assert.DoesNotContain("[#]", second.Stderr);
        Assert.Equal(0, plan.ExitCode);
        Assert.Equal("", plan.Stdout);
        Assert.Equal(1, TablesNamed(lab.R, "tunnel_router"));
        Assert.Equal(listing, lab.R.NftList("table", "inet", "tunnel_router"));
    }

    [Fact]
    public void An_edited_policy_replaces_the_table_and_a_policy_without_marks_removes_it()
    {
        using var lab = new Seed002Lab();
        lab.Run(Seed002Lab.Policy(), "apply").ShouldSucceed();
        var edited = Seed002Lab.Policy(marks: """[ { "Chain": "output", "Source": "172.20.10.2", "Mark": "0xf2" } ]""");

        var plan = lab.Run(edited, "plan");
        lab.Run(edited, "apply").ShouldSucceed();

        Assert.Equal(2, plan.ExitCode);
        Assert.Contains("ip saddr 172.20.10.2 meta mark set 0x000000f2", plan.Stdout);
        Assert.Equal("vpn", lab.Out(IpWan, 40000));
        Assert.Equal("wan", lab.Out(IpVpn, 40000));
        Assert.Equal(1, TablesNamed(lab.R, "tunnel_router"));

        var removed = lab.Run(Seed002Lab.Policy(marks: "[]"), "apply").ShouldSucceed();

        Assert.Contains("[#] nft delete table inet tunnel_router", removed.Stderr);
        Assert.Equal(0, TablesNamed(lab.R, "tunnel_router"));
        Assert.Equal("wan", lab.Out(IpWan, 40000));
    }

    [Fact]
    public void Flush_deletes_our_table_and_nothing_else_and_leaves_sysctls_as_set()
    {
        using var lab = new Seed002Lab();
        lab.R.Nft("""
            table inet foreign {
            	chain output {
            		type route hook output priority mangle; policy accept;
            		meta mark 0x00000007 counter
            	}
            }
            table ip fw {
            	chain input {
            		type filter hook input priority filter; policy accept;
            	}
            }
            """).ShouldSucceed();
        var foreign = lab.R.NftList("table", "inet", "foreign") + lab.R.NftList("table", "ip", "fw");
        var routing = lab.R.Dump();
        lab.Run(Seed002Lab.Policy(), "apply").ShouldSucceed();

        var flush = lab.Run(Seed002Lab.Policy(), "flush").ShouldSucceed();

        Assert.Contains("[#] nft delete table inet tunnel_router", flush.Stderr);
        Assert.Equal(0, TablesNamed(lab.R, "tunnel_router"));
        Assert.Equal(foreign, lab.R.NftList("table", "inet", "foreign") + lab.R.NftList("table", "ip", "fw"));
        Assert.Equal(routing, lab.R.Dump());
        Assert.Equal("1", lab.R.Sysctl("net.ipv4.ip_forward"));
        Assert.Equal("wan", lab.Out(IpVpn, 40000));
        // A second flush finds nothing to do.
        Assert.DoesNotContain("[#]", lab.Run(Seed002Lab.Policy(), "flush").ShouldSucceed().Stderr);
    }

    [Fact]
    public void Status_shows_the_table_and_whether_it_is_as_in_the_policy()
    {
        using var lab = new Seed002Lab();
        lab.Run(Seed002Lab.Policy(), "apply").ShouldSucceed();

        var text = lab.Run(Seed002Lab.Policy(), "status").ShouldSucceed().Stdout;
        var json = lab.Run(Seed002Lab.Policy(), "status", "--json").ShouldSucceed().Stdout;
        var stale = lab.Run(Seed002Lab.Policy(marks: """[ { "Chain": "output", "Protocol": "udp", "Mark": "1" } ]"""), "status").ShouldSucceed().Stdout;

        Assert.Contains("nftables table inet tunnel_router (as in the policy):", text);
        Assert.Contains("    ip saddr 5.5.5.2 ip daddr != 192.168.192.0/24 meta mark set 0x000000f2", text);
        Assert.Contains("  net.ipv4.ip_forward = 1", text);
        using var doc = JsonDocument.Parse(json);
        var marks = doc.RootElement.GetProperty("marks");
        Assert.Equal("inet tunnel_router", marks.GetProperty("table").GetString());
        Assert.Matches("^[0-9a-f]{16}$", marks.GetProperty("fingerprint").GetString());
        Assert.Contains("chain prerouting", marks.GetProperty("ruleset").GetString());
        Assert.True(doc.RootElement.GetProperty("sysctls")[0].GetProperty("asInPolicy").GetBoolean());
        Assert.Contains("(differs from the policy; run apply)", stale);
    }

    [Fact]
    public void A_failed_apply_restores_the_previous_table()
    {
        using var lab = new Seed002Lab();
        lab.Run(Seed002Lab.Policy(), "apply").ShouldSucceed();
        var before = lab.R.NftList("table", "inet", "tunnel_router");
        // The kernel refuses a non-number for ip_forward only when it is written, after the new table is in.
        var failing = Seed002Lab.Policy(marks: """[ { "Chain": "output", "Source": "172.20.10.2", "Mark": "0xf2" } ]""",
            sysctls: """{ "net.ipv4.ip_forward": "yes" }""");

        var run = lab.Run(failing, "apply");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("sysctl -w net.ipv4.ip_forward=yes", run.Stderr);
        Assert.Contains("rolled back 1 change", run.Stderr);
        Assert.Equal(before, lab.R.NftList("table", "inet", "tunnel_router"));
        Assert.Equal("vpn", lab.Out(IpVpn, 40000));
    }

    [Fact]
    public void A_failed_first_apply_leaves_no_table_behind()
    {
        using var ns = new NetNs();
        var path = Path.Combine(ns.StateDir, "policy.json");
        File.WriteAllText(path, Seed002Lab.Policy(sysctls: """{ "net.ipv4.ip_forward": "yes" }"""));

        var run = TunnelRouterProcess.Run(ns, ["apply", "--config", path]);

        Assert.Equal(1, run.ExitCode);
        Assert.Equal(0, TablesNamed(ns, "tunnel_router"));
    }

    [Fact]
    public void Every_match_and_mark_form_loads_into_the_kernel_and_reads_back_as_in_the_policy()
    {
        using var ns = new NetNs();
        var marks = """
            [
              { "Chain": "output", "Family": "ipv6", "Protocol": "icmpv6", "Mark": "0x10", "Mask": "0xff" },
              { "Chain": "output", "Family": "ipv4", "Protocol": "icmp", "Mark": "clear", "Mask": "0xff00" },
              { "Chain": "output", "OutputInterface": "tun+", "Protocol": "sctp", "DestinationPorts": "80,1000-2000", "Mark": "4294967295" },
              { "Chain": "output", "Source": "!fd00::/8", "Destination": "2001:db8::1", "Protocol": "udp", "SourcePorts": "53", "DestinationPorts": "1024-65535", "Mark": "0xf1" },
              { "Chain": "prerouting", "InputInterface": "br-lan", "Protocol": "gre", "Mark": "0x1" },
              { "Chain": "prerouting", "Protocol": "esp", "Mark": "0x2" },
              { "Chain": "prerouting", "Protocol": "253", "Mark": "0x3" }
            ]
            """;
        var path = Path.Combine(ns.StateDir, "policy.json");
        File.WriteAllText(path, $$"""{ "Marks": {{marks}} }""");

        TunnelRouterProcess.Run(ns, ["apply", "--config", path]).ShouldSucceed();
        var plan = TunnelRouterProcess.Run(ns, ["plan", "--config", path]);

        Assert.Equal(0, plan.ExitCode);
        var listing = ns.NftList("table", "inet", "tunnel_router");
        Assert.Contains("oifname \"tun*\" sctp dport { 80, 1000-2000 } meta mark set 0xffffffff", listing);
        Assert.Contains("ip6 saddr != fd00::/8 ip6 daddr 2001:db8::1 udp sport 53 udp dport 1024-65535 meta mark set 0x000000f1", listing);
        Assert.Contains("iifname \"br-lan\" meta l4proto gre meta mark set 0x00000001", listing);
    }

    [Fact]
    public void A_bad_mark_is_refused_with_its_key_and_value_before_anything_changes()
    {
        using var ns = new NetNs();
        var path = Path.Combine(ns.StateDir, "policy.json");
        File.WriteAllText(path, """
            { "Marks": [ { "Chain": "output", "Mark": "1" }, { "Chain": "output", "Source": "5.5.5.300", "Mark": "0xf2" } ],
              "Sysctls": { "net.ipv4.ip_forward": "1" } }
            """);
        ns.Exec("/usr/sbin/sysctl", ["-qw", "net.ipv4.ip_forward=0"]).ShouldSucceed();

        var run = TunnelRouterProcess.Run(ns, ["apply", "--config", path]);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("Marks[1].Source: '5.5.5.300' is not a valid IP address", run.Stderr);
        Assert.Equal(0, TablesNamed(ns, "tunnel_router"));
        Assert.Equal("0", ns.Sysctl("net.ipv4.ip_forward"));
    }

    [Fact]
    public void An_unknown_key_in_a_mark_entry_is_refused()
    {
        using var ns = new NetNs();
        var path = Path.Combine(ns.StateDir, "policy.json");
        File.WriteAllText(path, """{ "Marks": [ { "Chain": "output", "SourcePort": "80", "Mark": "1" } ] }""");

        var run = TunnelRouterProcess.Run(ns, ["plan", "--config", path]);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("Marks[0].SourcePort: unknown key; did you mean 'SourcePorts'? (known: Chain, Family, Source", run.Stderr);
    }
}
