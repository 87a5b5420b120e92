using System.Diagnostics;
using System.Text.Json;
using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.Hardening;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary>
/// <c>doctor</c> in namespaces: each finding provoked for real, then fixed. The tests of this class run one
/// after another (one xUnit class), since two of them start stand-in processes named like network managers,
/// which the doctor of any other namespace would see too.
/// </summary>
public class DoctorSpecs
{
    /// <summary>The eduVPN gateway: a tunnel with its pool rule (hook), the policy's vpn table default route via
    /// the NAT router on wan, a mark rule, all forwarding and logging set right.</summary>
    static NetNs Gateway(out string policy)
    {
        var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24");
        AddVeth(ns, "wan", "192.168.1.2/24");
        Sysctl(ns, "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=2", "net.ipv4.conf.default.rp_filter=2",
            "net.ipv4.conf.all.log_martians=1");
        policy = WritePolicy(ns, Hardening.Policy(["default via 192.168.1.1 dev wan table vpn"],
            ["fwmark 0x10 lookup vpn pref 2000", "from 10.10.10.0/24 ipproto tcp dport 443 lookup vpn pref 2010"], "\"wan\": 100"));
        var env = SubnetEnv("tun0", "10.10.10.1", "255.255.255.0");
        env["TUNNEL_ROUTER_POOLRULES"] = "true";
        env["TUNNEL_ROUTER_CONFIG"] = policy;
        Run(ns, ["up"], env).ShouldSucceed();
        Run(ns, ["apply", "--config", policy]).ShouldSucceed();
        return ns;
    }

    static void Sysctl(NetNs ns, params string[] settings) => ns.Exec("/usr/sbin/sysctl", ["-qw", .. settings]).ShouldSucceed();

    static RunResult Doctor(NetNs ns, string policy, params string[] extra) => Run(ns, ["doctor", "--config", policy, .. extra]);

    static string Line(RunResult run, string check) =>
        run.Stdout.Split('\n').FirstOrDefault(l => l.Contains($"  {check}: ")) ?? throw new Xunit.Sdk.XunitException($"no {check} line in:\n{run.Stdout}");

    /// <summary>Runs the doctor in a mount namespace of its own, with <paramref name="mounts"/> done first
    /// (shell commands of the test, never of the product).</summary>
    static RunResult DoctorWithMounts(NetNs ns, string policy, string mounts)
    {
        var env = new Dictionary<string, string>
        {
            ["TUNNEL_ROUTER_IPROUTE2DIR"] = Path.Combine(ns.StateDir, "iproute2"),
            ["TUNNEL_ROUTER_CONFIG"] = "", // no policy file: the host's is never read
            ["TUNNEL_ROUTER_LOCKFILE"] = Path.Combine(ns.StateDir, "lock"),
        };
        return Sh.Run("/usr/bin/unshare", ["-m", "--propagation", "private", "/bin/sh", "-c",
            $"{mounts} && exec /usr/bin/ip netns exec \"$0\" \"$@\"", ns.Name, Prerequisites.Binary, "doctor", "--config", policy], env);
    }

    /// <summary>A process whose name the doctor reads in /proc: sleep, through a symlink named as asked (the
    /// kernel takes comm from the path exec'd). A link, not a copy: a copy still open for writing in a child
    /// another test thread forks at that moment fails exec with "Text file busy".</summary>
    sealed class StandIn : IDisposable
    {
        readonly string _dir = Directory.CreateTempSubdirectory("tunnel-router-standin-").FullName;
        readonly Process _process;

        public StandIn(string name)
        {
            var path = Path.Combine(_dir, name);
            File.CreateSymbolicLink(path, "/usr/bin/sleep");
            _process = Process.Start(path, "60");
        }

        public void Dispose()
        {
            _process.Kill();
            _process.WaitForExit();
            _process.Dispose();
            Directory.Delete(_dir, recursive: true);
        }
    }

    [Fact]
    public void A_well_set_up_gateway_passes_every_check_and_exits_0()
    {
        using var ns = Gateway(out var policy);
        var before = ns.Dump();

        var run = Doctor(ns, policy);

        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        Assert.Contains("No problems found.", run.Stdout);
        Assert.StartsWith("ok", Line(run, "forwarding"));
        Assert.StartsWith("ok", Line(run, "rp_filter"));
        Assert.StartsWith("ok", Line(run, "log_martians"));
        Assert.StartsWith("ok", Line(run, "tables"));
        Assert.StartsWith("ok", Line(run, "drift"));
        Assert.StartsWith("ok", Line(run, "nft"));
        var selectors = Line(run, "selectors");
        Assert.StartsWith("ok", selectors);
        foreach (var s in new[] { "fwmark", "from", "ipproto", "dport", "protocol" }) Assert.Contains(s, selectors);
        // The probe rules came and went; the doctor changed nothing.
        Assert.Equal(before, ns.Dump());
    }

