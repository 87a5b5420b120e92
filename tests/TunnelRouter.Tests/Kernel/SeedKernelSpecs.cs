using System.Net.Sockets;
using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary>
/// Each seed how-to as a topology of namespaces, its example policy from contrib/examples applied by the
/// published binary, and the packet path proved with <c>ip route get</c> and with real pings.
/// </summary>
public class SeedKernelSpecs
{
    static string[] Lines(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Trim()).Order(StringComparer.Ordinal).ToArray();

    [Fact]
    public void Seed_003_eduVPN_clients_leave_through_the_NAT_router_while_client_to_client_and_the_tun_gateway_stay_local()
    {
        using var vpn = new NetNs();
        using var client = new NetNs();
        using var router = new NetNs();
        using var nat = new NetNs();
        using var internet = new NetNs();
        // tun0 is played by a veth whose far end is the client: packets arrive on tun0 from the pool, as OpenVPN hands them over.
        Topology.Link(vpn, "tun0", ["10.10.10.1/24", "fd00:4242:4242:4242::1/64"], client, "vpn0", ["10.10.10.2/24", "fd00:4242:4242:4242::2/64"]);
        client.Ip("route", "add", "default", "via", "10.10.10.1");
        client.Ip("-6", "route", "add", "default", "via", "fd00:4242:4242:4242::1");
        // The server's own default gateway: the Router of the how-to, which knows nothing of the internet host here.
        Topology.Link(vpn, "eth0", ["192.168.178.2/24", "fd00:178::2/64"], router, "lan0", ["192.168.178.1/24", "fd00:178::1/64"]);
        vpn.Ip("route", "add", "default", "via", "192.168.178.1");
        vpn.Ip("-6", "route", "add", "default", "via", "fd00:178::1");
        Topology.Link(vpn, "eth1", ["192.168.1.100/24", "fd00:1010:1010:1010::100/64"], nat, "in0", ["192.168.1.1/24", "fd00:1010:1010:1010::1/64"]);
        Topology.Link(nat, "out0", ["198.51.100.254/24", "2001:db8:100::254/64"], internet, "eth0", ["198.51.100.1/24", "2001:db8:100::1/64"]);
        internet.Ip("route", "add", "default", "via", "198.51.100.254");
        internet.Ip("-6", "route", "add", "default", "via", "2001:db8:100::254");
        // Assumption 4 of the how-to: the NAT side has static routes back to the pools.
        nat.Ip("route", "add", "10.10.10.0/24", "via", "192.168.1.100");
        nat.Ip("-6", "route", "add", "fd00:4242:4242:4242::/64", "via", "fd00:1010:1010:1010::100");
        vpn.Forwarding();
        nat.Forwarding();
        Assert.NotEqual(0, client.Ping("198.51.100.1").ExitCode);

        var policy = Topology.Example(vpn, "eduvpn-nat-router.json");
        Run(vpn, ["apply", "-c", policy]).ShouldSucceed();
        Run(vpn, ["up", "-c", policy], SubnetEnv("tun0", "10.10.10.1", "255.255.255.0", "fd00:4242:4242:4242::1", 64)).ShouldSucceed();

        // A client's traffic leaves via the NAT router, both families.
        Assert.Contains("via 192.168.1.1 dev eth1", vpn.RouteGet("198.51.100.1", "from", "10.10.10.2", "iif", "tun0"));
        Assert.Contains("via fd00:1010:1010:1010::1 dev eth1", vpn.RouteGet("2001:db8:100::1", "from", "fd00:4242:4242:4242::2", "iif", "tun0"));
        // Client to client, and the tun gateway's replies, stay on tun0.
        Assert.Matches(@"^10\.10\.10\.3 from 10\.10\.10\.2 dev tun0", vpn.RouteGet("10.10.10.3", "from", "10.10.10.2", "iif", "tun0"));
        Assert.Matches(@"^fd00:4242:4242:4242::3 from fd00:4242:4242:4242::2 dev tun0", vpn.RouteGet("fd00:4242:4242:4242::3", "from", "fd00:4242:4242:4242::2", "iif", "tun0"));
        Assert.Matches(@"^10\.10\.10\.2 from 10\.10\.10\.1 dev tun0", vpn.RouteGet("10.10.10.2", "from", "10.10.10.1"));
        // The server's own traffic keeps its default gateway.
        Assert.Contains("via 192.168.178.1 dev eth0", vpn.RouteGet("198.51.100.1"));

        // Real traffic: through the NAT router to the internet host, and to the tun gateway.
        client.Ping("198.51.100.1").ShouldSucceed();
        client.Ping("2001:db8:100::1").ShouldSucceed();
        client.Ping("10.10.10.1").ShouldSucceed();
        client.Ping("fd00:4242:4242:4242::1").ShouldSucceed();
    }

