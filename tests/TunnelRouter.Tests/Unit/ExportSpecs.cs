using System.Text.RegularExpressions;
using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>export renders the policy as the files the seeds write by hand: seed 003's RHEL rule-eth1/route-eth1
/// (and their IPv6 twins), seed 002's OpenWrt /etc/config/network sections; and says what a format cannot say.</summary>
public partial class ExportSpecs : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("tunnel-router-unit-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static string Example(string name)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (!Directory.Exists(Path.Combine(dir!.FullName, "contrib", "examples"))) dir = dir.Parent;
        return Path.Combine(dir.FullName, "contrib", "examples", name);
    }

    ExportInput Input(string example, Func<Route, Route>? device = null)
    {
        var copy = Path.Combine(_dir, example);
        File.Copy(Example(example), copy);
        File.SetUnixFileMode(copy, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var (options, path) = ConfigLoader.Load(new Dictionary<string, string>(), [], copy);
        var policy = PolicyParser.Parse(options, Iproute2Files.Load(_dir), path);
        return new ExportInput(policy.Routes.Select(device ?? (r => r)).ToList(), policy.Rules, policy.Tunnels, options.Marks.Count, policy.Sysctls, policy.TableNames);
    }

    static string Text(ExportResult r, string path) =>
        r.Files.SingleOrDefault(f => f.Path == path)?.Text ?? throw new Xunit.Sdk.XunitException($"no {path} in {string.Join(", ", r.Files.Select(f => f.Path))}");

    [GeneratedRegex(@" pref \d+| dev eth1")]
    private static partial Regex PrefAndFileDevice();

    [Fact]
    public void Seed_003s_rule_and_route_files_come_out_as_the_how_to_writes_them()
    {
        // The how-to's "Making it permanent", verbatim.
        var seed = new Dictionary<string, string>
        {
            ["rule-eth1"] = "from 10.10.10.0/24 lookup vpn",
            ["rule6-eth1"] = "from fd00:4242:4242:4242::/64 lookup vpn",
            ["route-eth1"] = "default via 192.168.1.1 table vpn",
            ["route6-eth1"] = "default via fd00:1010:1010:1010::1 table vpn",
        };
        // The routes say no device: the command fills in the one their gateway is reached through.
        var result = Export.Render("ifcfg", Input("eduvpn-nat-router.json", r => r with { Device = "eth1" }));

        foreach (var (name, line) in seed)
        {
            var text = Text(result, "/etc/sysconfig/network-scripts/" + name);
            // Ours names the priority (the kernel would otherwise pile the rule up at 32765, 32764, ...) and the device.
            Assert.Equal(line + "\n", PrefAndFileDevice().Replace(text, ""));
        }
        Assert.Equal("from 10.10.10.0/24 pref 2000 lookup vpn\n", Text(result, "/etc/sysconfig/network-scripts/rule-eth1"));
        Assert.Empty(result.NotExpressible);
    }

    /// <summary>uci sections as option maps, "config rule" blocks in order.</summary>
    static List<(string Type, Dictionary<string, string> Options)> Sections(string uci)
    {
        var list = new List<(string, Dictionary<string, string>)>();
        foreach (var raw in uci.Split('\n'))
        {
            var line = raw.Trim();
            if (line.StartsWith("config ")) list.Add((line.Split(' ')[1], []));
            else if (line.StartsWith("option ") && list.Count > 0)
            {
                var parts = line.Split(' ', 3);
                list[^1].Item2[parts[1]] = parts[2].Trim('\'');
            }
        }
        return list;
    }

    [Fact]
    public void Seed_002s_rules_and_routes_come_out_as_its_OpenWrt_network_sections_and_its_marks_are_named_as_not_expressible()
    {
        // Seed 002's /etc/config/network: "IP rules" and "IP routes", verbatim.
        const string seed = """
            config rule
            	option mark '0xf1'
            	option lookup 'wan'

            config rule
            	option mark '0xf2'
            	option lookup 'vpn'

            config route
            	option table 'wan'
            	option interface 'wan'
            	option target '0.0.0.0/0'
            	option gateway '172.20.10.1'
            	option source '172.20.10.2'
            	option metric '2'

            config route
            	option table 'vpn'
            	option interface 'vpn'
            	option target '0.0.0.0/0'
            	option gateway '5.5.5.1'
            	option source '5.5.5.2'
            	option metric '10'

            config route
            	option interface 'wan'
            	option target '5.5.5.5'
            	option gateway '172.20.10.1'
            	option metric '0'
            """;
        // OpenWrt names logical interfaces: 'wan' is eth0 and 'vpn' is br-vpn in the seed (export --interface eth0=wan ...).
        var result = Export.Render("uci", Input("openwrt-vpn-marks.json") with { Names = new Dictionary<string, string> { ["eth0"] = "wan", ["br-vpn"] = "vpn" } });
        var ours = Sections(Text(result, "/etc/config/network (append)"));

        // Our priority is explicit; metric 0 and a /32 are the defaults written out.
        var normalised = ours.Select(s => (s.Type, Options: s.Options
                .Where(o => o.Key != "priority")
                .ToDictionary(o => o.Key, o => o.Key == "target" ? o.Value.Replace("/32", "") : o.Value)))
            .ToList();
        var expected = Sections(seed);
        expected[4].Options.Remove("metric");
        // Sections compared as sets: the policy lists the vpn route first, the seed the wan route.
        static string Flat((string Type, Dictionary<string, string> Options) s) =>
            s.Type + ": " + string.Join(", ", s.Options.OrderBy(o => o.Key, StringComparer.Ordinal).Select(o => $"{o.Key}={o.Value}"));
        Assert.Equal(expected.Select(Flat).Order(StringComparer.Ordinal), normalised.Select(Flat).Order(StringComparer.Ordinal));

        Assert.Equal("Marks (9 entries): OpenWrt's /etc/config/network has no packet marking; keep them in nftables (tunnel-router apply, or the nft table 'tunnel-router plan' prints, in /etc/nftables.conf)",
            Assert.Single(result.NotExpressible));
        Assert.Equal("net.ipv4.conf.all.rp_filter = 2\nnet.ipv4.ip_forward = 1\n", Text(result, "/etc/sysctl.d/90-tunnel-router.conf"));
        Assert.StartsWith("# netifd names logical interfaces, not devices: 'vpn' is br-vpn, 'wan' is eth0\n", Text(result, "/etc/config/network (append)"));
        // netifd resolves table names from rt_tables alone.
        Assert.Equal("tables by name (vpn, wan): netifd reads names from /etc/iproute2/rt_tables alone, not rt_tables.d; put '10 vpn', '20 wan' there",
            Assert.Single(result.Notes));
    }

    [Fact]
    public void Uci_without_logical_names_says_which_devices_lack_one_and_how_to_give_them()
    {
        var result = Export.Render("uci", Input("openwrt-vpn-marks.json"));

        var text = Text(result, "/etc/config/network (append)");
        Assert.Contains("# no logical interface given for br-vpn, eth0: written as the device name\n", text);
        Assert.Contains(result.Notes, n => n == "no logical interface given for br-vpn, eth0: the sections name the device, which netifd does not know; pass --interface DEV=NAME for each (NAME: the 'config interface' whose device is DEV, e.g. --interface br-vpn=wan)");
    }

    static TunnelConfigEntry Tunnel(GreMode mode, string local, string remote, string[] addresses, uint mtu = 1448, string? underlay = "eth0", string route = "192.168.20.0/24") =>
        new("Tunnels[0]",
            new GreTunnel("gre_black", mode, System.Net.IPAddress.Parse(local), System.Net.IPAddress.Parse(remote), mtu: mtu, underlay: underlay),
            addresses.Select(a => InterfaceAddress.Parse("a", a)).ToList(),
            [new Route(Net.ParsePrefix("r", route), TableNames.Main, 147, device: "gre_black")]);

    [Fact]
    public void Uci_makes_an_ip6gre_tunnel_as_openwrts_gre_package_reads_it()
    {
        var input = Input("eduvpn-nat-router.json", r => r with { Device = "eth1" }) with
        {
            Tunnels = [Tunnel(GreMode.Ip6Gre, "2001:db8::1", "2001:db8::2", ["10.255.0.1/30", "fd00:255::1/64"])],
            Names = new Dictionary<string, string> { ["eth0"] = "wan6", ["eth1"] = "nat" },
        };

        var result = Export.Render("uci", input);
        var sections = Sections(Text(result, "/etc/config/network (append)"));

        var gre = sections.Single(s => s.Type == "interface" && s.Options["proto"] == "grev6").Options;
        Assert.Equal(new Dictionary<string, string> { ["proto"] = "grev6", ["ip6addr"] = "2001:db8::1", ["peer6addr"] = "2001:db8::2", ["tunlink"] = "wan6", ["mtu"] = "1448", ["ttl"] = "64" }, gre);
        var addresses = sections.Single(s => s.Type == "interface" && s.Options["proto"] == "static").Options;
        Assert.Equal("gre6-gre_black", addresses["device"]);
        // The tunnel's route belongs to the interface holding its addresses; the rules' and routes' devices are named.
        Assert.Contains(sections, s => s.Type == "route" && s.Options["interface"] == "gre_black_static" && s.Options["target"] == "192.168.20.0/24");
        Assert.All(sections.Where(s => s.Type is "route" or "route6" && s.Options.ContainsKey("gateway")), s => Assert.Equal("nat", s.Options["interface"]));
        Assert.Contains("Tunnels[0]: OpenWrt's device for gre_black is gre6-gre_black; its addresses and routes belong to the interface gre_black_static", result.Notes);
    }

    [Fact]
    public void Ifcfg_makes_an_ip6gre_tunnel_with_type_GRE6_and_its_IPv6_addresses_through_ifup_ipv6()
    {
        var input = Input("eduvpn-nat-router.json", r => r with { Device = "eth1" }) with
        {
            Tunnels = [Tunnel(GreMode.Ip6Gre, "2001:db8::1", "2001:db8::2", ["10.255.0.1/30", "fd00:255::1/64", "fd00:256::1/64"])],
        };

        var result = Export.Render("ifcfg", input);

        Assert.Equal("""
            DEVICE=gre_black
            TYPE=GRE6
            ONBOOT=yes
            BOOTPROTO=none
            MY_OUTER_IPADDR=2001:db8::1
            PEER_OUTER_IPADDR=2001:db8::2
            MY_INNER_IPADDR=10.255.0.1/30
            IPV6INIT=yes
            IPV6ADDR=fd00:255::1/64
            IPV6ADDR_SECONDARIES="fd00:256::1/64"
            TTL=64
            MTU=1448

            """, Text(result, "/etc/sysconfig/network-scripts/ifcfg-gre_black"));
        Assert.Equal("192.168.20.0/24 dev gre_black\n", Text(result, "/etc/sysconfig/network-scripts/route-gre_black"));
        Assert.Empty(result.NotExpressible);
    }

    [Fact]
    public void Ifcfg_says_plainly_that_network_scripts_make_no_tap_tunnels()
    {
        var input = Input("eduvpn-nat-router.json", r => r with { Device = "eth1" }) with
        {
            Tunnels = [Tunnel(GreMode.Ip6GreTap, "2001:db8::1", "2001:db8::2", ["10.255.0.1/30"])],
        };

        var result = Export.Render("ifcfg", input);

        Assert.Equal("Tunnels[0] (gre_black, ip6gretap): ifup-tunnel makes gre (TYPE=GRE) and ip6gre (TYPE=GRE6) tunnels only, no tap modes", Assert.Single(result.NotExpressible));
        Assert.DoesNotContain(result.Files, f => f.Path.EndsWith("ifcfg-gre_black"));
    }

    [Fact]
    public void Networkd_drop_ins_carry_routing_policy_rules_and_routes_and_a_gre_netdev()
    {
        var input = Input("eduvpn-nat-router.json", r => r with { Device = "eth1" });
        var tunnel = new TunnelConfigEntry("Tunnels[0]",
            new GreTunnel("gre_black", GreMode.Gre, System.Net.IPAddress.Parse("203.0.113.1"), System.Net.IPAddress.Parse("203.0.113.2"), mtu: 1476, underlay: "eth0"),
            [new InterfaceAddress(System.Net.IPAddress.Parse("10.255.0.1"), 30)],
            [new Route(Net.ParsePrefix("r", "192.168.20.0/24"), TableNames.Main, 147, device: "gre_black")]);

        var result = Export.Render("networkd", input with { Tunnels = [tunnel] });

        Assert.Equal("""
            # a drop-in for the .network file that matches eth1 (e.g. 10-eth1.network.d/)
            [RoutingPolicyRule]
            From=10.10.10.0/24
            Priority=2000
            Table=200

            [RoutingPolicyRule]
            From=fd00:4242:4242:4242::/64
            Priority=2010
            Table=200

            [Route]
            Destination=0.0.0.0/0
            Gateway=192.168.1.1
            Table=200

            [Route]
            Destination=::/0
            Gateway=fd00:1010:1010:1010::1
            Table=200

            """, Text(result, "/etc/systemd/network/eth1.network.d/tunnel-router.conf"));
        Assert.Equal("[NetDev]\nName=gre_black\nKind=gre\nMTUBytes=1476\n\n[Tunnel]\nLocal=203.0.113.1\nRemote=203.0.113.2\nTTL=0\n",
            Text(result, "/etc/systemd/network/90-tunnel-router-gre_black.netdev"));
        Assert.Equal("[Match]\nName=gre_black\n\n[Network]\nAddress=10.255.0.1/30\n\n[Route]\nDestination=192.168.20.0/24\nScope=link\n",
            Text(result, "/etc/systemd/network/90-tunnel-router-gre_black.network"));
        Assert.StartsWith("# a drop-in for the .network file that matches eth0 (e.g. 10-eth0.network.d/)\n[Network]\nTunnel=gre_black\n",
            Text(result, "/etc/systemd/network/eth0.network.d/tunnel-router.conf"));
    }

    [Fact]
    public void Nmcli_commands_add_routing_rules_and_routes_to_the_devices_connection()
    {
        var result = Export.Render("nmcli", Input("eduvpn-nat-router.json", r => r with { Device = "eth1" }));

        // nmcli modifies connections, not devices: the one active on eth1 is looked up when the script runs.
        var text = Text(result, "nmcli commands");
        Assert.Contains("con_eth1=$(connection eth1)\n", text);
        Assert.Contains("nmcli connection modify \"$con_eth1\" +ipv4.routing-rules \"priority 2000 from 10.10.10.0/24 table 200\"\n", text);
        Assert.Contains("nmcli connection modify \"$con_eth1\" +ipv6.routing-rules \"priority 2010 from fd00:4242:4242:4242::/64 table 200\"\n", text);
        Assert.Contains("nmcli connection modify \"$con_eth1\" +ipv4.routes \"0.0.0.0/0 192.168.1.1 table=200\"\n", text);
        Assert.Contains("nmcli connection modify \"$con_eth1\" +ipv6.routes \"::/0 fd00:1010:1010:1010::1 table=200\"\n", text);
        Assert.EndsWith("nmcli device reapply eth1\n", text);
        Assert.Equal("the connections of eth1 are the ones active on them when the script runs; name them with --connection DEV=NAME to fix them now", Assert.Single(result.Notes));
    }

    [Fact]
    public void Nmcli_uses_the_connection_names_it_is_given_quoted_for_the_shell()
    {
        var input = Input("eduvpn-nat-router.json", r => r with { Device = "eth1" }) with
        {
            Names = new Dictionary<string, string> { ["eth1"] = "Wired connection 1" },
        };

        var text = Text(Export.Render("nmcli", input), "nmcli commands");

        Assert.Contains("nmcli connection modify 'Wired connection 1' +ipv4.routing-rules \"priority 2000 from 10.10.10.0/24 table 200\"\n", text);
        Assert.DoesNotContain("connection()", text);
        Assert.EndsWith("nmcli device reapply eth1\n", text);
    }

    [Fact]
    public void Nmcli_adds_a_tunnels_own_connection_before_its_routes_and_brings_it_up()
    {
        var input = Input("eduvpn-nat-router.json", r => r with { Device = "eth1" }) with
        {
            Tunnels = [Tunnel(GreMode.Gre, "203.0.113.1", "203.0.113.2", ["10.255.0.1/30"], mtu: 1476)],
        };

        var text = Text(Export.Render("nmcli", input), "nmcli commands");

        var add = text.IndexOf("nmcli connection add type ip-tunnel con-name gre_black ifname gre_black mode gre remote 203.0.113.2 local 203.0.113.1 ip-tunnel.mtu 1476 ip-tunnel.ttl 0 ipv4.method manual ipv4.addresses 10.255.0.1/30 ipv6.method disabled\n", StringComparison.Ordinal);
        var route = text.IndexOf("nmcli connection modify gre_black +ipv4.routes \"192.168.20.0/24\"\n", StringComparison.Ordinal);
        Assert.True(add >= 0 && route > add, text);
        Assert.EndsWith("nmcli connection up gre_black\n", text);
    }

    [Fact]
    public void An_unknown_format_is_an_error_with_the_closest_one()
    {
        var e = Assert.Throws<InputException>(() => Export.Render("netword", Input("eduvpn-nat-router.json")));

        Assert.Equal("--format: 'netword' is not a format; did you mean 'networkd'? (networkd, ifcfg, uci, nmcli)", e.Message);
    }
}