    [Fact]
    public void Forwarding_off_where_the_policy_routes_traffic_is_a_problem_with_its_fix()
    {
        using var ns = Gateway(out var policy);
        Sysctl(ns, "net.ipv4.ip_forward=0");

        var run = Doctor(ns, policy);

        Assert.Equal(1, run.ExitCode);
        Assert.StartsWith("PROBLEM", Line(run, "forwarding"));
        Assert.Contains("fix: sysctl -w net.ipv4.ip_forward=1", run.Stdout);
    }

    [Fact]
    public void Strict_rp_filter_on_a_policy_interface_is_a_problem_and_silent_martians_a_note()
    {
        using var ns = Gateway(out var policy);
        Sysctl(ns, "net.ipv4.conf.all.rp_filter=1", "net.ipv4.conf.wan.rp_filter=1", "net.ipv4.conf.all.log_martians=0");

        var run = Doctor(ns, policy);

        Assert.Equal(1, run.ExitCode);
        var rp = Line(run, "rp_filter");
        Assert.StartsWith("PROBLEM", rp);
        Assert.Contains("wan", rp);
        Assert.Contains("martian", rp);
        Assert.Contains("net.ipv4.conf.wan.rp_filter=2", run.Stdout);
        Assert.StartsWith("note", Line(run, "log_martians"));
        Assert.Contains("log_martians=1", run.Stdout);

        Sysctl(ns, "net.ipv4.conf.all.rp_filter=2", "net.ipv4.conf.wan.rp_filter=2", "net.ipv4.conf.tun0.rp_filter=0", "net.ipv4.conf.all.log_martians=1");
        Assert.Equal(0, Doctor(ns, policy).ExitCode);
    }

    [Fact]
    public void Systemd_networkd_managing_foreign_rules_is_a_problem_until_it_is_told_not_to()
    {
        using var ns = Gateway(out var policy);
        var etc = Path.Combine(ns.StateDir, "systemd");
        Directory.CreateDirectory(Path.Combine(etc, "networkd.conf.d"));
        File.WriteAllText(Path.Combine(etc, "networkd.conf"), "[Network]\n#ManageForeignRoutingPolicyRules=yes\n#ManageForeignRoutes=yes\n");
        var mount = $"mount --bind {etc} /etc/systemd";
        using var networkd = new StandIn("systemd-networkd");

        var run = DoctorWithMounts(ns, policy, mount);

        Assert.Equal(1, run.ExitCode);
        var line = Line(run, "systemd-networkd");
        Assert.StartsWith("PROBLEM", line);
        Assert.Contains("ManageForeignRoutingPolicyRules=yes (default)", line);
        Assert.Contains("ManageForeignRoutingPolicyRules=no", run.Stdout);

        File.WriteAllText(Path.Combine(etc, "networkd.conf.d", "tunnel-router.conf"),
            "[Network]\nManageForeignRoutingPolicyRules=no\nManageForeignRoutes=no\n");
        var fixedRun = DoctorWithMounts(ns, policy, mount);

        Assert.True(fixedRun.ExitCode == 0, fixedRun.Stdout + fixedRun.Stderr);
        Assert.StartsWith("ok", Line(fixedRun, "systemd-networkd"));
    }

    [Fact]
    public void NetworkManager_running_is_a_problem()
    {
        using var ns = Gateway(out var policy);
        using var nm = new StandIn("NetworkManager");

        var run = Doctor(ns, policy);

        Assert.Equal(1, run.ExitCode);
        Assert.StartsWith("PROBLEM", Line(run, "NetworkManager"));
        Assert.Contains("unmanaged", run.Stdout);
    }