    [Fact]
    public void Seed_004_replies_from_each_uplink_address_leave_by_that_uplink()
    {
        using var server = new NetNs();
        using var routerA = new NetNs();
        using var routerB = new NetNs();
        using var hostA = new NetNs();
        using var hostB = new NetNs();
        Topology.Link(server, "eth0", ["192.168.1.6/24"], routerA, "lan0", ["192.168.1.1/24"]);
        Topology.Link(server, "eth1", ["192.168.2.2/24"], routerB, "lan0", ["192.168.2.1/24"]);
        Topology.Link(routerA, "wan0", ["198.51.100.254/24"], hostA, "eth0", ["198.51.100.1/24"]);
        Topology.Link(routerB, "wan0", ["203.0.113.254/24"], hostB, "eth0", ["203.0.113.1/24"]);
        hostA.Ip("route", "add", "default", "via", "198.51.100.254");
        hostB.Ip("route", "add", "default", "via", "203.0.113.254");
        routerA.Forwarding();
        routerB.Forwarding();
        server.Ip("route", "add", "default", "via", "192.168.1.1", "dev", "eth0");
        // Off, so that the failure before the policy is the reply's path and not the filter on the request.
        server.SetSysctls("net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0", "net.ipv4.conf.eth1.rp_filter=0");
        // Before: a request from behind RouterB is answered through RouterA, which drops it.
        Assert.NotEqual(0, hostB.Ping("192.168.2.2").ExitCode);

        Run(server, ["apply", "-c", Topology.Example(server, "multihomed-reply-routing.json")]).ShouldSucceed();

        Assert.Equal(["192.168.1.0/24 dev eth0 proto 147 scope link src 192.168.1.6", "default via 192.168.1.1 dev eth0 proto 147"],
            Lines(server.Ip("route", "show", "table", "10")));
        Assert.Equal(["192.168.2.0/24 dev eth1 proto 147 scope link src 192.168.2.2", "default via 192.168.2.1 dev eth1 proto 147"],
            Lines(server.Ip("route", "show", "table", "20")));
        Assert.Contains("3000:\tfrom 192.168.1.6 lookup 10 proto 147", server.Ip("rule", "show"));
        Assert.Contains("3010:\tfrom 192.168.2.2 lookup 20 proto 147", server.Ip("rule", "show"));
        Assert.Contains("via 192.168.2.1 dev eth1", server.RouteGet("203.0.113.1", "from", "192.168.2.2"));
        Assert.Contains("via 192.168.1.1 dev eth0", server.RouteGet("203.0.113.1", "from", "192.168.1.6"));
        Assert.Contains("via 192.168.1.1 dev eth0", server.RouteGet("198.51.100.1", "from", "192.168.1.6"));
        Assert.Contains("via 192.168.1.1 dev eth0", server.RouteGet("203.0.113.1"));

        // Real traffic: each host reaches the server's address on its own side, and the reply comes back.
        hostA.Ping("192.168.1.6").ShouldSucceed();
        hostB.Ping("192.168.2.2").ShouldSucceed();
        server.Ping("203.0.113.1", "-I", "192.168.2.2").ShouldSucceed();
    }

