using TunnelRouter.Tests.Support;
using Xunit;

namespace TunnelRouter.Tests.EndToEnd;

/// <summary>
/// Seed 000 in namespaces of the test's own: a home router sends its LAN's traffic for one server, a.b.c.d,
/// through an OpenVPN client tunnel (tun2, table nyet), and a.b.c.d is the VPN server itself.
/// <code>
///  lan host ── lan0 ─ router (OpenVPN client, tun2) ─ wan0 ─────── eth0  server a.b.c.d (OpenVPN, tun0)
///  192.168.10.10   192.168.10.1        198.51.100.2        198.51.100.7
///  fd10::10        fd10::1             2001:db8:7::2       2001:db8:7::7
/// </code>
/// The server routes the LAN back through its tunnel (route + iroute), and counts what reaches it from the LAN
/// on each side: its tunnel (chain "seen", rules 0 and 1) and its plain interface (rules 2 and 3), plus the
/// router's own echo requests on the plain side (rule 4).
/// </summary>
public sealed class ClientLab : NamespaceLab
{
    public const string Server4 = "198.51.100.7", Server6 = "2001:db8:7::7", Lan4 = "192.168.10.10", Lan6 = "fd10::10";


    public NetNs Lan { get; }
    public NetNs Router { get; }
    public NetNs Server { get; }
    public string Dir => Router.StateDir;
    public string PolicyPath => Path.Combine(Dir, "router.json");