    [Fact]
    public void A_table_name_defined_twice_or_a_taken_table_id_is_a_problem()
    {
        using var ns = Gateway(out var policy);
        var d = Path.Combine(ns.StateDir, "iproute2", "rt_tables.d");
        File.WriteAllText(Path.Combine(d, "a.conf"), "150 lan1\n");
        File.WriteAllText(Path.Combine(d, "b.conf"), "151 lan1\n150 office\n");

        var run = Doctor(ns, policy);

        Assert.Equal(1, run.ExitCode);
        var tables = Line(run, "tables");
        Assert.StartsWith("PROBLEM", tables);
        Assert.Contains("'lan1' is 150", tables);
        Assert.Contains("150 is named 'lan1'", tables);

        File.Delete(Path.Combine(d, "a.conf"));
        File.Delete(Path.Combine(d, "b.conf"));
        // The hook's table "vpn2" would take id 100, which the policy already calls "wan".
        var taken = Run(ns, ["doctor", "--config", policy, "Table=vpn2", "TableId=100"]);
        Assert.Equal(1, taken.ExitCode);
        Assert.Contains("'vpn2' would take id 100", Line(taken, "tables"));
    }

    [Fact]
    public void A_table_the_policy_uses_but_nobody_defines_is_a_problem()
    {
        using var ns = Gateway(out _);
        var broken = WritePolicy(ns, Hardening.Policy(["default via 192.168.1.1 dev wan table office"], [], "\"wan\": 100"), "broken.json");

        var run = Doctor(ns, broken);

        Assert.Equal(1, run.ExitCode);
        var line = Line(run, "policy");
        Assert.StartsWith("PROBLEM", line);
        Assert.Contains("office", line);
    }

    [Fact]
    public void A_missing_nft_is_a_problem_when_the_policy_has_marks()
    {
        using var ns = Gateway(out var policy);

        // /usr/sbin hidden: nft is gone, ip is still found as /usr/bin/ip.
        var run = DoctorWithMounts(ns, policy, "mount -t tmpfs none /usr/sbin");

        Assert.Equal(1, run.ExitCode);
        var line = Line(run, "nft");
        Assert.StartsWith("PROBLEM", line);
        Assert.Contains("apt-get install nftables", run.Stdout);
    }

    [Fact]
    public void Owned_state_that_differs_from_the_policy_is_drift_until_apply()
    {
        using var ns = Gateway(out var policy);
        ns.Ip("route", "del", "default", "table", "200", "proto", "147");

        var run = Doctor(ns, policy);

        Assert.Equal(1, run.ExitCode);
        var drift = Line(run, "drift");
        Assert.StartsWith("PROBLEM", drift);
        Assert.Contains("route add default via 192.168.1.1 dev wan table vpn", drift);

        Run(ns, ["apply", "--config", policy]).ShouldSucceed();
        Assert.StartsWith("ok", Line(Doctor(ns, policy), "drift"));
    }

    [Fact]
    public void Json_output_lists_every_finding_with_its_level_and_fix()
    {
        using var ns = Gateway(out var policy);
        Sysctl(ns, "net.ipv4.ip_forward=0");

        var run = Doctor(ns, policy, "--json");

        Assert.Equal(1, run.ExitCode);
        using var doc = JsonDocument.Parse(run.Stdout);
        Assert.False(doc.RootElement.GetProperty("ok").GetBoolean());
        var findings = doc.RootElement.GetProperty("findings").EnumerateArray().ToList();
        var forwarding = Assert.Single(findings, f => f.GetProperty("check").GetString() == "forwarding");
        Assert.Equal("problem", forwarding.GetProperty("level").GetString());
        Assert.Contains("ip_forward=1", forwarding.GetProperty("fix").GetString());
        Assert.Contains(findings, f => f.GetProperty("check").GetString() == "drift" && f.GetProperty("level").GetString() == "ok");
    }

    /// <summary>Seed 004's server: two uplinks, reply routing for its own addresses, nothing forwarded; forwarding
    /// off and strict rp_filter, as such a host has them.</summary>
    static NetNs Seed004(out string policy)
    {
        var ns = new NetNs();
        AddVeth(ns, "eth0", "192.168.1.6/24");
        AddVeth(ns, "eth1", "192.168.2.2/24");
        ns.Ip("route", "add", "default", "via", "192.168.1.1", "dev", "eth0");
        Sysctl(ns, "net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0", "net.ipv4.conf.all.rp_filter=1", "net.ipv4.conf.all.log_martians=1");
        policy = Topology.Example(ns, "multihomed-reply-routing.json");
        Run(ns, ["apply", "--config", policy]).ShouldSucceed();
        return ns;
    }