    [Fact]
    public void Seed_001_ssh_leaves_by_one_uplink_and_http_by_the_other_and_marks_choose_the_table()
    {
        using var host = new NetNs();
        using var isp1 = new NetNs();
        using var isp2 = new NetNs();
        using var server = new NetNs();
        Topology.Link(host, "eth0", ["10.0.1.2/24"], isp1, "lan0", ["10.0.1.1/24"]);
        Topology.Link(host, "eth1", ["10.0.2.2/24"], isp2, "lan0", ["10.0.2.1/24"]);
        // The far server is reachable through isp2 only: a ping that arrives proves the uplink.
        Topology.Link(isp2, "wan0", ["203.0.113.254/24"], server, "eth0", ["203.0.113.1/24"]);
        server.Ip("route", "add", "default", "via", "203.0.113.254");
        isp2.Forwarding();
        host.Ip("route", "add", "default", "via", "10.0.1.1");
        Assert.NotEqual(0, host.Ping("203.0.113.1", "-m", "2").ExitCode);

        Run(host, ["apply", "-c", Topology.Example(host, "fwmark-ssh-http-uplinks.json")]).ShouldSucceed();

        // The how-to's martians: loose reverse-path filtering, set by the policy.
        Assert.Equal("2", host.Exec("/usr/bin/cat", ["/proc/sys/net/ipv4/conf/all/rp_filter"]).ShouldSucceed().Stdout.Trim());

        Assert.Contains("via 10.0.2.1 dev eth1", host.RouteGet("203.0.113.1", "ipproto", "tcp", "dport", "22"));
        Assert.Contains("via 10.0.1.1 dev eth0", host.RouteGet("203.0.113.1", "ipproto", "tcp", "dport", "80"));
        Assert.Contains("via 10.0.1.1 dev eth0", host.RouteGet("203.0.113.1", "ipproto", "tcp", "dport", "443"));
        Assert.Contains("via 10.0.1.1 dev eth0", host.RouteGet("203.0.113.1", "ipproto", "udp", "dport", "22"));
        Assert.Contains("via 10.0.2.1 dev eth1", host.RouteGet("203.0.113.1", "mark", "0x2"));
        Assert.Contains("via 10.0.1.1 dev eth0", host.RouteGet("203.0.113.1", "mark", "0x1"));
        Assert.Contains("via 10.0.1.1 dev eth0", host.RouteGet("203.0.113.1"));
        // Forwarded traffic from a LAN host takes the same rules.
        host.Forwarding();
        Assert.Contains("via 10.0.2.1 dev eth1", host.RouteGet("203.0.113.1", "from", "10.0.1.99", "iif", "eth0", "ipproto", "tcp", "dport", "22"));

        // Real traffic: marked 0x2, the ping leaves by isp2 and reaches the server; unmarked it takes main and does not.
        host.Ping("203.0.113.1", "-m", "2").ShouldSucceed();
        Assert.NotEqual(0, host.Ping("203.0.113.1").ExitCode);
    }

    [Fact]
    public void Seed_000_the_LAN_reaches_one_server_through_the_tunnel_while_the_router_itself_uses_main()
    {
        using var router = new NetNs();
        using var lan = new NetNs();
        using var peer = new NetNs();
        using var isp = new NetNs();
        Topology.Link(router, "eth1", ["192.168.10.1/24"], lan, "eth0", ["192.168.10.5/24"]);
        lan.Ip("route", "add", "default", "via", "192.168.10.1");
        // tun2 is played by a veth to the OpenVPN server, which is the co-located host a.b.c.d itself.
        Topology.Link(router, "tun2", ["10.8.0.2/24"], peer, "tun0", ["10.8.0.1/24"]);
        peer.Ip("addr", "add", "198.51.100.7/32", "dev", "lo");
        peer.Ip("route", "add", "192.168.10.0/24", "via", "10.8.0.2");
        Topology.Link(router, "eth0", ["192.0.2.2/24"], isp, "lan0", ["192.0.2.1/24"]);
        router.Ip("route", "add", "default", "via", "192.0.2.1");
        router.Forwarding();
        Assert.NotEqual(0, lan.Ping("198.51.100.7").ExitCode);

        var policy = Topology.Example(router, "lan-host-via-openvpn.json");
        Run(router, ["apply", "-c", policy]).ShouldSucceed();
        // The OpenVPN client's up, with what the server pushed: the hook fills in the gateway and the device.
        var env = SubnetEnv("tun2", "10.8.0.2", "255.255.255.0");
        env["route_vpn_gateway"] = "10.8.0.1";
        env["trusted_ip"] = "198.51.100.7";
        env["remote_1"] = "198.51.100.7";
        Run(router, ["up", "-c", policy], env).ShouldSucceed();

        Assert.Contains("dev tun2", router.RouteGet("198.51.100.7", "from", "192.168.10.5", "iif", "eth1"));
        // OpenVPN's own packets to the server, and the LAN's to anything else, keep the main table.
        Assert.Contains("via 192.0.2.1 dev eth0", router.RouteGet("198.51.100.7"));
        Assert.Contains("via 192.0.2.1 dev eth0", router.RouteGet("198.51.100.8", "from", "192.168.10.5", "iif", "eth1"));

        lan.Ping("198.51.100.7").ShouldSucceed();
    }

