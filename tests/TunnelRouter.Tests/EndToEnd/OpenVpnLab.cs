using System.Text.RegularExpressions;
using TunnelRouter.Tests.Support;
using Xunit;

namespace TunnelRouter.Tests.EndToEnd;

public enum HookStyle
{
    /// <summary>--up/--down run the binary with OpenVPN's arguments and script_type.</summary>
    Binary,
    /// <summary>--up/--down run hooks/up and hooks/down (eduVPN's /etc/openvpn/up); the policy comes from setenv.</summary>
    Shims,
    /// <summary>user nobody, group nogroup: --up runs as root at start, down through the down-root plugin as "tunnel-router down".</summary>
    DownRoot,
}

/// <summary>One OpenVPN server instance's settings.</summary>
public sealed record ServerSpec(
    string Device = "tun0",
    string Topology = "subnet",
    int Port = 1194,
    string Pool4 = "10.10.10.0",
    string Pool6 = "fd00:4242:4242:4242::/64",
    HookStyle Hooks = HookStyle.Binary,
    IReadOnlyList<string>? Extra = null);

/// <summary>
/// The seed 003 lab in namespaces of the test's own:
/// <code>
///  client1 ─┐                 server (VPN, tun0)                 nat                 internet
///  client2 ─┴─ br0 192.168.178.2 ─┤ eth1 192.168.1.100 ── lan 192.168.1.1 ─ wan 198.51.100.1 ── 198.51.100.10
///                                   fd00:1010:1010:1010::100   fd00:1010:1010:1010::1   2001:db8:100::1   2001:db8:100::10
/// </code>
/// The server's main default route points at 192.168.178.1, which does not exist, and the internet host
/// knows only its own subnet: a client packet reaches it only through the policy table's default route
/// via the NAT router, and an answer comes back only because the NAT router masqueraded it.
/// </summary>
public sealed class OpenVpnLab : NamespaceLab
{
    public const string InternetV4 = "198.51.100.10", InternetV6 = "2001:db8:100::10";
    public const string NatWanV4 = "198.51.100.1", NatWanV6 = "2001:db8:100::1";
    public const string ServerLan = "192.168.178.2";


    public NetNs Server { get; }
    public NetNs? Nat { get; }
    public NetNs? Internet { get; }
    public IReadOnlyList<NetNs> Clients { get; }
    public string Dir => Server.StateDir;
    public string PolicyPath => Path.Combine(Dir, "policy.json");