    /// <summary>Seed 003's VPN server: pools from tun0 leave through the NAT router on eth1, both families; it
    /// forwards, as the how-to's server does.</summary>
    static NetNs Seed003(out string policy)
    {
        var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24", "fd00:4242:4242:4242::1/64");
        AddVeth(ns, "eth0", "192.168.178.2/24");
        AddVeth(ns, "eth1", "192.168.1.100/24");
        ns.Ip("-6", "addr", "add", "fd00:1010:1010:1010::100/64", "dev", "eth1", "nodad");
        ns.Ip("route", "add", "default", "via", "192.168.178.1");
        Sysctl(ns, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv4.conf.all.rp_filter=1", "net.ipv4.conf.all.log_martians=1");
        policy = Topology.Example(ns, "eduvpn-nat-router.json");
        Run(ns, ["apply", "--config", policy]).ShouldSucceed();
        var env = SubnetEnv("tun0", "10.10.10.1", "255.255.255.0", "fd00:4242:4242:4242::1", 64);
        env["TUNNEL_ROUTER_CONFIG"] = policy;
        Run(ns, ["up"], env).ShouldSucceed();
        return ns;
    }

    [Fact]
    public void Seed_004s_reply_routing_forwards_nothing_and_doctor_finds_no_problem()
    {
        using var ns = Seed004(out var policy);

        var run = Doctor(ns, policy);

        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        Assert.Contains("No problems found.", run.Stdout);
        Assert.Equal("ok       forwarding: the policy routes only this host's own traffic; forwarding is not needed", Line(run, "forwarding"));
        Assert.Equal("ok       rp_filter: the policy's rules select by address only, which the reverse-path check sees too: no martian drops from it", Line(run, "rp_filter"));
        Assert.DoesNotContain("forwarding=1", run.Stdout);
    }

    [Fact]
    public void Seed_003s_vpn_server_forwards_both_families_and_doctor_finds_no_problem()
    {
        using var ns = Seed003(out var policy);

        var run = Doctor(ns, policy);

        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        Assert.Contains("No problems found.", run.Stdout);
        Assert.Contains("ok       forwarding: net.ipv4.ip_forward = 1", run.Stdout);
        Assert.Contains("ok       forwarding: net.ipv6.conf.all.forwarding = 1", run.Stdout);
    }

    [Fact]
    public void IPv6_forwarding_is_never_advised_without_the_accept_ra_2_caveat()
    {
        using var ns = Seed003(out var policy);
        Sysctl(ns, "net.ipv6.conf.all.forwarding=0", "net.ipv6.conf.eth0.accept_ra=1", "net.ipv6.conf.eth0.autoconf=1");

        var run = Doctor(ns, policy);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("PROBLEM  forwarding: net.ipv6.conf.all.forwarding = 0: the policy forwards IPv6 traffic (rule 2010 routes packets from fd00:4242:4242:4242::/64, which is not an address of this host), but this host does not forward it",
            run.Stdout);
        Assert.Contains("fix: first sysctl -w net.ipv6.conf.eth0.accept_ra=2", run.Stdout);
        Assert.Contains("then sysctl -w net.ipv6.conf.all.forwarding=1", run.Stdout);
    }

    [Fact]
    public void A_gateway_the_kernel_would_refuse_is_the_kernels_to_fix_and_skips_no_other_check()
    {
        using var ns = new NetNs();
        AddVeth(ns, "wan", "192.168.1.2/24");
        Sysctl(ns, "net.ipv4.ip_forward=0");
        // 192.168.7.1 is on no network of wan: a valid policy the kernel would refuse.
        var policy = WritePolicy(ns, """
            { "Tables": { "vpn": 200 },
              "Rules": [ "from 10.10.10.0/24 lookup vpn" ], "Routes": [ "default via 192.168.7.1 dev wan table vpn" ] }
            """);

        var run = Doctor(ns, policy);

        Assert.Equal(1, run.ExitCode);
        Assert.StartsWith("PROBLEM  policy: the policy is valid, but apply would fail on this kernel: ", Line(run, "policy"));
        Assert.Contains("gateway 192.168.7.1 is not on a connected network of wan", Line(run, "policy"));
        Assert.Contains("fix: the kernel or the host lacks what the message names", run.Stdout);
        Assert.DoesNotContain("fix the policy file", run.Stdout);
        // The other checks ran on what the policy wants.
        Assert.StartsWith("PROBLEM  forwarding: net.ipv4.ip_forward = 0", Line(run, "forwarding"));
        Assert.StartsWith("ok", Line(run, "selectors"));
    }

    /// <summary>A host that forwards nothing (both families off), with the policy given.</summary>
    static NetNs NotForwarding(string json, out string policy)
    {
        var ns = new NetNs();
        AddVeth(ns, "wan", "192.168.1.2/24");
        Sysctl(ns, "net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0");
        policy = WritePolicy(ns, json);
        return ns;
    }

    static string[] ForwardingLines(RunResult run) => run.Stdout.Split('\n').Where(l => l.Contains("  forwarding: ")).ToArray();

    [Fact]
    public void Rules_on_marks_the_policy_sets_in_output_on_destinations_or_from_lo_ask_for_no_forwarding()
    {
        // Seed 002's router, its own traffic only: the mark set in output, a rule on a destination, one on iif lo.
        using var ns = NotForwarding("""
            { "Tables": { "vpn": 200 }, "Routes": [ "default via 192.168.1.1 dev wan table vpn" ],
              "Rules": [ "fwmark 0xf2 lookup vpn", "to 198.51.100.7 lookup vpn", "iif lo ipproto tcp dport 25 lookup vpn", "uidrange 1000-1000 lookup vpn" ],
              "Marks": [ { "Chain": "output", "Protocol": "tcp", "SourcePorts": "80", "Mark": "0xf2" } ] }
            """, out var policy);

        var run = Doctor(ns, policy);

        Assert.Equal(["ok       forwarding: the policy routes only this host's own traffic; forwarding is not needed"], ForwardingLines(run));
    }

    [Fact]
    public void A_rule_on_a_mark_no_entry_of_the_policy_sets_is_a_note_not_a_problem()
    {
        using var ns = NotForwarding("""
            { "Tables": { "wan": 201 }, "Routes": [ "default via 192.168.1.1 dev wan table wan" ], "Rules": [ "fwmark 0xf1 lookup wan" ] }
            """, out var policy);

        var run = Doctor(ns, policy);

        Assert.Equal(["note     forwarding: net.ipv4.ip_forward = 0: rule 2000 matches fwmark 0xf1, which none of the policy's Marks sets; if the firewall that sets it marks packets of other hosts (mangle PREROUTING), this host must forward them"],
            ForwardingLines(run));
        Assert.Contains("fix: only then: sysctl -w net.ipv4.ip_forward=1", run.Stdout);
    }

    [Fact]
    public void An_iif_rule_and_an_instance_rule_on_the_tunnels_device_ask_for_forwarding_its_own_address_does_not()
    {
        using var ns = NotForwarding("""
            { "Tables": { "vpn": 200 }, "Routes": [ "default via 192.168.1.1 dev wan table vpn" ], "Rules": [ "iif wan lookup vpn" ] }
            """, out var iif);
        var instance = WritePolicy(ns, """
            { "Tables": { "vpn": 200 }, "Instances": [ { "Dev": "tun*", "Rules": [ "-4 iif ${dev} lookup vpn" ] } ] }
            """, "instance.json");
        var own = WritePolicy(ns, """
            { "Tables": { "vpn": 200 }, "Instances": [ { "Dev": "tun*", "Rules": [ "from ${ifconfig_local} lookup vpn" ] } ] }
            """, "own.json");

        Assert.Equal(["PROBLEM  forwarding: net.ipv4.ip_forward = 0: the policy forwards IPv4 traffic (rule 2000 matches packets arriving on wan), but this host does not forward it"],
            ForwardingLines(Doctor(ns, iif)));
        Assert.Equal(["PROBLEM  forwarding: net.ipv4.ip_forward = 0: the policy forwards IPv4 traffic (Instances[0].Rules[0] routes packets arriving on ${dev}), but this host does not forward it"],
            ForwardingLines(Doctor(ns, instance)));
        Assert.Equal(["ok       forwarding: the policy routes only this host's own traffic; forwarding is not needed"], ForwardingLines(Doctor(ns, own)));
    }

    [Fact]
    public void A_hand_made_rule_that_duplicates_the_policys_is_pointed_out()
    {
        using var ns = Seed003(out var policy);
        // What the how-to typed before the policy existed.
        ns.Ip("rule", "add", "from", "10.10.10.0/24", "lookup", "200", "pref", "32765");

        var run = Doctor(ns, policy);

        var line = Line(run, "hand-made");
        Assert.StartsWith("note     hand-made: rule 'from 10.10.10.0/24 pref 32765 lookup vpn", line);
        Assert.EndsWith("' duplicates the policy's at priority 2000 (remove it: ip -4 rule del pref 32765)", line);
        Assert.Contains("fix: 'tunnel-router apply --adopt' takes each over, whatever priority the kernel gave it", run.Stdout);
        Assert.Equal(0, run.ExitCode);
    }
}