    [Fact]
    public void Seed_002_the_complete_OpenWrt_configuration_sends_the_VPN_addresses_and_ports_by_the_VPN_and_the_rest_by_the_WAN()
    {
        using var router = new NetNs();
        using var wan = new NetNs();
        using var vpn = new NetNs();
        using var lan = new NetNs();
        Topology.Link(router, "br-lan", ["192.168.192.2/24"], lan, "eth0", ["192.168.192.10/24"]);
        Topology.Link(router, "eth0", ["172.20.10.2/28"], wan, "lan0", ["172.20.10.1/28"]);
        Topology.Link(router, "br-vpn", ["5.5.5.2/24"], vpn, "lan0", ["5.5.5.1/24"]);
        lan.Ip("route", "add", "default", "via", "192.168.192.2");
        // OpenWrt's interfaces (not the policy): wan is the preferred default (metric 2), vpn the second (metric 10).
        router.Ip("route", "add", "default", "via", "172.20.10.1", "dev", "eth0", "metric", "2");
        router.Ip("route", "add", "default", "via", "5.5.5.1", "dev", "br-vpn", "metric", "10");
        const string Internet = "198.51.100.7";
        string From(NetNs ns, string? src, int sport, string dst = Internet, ProtocolType proto = ProtocolType.Tcp) =>
            Probe.Where(ns, proto, src, sport, dst, 7000, ("vpn", vpn), ("wan", wan));
        Assert.Equal("wan", From(router, "5.5.5.2", 40000));

        var policy = Topology.Example(router, "openwrt-vpn-marks.json");
        var plan = Run(router, ["plan", "-c", policy]);
        Assert.Equal(2, plan.ExitCode);
        Assert.Contains("sysctl -w net.ipv4.ip_forward=1", plan.Stdout);
        Run(router, ["apply", "-c", policy]).ShouldSucceed();

        Assert.Contains("via 5.5.5.1 dev br-vpn", router.RouteGet(Internet, "mark", "0xf2"));
        Assert.Contains("via 172.20.10.1 dev eth0", router.RouteGet(Internet, "mark", "0xf1"));
        Assert.Contains("via 172.20.10.1 dev eth0", router.RouteGet(Internet));
        Assert.Contains("via 172.20.10.1 dev eth0", router.RouteGet("5.5.5.5"));
        // Output from the router: by source address, and by source port 80 unless the destination is the LAN.
        Assert.Equal("vpn", From(router, "5.5.5.2", 40000));
        Assert.Equal("wan", From(router, "172.20.10.2", 40000));
        Assert.Equal("vpn", From(router, "192.168.192.2", 80));
        Assert.Equal("wan", From(router, "192.168.192.2", 81));
        // From the LAN (forwarded, which the policy's ip_forward allows): source ports 80 and 443, tcp and udp.
        Assert.Equal("vpn", From(lan, null, 443));
        Assert.Equal("vpn", From(lan, null, 80, proto: ProtocolType.Udp));
        Assert.Equal("wan", From(lan, null, 8443));
        // To NET_WAN the mark is cleared and main's connected route applies.
        Assert.Equal("wan", From(lan, null, 443, "172.20.10.1"));
        Assert.Equal("vpn", From(lan, null, 443, "5.5.5.1"));

        Assert.Equal(0, Run(router, ["plan", "-c", policy]).ExitCode);
        Run(router, ["flush", "-c", policy]).ShouldSucceed();
        Assert.Equal("wan", From(router, "5.5.5.2", 40000));
        Assert.DoesNotContain("proto 147", router.Ip("route", "show", "table", "all") + router.Ip("rule", "show"));
    }
}
