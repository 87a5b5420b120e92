using System.Text.RegularExpressions;
using TunnelRouter.Config;
using TunnelRouter.Core;
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
        var result = Export.Render("uci", Input("openwrt-vpn-marks.json"));
        var ours = Sections(Text(result, "/etc/config/network (append)"));

        // OpenWrt names logical interfaces: 'wan' is eth0 and 'vpn' is br-vpn in the seed; our priority is explicit;
        // metric 0 and a /32 are the defaults written out.
        var logical = new Dictionary<string, string> { ["eth0"] = "wan", ["br-vpn"] = "vpn" };
        var normalised = ours.Select(s => (s.Type, Options: s.Options
                .Where(o => o.Key != "priority")
                .ToDictionary(o => o.Key, o => o.Key == "interface" ? logical[o.Value] : o.Key == "target" ? o.Value.Replace("/32", "") : o.Value)))
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

        var text = Text(result, "nmcli commands");
        Assert.Contains("nmcli connection modify eth1 +ipv4.routing-rules \"priority 2000 from 10.10.10.0/24 table 200\"\n", text);
        Assert.Contains("nmcli connection modify eth1 +ipv6.routing-rules \"priority 2010 from fd00:4242:4242:4242::/64 table 200\"\n", text);
        Assert.Contains("nmcli connection modify eth1 +ipv4.routes \"0.0.0.0/0 192.168.1.1 table=200\"\n", text);
        Assert.Contains("nmcli connection modify eth1 +ipv6.routes \"::/0 fd00:1010:1010:1010::1 table=200\"\n", text);
    }

    [Fact]
    public void An_unknown_format_is_an_error_with_the_closest_one()
    {
        var e = Assert.Throws<InputException>(() => Export.Render("netword", Input("eduvpn-nat-router.json")));

        Assert.Equal("--format: 'netword' is not a format; did you mean 'networkd'? (networkd, ifcfg, uci, nmcli)", e.Message);
    }
}