    public ClientLab()
    {
        Prerequisites.RequireKernelTests();
        if (!File.Exists("/usr/sbin/openvpn")) throw new InvalidOperationException("end-to-end tests need openvpn; ./test.sh installs it");
        try
        {
            Lan = Add();
            Router = Add();
            Server = Add();
            OpenVpnLab.Link(Lan, "eth0", "192.168.10.10/24", "fd10::10/64", Router, "lan0", "192.168.10.1/24", "fd10::1/64");
            OpenVpnLab.Link(Router, "wan0", "198.51.100.2/24", "2001:db8:7::2/64", Server, "eth0", Server4 + "/24", Server6 + "/64");
            Lan.Ip("route", "add", "default", "via", "192.168.10.1");
            Lan.Ip("-6", "route", "add", "default", "via", "fd10::1");
            Router.Exec("/usr/sbin/sysctl", ["-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]).ShouldSucceed();
            // The plain side routes the LAN back too: a packet that leaked would be answered, and counted, there.
            Server.Ip("route", "add", "192.168.10.0/24", "via", "198.51.100.2");
            Server.Ip("-6", "route", "add", "fd10::/64", "via", "2001:db8:7::2");
            Server.Exec("/usr/sbin/nft", ["-f", "-"], stdin: """
                table inet lab {
                    chain seen {
                        type filter hook input priority 0;
                        iifname "tun0" ip saddr 192.168.10.0/24 icmp type echo-request counter
                        iifname "tun0" ip6 saddr fd10::/64 icmpv6 type echo-request counter
                        iifname "eth0" ip saddr 192.168.10.0/24 counter
                        iifname "eth0" ip6 saddr fd10::/64 counter
                        iifname "eth0" ip saddr 198.51.100.2 icmp type echo-request counter
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

    /// <summary>The router's policy: seed 000 as an Instances entry, and the table's kill switch from apply —
    /// <c>FailClosed</c>, or the plain route form it replaces (<paramref name="failClosed"/> false).</summary>
    public void WritePolicy(string instance, bool failClosed = true) => WritePolicyWith($$"""
        "Tables": { "nyet": 100 },
        {{(failClosed ? KillSwitch : PlainKillSwitch)}},
        "Instances": [ {{instance}} ]
        """);

    public const string KillSwitch = "\"FailClosed\": [ \"nyet\" ]";
    public const string PlainKillSwitch =
        "\"Routes\": [ \"unreachable default table nyet metric 4294967295\", \"-6 unreachable default table nyet metric 4294967295\" ]";

    /// <summary>The router's policy file: the lab's own names and lock, and <paramref name="members"/>.</summary>
    public void WritePolicyWith(string members)
    {
        File.WriteAllText(PolicyPath, $$"""
            {
              "Iproute2Dir": "{{Path.Combine(Dir, "iproute2")}}",
              "LockFile": "{{Path.Combine(Dir, "lock")}}",
              {{members}}
            }
            """);
        File.SetUnixFileMode(PolicyPath, (UnixFileMode)0b110_100_100);
    }

    /// <summary>Seed 000's lines: the LAN's traffic for the server, and only that, through the tunnel.</summary>
    public const string Seed000 = """
        { "Dev": "tun2",
          "Rules":  [ "from 192.168.10.0/24 to 198.51.100.7 lookup nyet", "from fd10::/64 to 2001:db8:7::7 lookup nyet" ],
          "Routes": [ "optional default via ${route_vpn_gateway} dev ${dev} table nyet",
                      "optional -6 default via ${ifconfig_ipv6_remote} dev ${dev} table nyet" ] }
        """;

    public RunResult Tool(params string[] args) =>
        Router.Exec(Prerequisites.Binary, [.. args, "--config", PolicyPath], new Dictionary<string, string>());

    /// <summary>The VPN server on a.b.c.d: the LAN behind client1 routed back through the tunnel (route + iroute),
    /// and one pushed route, so the client's route_vpn_gateway is set.</summary>
    public OpenVpnProcess StartServer(string topology = "subnet", string? pool4 = "10.8.0.0", string? pool6 = "fd00:8::/64", int run = 0,
        IReadOnlyList<string>? extra = null)
    {
        var pki = Pki.Instance;
        var ccd = Path.Combine(Server.StateDir, "ccd");
        Directory.CreateDirectory(ccd);
        File.WriteAllLines(Path.Combine(ccd, Pki.Clients[0]),
            [.. pool4 is null ? [] : new[] { "iroute 192.168.10.0 255.255.255.0" }, .. pool6 is null ? [] : new[] { "iroute-ipv6 fd10::/64" }]);
        var name = $"server-{run}";
        var lines = new List<string>
        {
            "dev tun0", "dev-type tun", "proto udp", $"local {Server4}", "port 1194", $"topology {topology}",
            $"ca {pki.Ca}", $"cert {pki.Cert("server")}", $"key {pki.Key("server")}", "dh none",
            $"client-config-dir {ccd}", "verb 3", $"log {Path.Combine(Server.StateDir, name + ".log")}",
        };
        if (pool4 is not null)
            lines.AddRange([$"server {pool4} 255.255.255.0", "route 192.168.10.0 255.255.255.0", "push \"route 192.0.2.0 255.255.255.0\""]);
        if (pool6 is not null)
            lines.AddRange([$"server-ipv6 {pool6}", "route-ipv6 fd10::/64", "push \"route-ipv6 2001:db8:99::/64\""]);
        lines.AddRange(extra ?? []);
        var config = Path.Combine(Server.StateDir, name + ".conf");
        File.WriteAllLines(config, lines);
        return Track(new OpenVpnProcess(Server, name, config, Path.Combine(Server.StateDir, name + ".log")));
    }

    /// <summary>The router's OpenVPN client on tun2, with tunnel-router as --up/--down unless <paramref name="hook"/> is
    /// false (then <c>watch</c> or the next apply routes it).</summary>
    public OpenVpnProcess StartClient(int run = 0, bool allowRecursiveRouting = true, bool hook = true)
    {
        var pki = Pki.Instance;
        var name = $"client-{run}";
        var bin = Prerequisites.Binary;
        var config = Path.Combine(Dir, name + ".conf");
        File.WriteAllLines(config,
        [
            "client", "dev tun2", "dev-type tun", "proto udp", $"remote {Server4} 1194", "nobind", "remote-cert-tls server",
            $"ca {pki.Ca}", $"cert {pki.Cert(Pki.Clients[0])}", $"key {pki.Key(Pki.Clients[0])}", "verb 3",
            $"log {Path.Combine(Dir, name + ".log")}",
            .. hook ? new[] { "script-security 2", $"up \"{bin} --config {PolicyPath}\"", $"down \"{bin} --config {PolicyPath}\"" } : [],
            .. allowRecursiveRouting ? new[] { "allow-recursive-routing" } : [],
        ]);
        return Track(new OpenVpnProcess(Router, name, config, Path.Combine(Dir, name + ".log")));
    }

    /// <summary>Three pings from the LAN host to the server; the exit code says whether one was answered.</summary>
    public RunResult PingFromLan(string to) => Lan.Exec("/usr/bin/ping", ["-n", "-c", "3", "-i", "0.2", "-w", "5", to]);

    /// <summary>The LAN host's pings to the server arrive on its tunnel side, in both families, and none on its plain side.</summary>
    public void Flows(OpenVpnProcess client, string why)
    {
        var before4 = Seen(0);
        var before6 = Seen(1);
        var ping4 = PingFromLan(Server4);
        var ping6 = PingFromLan(Server6);
        Assert.True(ping4.ExitCode == 0 && ping6.ExitCode == 0,
            $"{why}: the LAN host cannot ping the server:\n{ping4.Stdout}{ping6.Stdout}\n{client.Log}\n{Router.Dump()}");
        Assert.True(Seen(0) > before4, $"{why}: no IPv4 echo request from the LAN arrived on the server's tunnel side");
        Assert.True(Seen(1) > before6, $"{why}: no IPv6 echo request from the LAN arrived on the server's tunnel side");
        Assert.Equal(0, Seen(2));
        Assert.Equal(0, Seen(3));
    }

    /// <summary>What of the LAN's reached the server by its plain interface (IPv4, IPv6): a leak past the tunnel.</summary>
    public (long V4, long V6) Leaked() => (Seen(2), Seen(3));

    /// <summary>Packets counted by the nth rule of the server's chain "seen".</summary>
    public long Seen(int index) => OpenVpnLab.Counter(Server, "seen", index);

    /// <summary>apply's kill switch is in nyet, in both families: an unreachable default at the table's highest metric.</summary>
    public void KillSwitchHolds()
    {
        Assert.Matches(@"(?m)^unreachable default proto 147 metric 4294967295", Nyet());
        Assert.Matches(@"(?m)^unreachable default dev lo proto 147 metric 4294967295", Nyet("-6"));
    }

    public string Nyet(string family = "-4") => Router.Ip(family, "route", "show", "table", "100");
}