    public OpenVpnLab(int clients = 2, bool internet = true)
    {
        Prerequisites.RequireKernelTests();
        if (!File.Exists("/usr/sbin/openvpn")) throw new InvalidOperationException("end-to-end tests need openvpn; ./test.sh installs it");
        try
        {
            Server = Add();
            Server.Ip("link", "add", "br0", "type", "bridge");
            Server.Ip("addr", "add", ServerLan + "/24", "dev", "br0");
            Server.Ip("link", "set", "br0", "up");
            var list = new List<NetNs>();
            for (var i = 0; i < clients; i++)
            {
                var client = Add();
                Sh.Ip("link", "add", "eth0", "netns", client.Name, "type", "veth", "peer", "name", $"c{i}", "netns", Server.Name);
                client.Ip("addr", "add", $"192.168.178.{10 + i}/24", "dev", "eth0");
                client.Ip("link", "set", "eth0", "up");
                Server.Ip("link", "set", $"c{i}", "master", "br0", "up");
                list.Add(client);
            }
            Clients = list;
            // The server's own default route leads nowhere: only the policy table may carry client traffic out.
            Server.Ip("route", "add", "default", "via", "192.168.178.1");
            Sysctl(Server, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1");

            if (internet)
            {
                Nat = Add();
                Internet = Add();
                Link(Server, "eth1", "192.168.1.100/24", "fd00:1010:1010:1010::100/64", Nat, "lan", "192.168.1.1/24", "fd00:1010:1010:1010::1/64");
                Link(Nat, "wan", NatWanV4 + "/24", NatWanV6 + "/64", Internet, "eth0", InternetV4 + "/24", InternetV6 + "/64");
                Sysctl(Nat, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1");
                // The NAT router's static routes back to the VPN pools (the seed's assumption 4).
                Nat.Ip("route", "add", "10.0.0.0/8", "via", "192.168.1.100");
                Nat.Ip("-6", "route", "add", "fd00:4242::/32", "via", "fd00:1010:1010:1010::100");
                Nft(Nat, """
                    table inet lab {
                        chain counting {
                            type filter hook forward priority 0;
                            ip saddr 10.0.0.0/8 ip daddr 198.51.100.10 counter
                            ip6 saddr fd00:4242::/32 ip6 daddr 2001:db8:100::10 counter
                        }
                        chain masq {
                            type nat hook postrouting priority 100;
                            oifname "wan" masquerade
                        }
                    }
                    """);
                // What the internet host sees: echo requests from the NAT router's address, none from a pool.
                Nft(Internet, """
                    table inet lab {
                        chain seen {
                            type filter hook input priority 0;
                            ip saddr 198.51.100.1 icmp type echo-request counter
                            ip6 saddr 2001:db8:100::1 icmpv6 type echo-request counter
                            ip saddr 10.0.0.0/8 counter
                            ip6 saddr fd00:4242::/32 counter
                        }
                    }
                    """);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>A veth pair between two namespaces, an IPv4 and an IPv6 address (no DAD) on each end, both up.</summary>
    internal static void Link(NetNs a, string aDev, string a4, string a6, NetNs b, string bDev, string b4, string b6)
    {
        Sh.Ip("link", "add", aDev, "netns", a.Name, "type", "veth", "peer", "name", bDev, "netns", b.Name);
        // nodad: an address still in duplicate address detection cannot be used for a second or two.
        a.Ip("addr", "add", a4, "dev", aDev);
        a.Ip("addr", "add", a6, "dev", aDev, "nodad");
        b.Ip("addr", "add", b4, "dev", bDev);
        b.Ip("addr", "add", b6, "dev", bDev, "nodad");
        a.Ip("link", "set", aDev, "up");
        b.Ip("link", "set", bDev, "up");
    }

    static void Sysctl(NetNs ns, params string[] settings) =>
        ns.Exec("/usr/sbin/sysctl", ["-qw", .. settings]).ShouldSucceed();

    static void Nft(NetNs ns, string ruleset) => ns.Exec("/usr/sbin/nft", ["-f", "-"], stdin: ruleset).ShouldSucceed();

    /// <summary>The policy: pool rules from the hook, and the vpn table's default routes via the NAT router
    /// from <c>apply</c> (the seed's "rules" and "routes" sections).</summary>
    public void WritePolicy(bool poolRules = true)
    {
        var routes = Nat is null ? "" : """
            "Routes": [ "default via 192.168.1.1 table vpn", "default via fd00:1010:1010:1010::1 table vpn" ],
            """;
        File.WriteAllText(PolicyPath, $$"""
            {
              "Iproute2Dir": "{{Path.Combine(Dir, "iproute2")}}",
              "LockFile": "{{Path.Combine(Dir, "lock")}}",
              {{routes}}
              "PoolRules": {{(poolRules ? "true" : "false")}}
            }
            """);
    }

    /// <summary>tunnel-router apply in the server namespace, as the systemd unit runs it at boot.</summary>
    public RunResult Apply() => Tool("apply");

    public RunResult Tool(params string[] args) => Run(args).ShouldSucceed();

    /// <summary>The kernel backend the lab's own commands (apply, plan, watch) use: the default unless a spec picks
    /// one (the hook that OpenVPN runs keeps the default).</summary>
    public string? Backend { get; set; }

    /// <summary>The environment of the lab's own commands: empty, or the backend the spec picked.</summary>
    public Dictionary<string, string> ToolEnvironment =>
        Backend is null ? [] : new() { ["TUNNEL_ROUTER_BACKEND"] = Backend };

    /// <summary>tunnel-router with the lab's policy in the server namespace, whatever its exit code (plan's 2).</summary>
    public RunResult Run(params string[] args) =>
        Server.Exec(Prerequisites.Binary, [.. args, "--config", PolicyPath], ToolEnvironment);

    public OpenVpnProcess StartServer(ServerSpec spec)
    {
        if (!File.Exists(PolicyPath)) WritePolicy();
        var pki = Pki.Instance;
        var name = $"server-{spec.Device}";
        var bin = Prerequisites.Binary;
        var lines = new List<string>
        {
            $"dev {spec.Device}", "dev-type tun", "proto udp", $"local {ServerLan}", $"port {spec.Port}",
            $"topology {spec.Topology}",
            $"server {spec.Pool4} 255.255.255.0", $"server-ipv6 {spec.Pool6}",
            $"push \"route {InternetV4} 255.255.255.255\"", $"push \"route-ipv6 {InternetV6}/128\"",
            $"ca {pki.Ca}", $"cert {pki.Cert("server")}", $"key {pki.Key("server")}", "dh none",
            "script-security 2", "verb 3", $"log {Path.Combine(Dir, name + ".log")}",
        };
        // In net30 the server pushes only a route to its own address; client-to-client through the kernel
        // needs the pool (with topology subnet the client's tun prefix covers it).
        if (spec.Topology == "net30") lines.Add($"push \"route {spec.Pool4} 255.255.255.0\"");
        switch (spec.Hooks)
        {
            case HookStyle.Binary:
                lines.Add($"up \"{bin} --config {PolicyPath}\"");
                lines.Add($"down \"{bin} --config {PolicyPath}\"");
                break;
            case HookStyle.Shims:
                lines.Add($"setenv TUNNEL_ROUTER_CONFIG {PolicyPath}");
                lines.Add($"up {Shim("up")}");
                lines.Add($"down {Shim("down")}");
                break;
            case HookStyle.DownRoot:
                lines.Add($"up \"{bin} --config {PolicyPath}\"");
                lines.AddRange(["user nobody", "group nogroup", "persist-key"]);
                lines.Add($"plugin /usr/lib/x86_64-linux-gnu/openvpn/plugins/openvpn-plugin-down-root.so \"{bin} down --config {PolicyPath}\"");
                break;
        }
        lines.AddRange(spec.Extra ?? []);
        var config = Path.Combine(Dir, name + ".conf");
        File.WriteAllLines(config, lines);
        return Track(new OpenVpnProcess(Server, name, config, Path.Combine(Dir, name + ".log")));
    }

    /// <summary>hooks/up or hooks/down, copied once: rewriting a script that another server is running breaks it.</summary>
    string Shim(string name)
    {
        var path = Path.Combine(Dir, name);
        lock (Processes) if (!File.Exists(path)) Repo.CopyWithBinary("hooks/" + name, Dir);
        return path;
    }

    public OpenVpnProcess StartClient(int index, int port = 1194, IReadOnlyList<string>? extra = null)
    {
        var pki = Pki.Instance;
        var name = Pki.Clients[index];
        var config = Path.Combine(Dir, name + ".conf");
        File.WriteAllLines(config,
        [
            "client", "dev tun", "proto udp", $"remote {ServerLan} {port}", "nobind", "remote-cert-tls server",
            $"ca {pki.Ca}", $"cert {pki.Cert(name)}", $"key {pki.Key(name)}", "verb 3",
            $"log {Path.Combine(Dir, name + ".log")}",
            .. extra ?? [],
        ]);
        return Track(new OpenVpnProcess(Clients[index], name, config, Path.Combine(Dir, name + ".log")));
    }

    /// <summary>The client's address on its tun device, as the server assigned it.</summary>
    public string TunAddress(int client, string family)
    {
        var text = Clients[client].Ip(family, "-o", "addr", "show", "dev", "tun0", "scope", "global");
        return Regex.Match(text, family == "-4" ? @"inet (\S+?)[/ ]" : @"inet6 (\S+?)/").Groups[1].Value;
    }

    /// <summary>ping, waiting up to 5 s for one answer.</summary>
    public static RunResult Ping(NetNs from, string to) =>
        from.Exec("/usr/bin/ping", ["-n", "-c", "1", "-w", "5", to]);

    /// <summary>Echo requests the internet host saw from the NAT router (IPv4, IPv6): client traffic that left by the
    /// policy table's default route and was masqueraded.</summary>
    public (long V4, long V6) SeenFromNat() => (Counter(Internet!, "seen", 0), Counter(Internet!, "seen", 1));

    /// <summary>Every client pings the internet host in both families; the counters at the far host must grow.</summary>
    public (long V4, long V6) ClientsReachTheInternet(string why)
    {
        var before = SeenFromNat();
        for (var i = 0; i < Clients.Count; i++)
            foreach (var to in (string[])[InternetV4, InternetV6])
            {
                var ping = Ping(Clients[i], to);
                Assert.True(ping.ExitCode == 0, $"{why}: client {i + 1} cannot ping {to}:\n{ping.Stdout}{ping.Stderr}\n{PolicyState()}");
            }
        var after = SeenFromNat();
        Assert.True(after.V4 >= before.V4 + Clients.Count && after.V6 >= before.V6 + Clients.Count,
            $"{why}: the internet host counted {after} echo requests from the NAT router, {before} before");
        return after;
    }

    /// <summary>Packets counted by the nth counter rule of a lab chain (in rule order).</summary>
    public static long Counter(NetNs ns, string chain, int index)
    {
        var text = ns.Exec("/usr/sbin/nft", ["list", "chain", "inet", "lab", chain]).ShouldSucceed().Stdout;
        return long.Parse(Regex.Matches(text, @"counter packets (\d+)")[index].Groups[1].Value);
    }

    /// <summary>Every route and rule with the hook's protocol (148), as ip prints them.</summary>
    public string[] HookObjects() =>
    [
        .. Lines(Server.Ip("-4", "route", "show", "table", "all", "proto", "148")),
        .. Lines(Server.Ip("-6", "route", "show", "table", "all", "proto", "148")),
        .. Lines(Server.Ip("-4", "rule", "show")).Where(l => l.Contains("proto 148")),
        .. Lines(Server.Ip("-6", "rule", "show")).Where(l => l.Contains("proto 148")),
    ];

    /// <summary>Every route (all tables) and rule with either of tunnel-router's protocols (147 apply, 148 hook).</summary>
    public string[] OwnedObjects() =>
    [
        .. HookObjects(),
        .. Lines(Server.Ip("-4", "route", "show", "table", "all", "proto", "147")),
        .. Lines(Server.Ip("-6", "route", "show", "table", "all", "proto", "147")),
        .. Lines(Server.Ip("-4", "rule", "show")).Where(l => l.Contains("proto 147")),
        .. Lines(Server.Ip("-6", "rule", "show")).Where(l => l.Contains("proto 147")),
    ];

    /// <summary>The policy routing of the server: every rule and the policy table, both families.</summary>
    public string PolicyState() => string.Join("---\n",
        Server.Ip("-4", "rule", "show"), Server.Ip("-6", "rule", "show"),
        Server.Ip("-4", "route", "show", "table", "200"), Server.Ip("-6", "route", "show", "table", "200"));

    public static string[] Lines(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
