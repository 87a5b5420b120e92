using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Policy;
using Xunit;

namespace TunnelRouter.Tests.Unit;

public class TunnelConfigSpecs
{
    static TunnelOptions Seed() => new()
    {
        Name = "gre_black", Local = "203.0.113.1", Remote = "203.0.113.2",
        Addresses = ["10.255.0.1/30"], Routes = ["192.168.20.0/24"],
    };

    static uint? Tables(string name) => name switch
    {
        "vpn" => 200,
        "main" => 254,
        _ when uint.TryParse(name, out var n) => n,
        _ => null,
    };

    static IReadOnlyList<TunnelConfigEntry> Parse(params TunnelOptions[] tunnels) => TunnelConfig.Parse(tunnels, 147, Tables);

    static string Error(Action<TunnelOptions> change)
    {
        var o = Seed();
        change(o);
        return Assert.Throws<InputException>(() => Parse(o)).Message;
    }

    [Fact]
    public void The_seed_tunnel_is_plain_Cisco_compatible_GRE_with_its_address_and_route()
    {
        var t = Assert.Single(Parse(Seed()));

        Assert.Equal(new GreTunnel("gre_black", GreMode.Gre, System.Net.IPAddress.Parse("203.0.113.1"), System.Net.IPAddress.Parse("203.0.113.2")), t.Link);
        Assert.Null(t.Link.IKey);
        Assert.Null(t.Link.OKey);
        Assert.Equal(0u, t.Link.Mtu); // computed from the underlay at plan time
        Assert.Equal("10.255.0.1/30", Assert.Single(t.Addresses).ToString());
        Assert.Equal("192.168.20.0/24 dev gre_black table 254 proto 147", Assert.Single(t.Routes).ToString());
    }

    [Theory]
    [InlineData("192.168.50.0/24 dev gre_black", "192.168.50.0/24 dev gre_black table 254 proto 147")]
    [InlineData("192.168.50.0/24 table vpn", "192.168.50.0/24 dev gre_black table 200 proto 147")]
    [InlineData("to 192.168.50.0/24 table 10 metric 5", "192.168.50.0/24 dev gre_black table 10 proto 147 metric 5")]
    [InlineData("default table vpn", "default dev gre_black table 200 proto 147")]
    [InlineData("fd00:50::/64", "fd00:50::/64 dev gre_black table 254 proto 147")]
    [InlineData("10.9.0.0/16 via 10.255.0.2", "10.9.0.0/16 via 10.255.0.2 dev gre_black table 254 proto 147")]
    [InlineData("192.168.50.0/24 src 10.255.0.1 mtu 1400", "192.168.50.0/24 dev gre_black src 10.255.0.1 table 254 proto 147 mtu 1400")]
    public void Routes_over_the_tunnel_take_the_route_forms_a_tunnel_needs(string line, string route)
    {
        var o = Seed();
        o.Routes = [line];

        Assert.Equal(route, Assert.Single(Assert.Single(Parse(o)).Routes).ToString());
    }

    [Fact]
    public void Keys_are_numbers_or_dotted_quads_and_Key_sets_both_directions()
    {
        var o = Seed();
        o.Key = "0.0.3.233";
        var t = Assert.Single(Parse(o)).Link;
        Assert.Equal((1001u, 1001u), (t.IKey!.Value, t.OKey!.Value));

        o.Key = null;
        o.IKey = "4294967295";
        t = Assert.Single(Parse(o)).Link;
        Assert.Equal(uint.MaxValue, t.IKey);
        Assert.Null(t.OKey);
    }

    [Theory]
    [InlineData("Name", "gre_black_and_blue", "Tunnels[0].Name: 'gre_black_and_blue' is longer than 15 bytes, the kernel's limit for interface names")]
    [InlineData("Name", "gre0", "Tunnels[0].Name: 'gre0' is the kernel's own fallback device; choose another name")]
    [InlineData("Name", "gre black", "Tunnels[0].Name: 'gre black' is not a valid interface name (allowed: letters, digits, - _ . @ +)")]
    [InlineData("Mode", "ipip", "Tunnels[0].Mode: 'ipip' is not a GRE mode (gre, gretap, ip6gre, ip6gretap)")]
    [InlineData("Remote", "", "Tunnels[0].Remote: is not set; a gre tunnel needs the other end's IPv4 address")]
    [InlineData("Remote", "2001:db8::2", "Tunnels[0].Remote: '2001:db8::2' is IPv6 but mode gre runs over IPv4 (use ip6gre for that)")]
    [InlineData("Remote", "203.0.113", "Tunnels[0].Remote: '203.0.113' is not a valid IPv4 address")]
    [InlineData("Local", "203.0.113.2", "Tunnels[0].Local: '203.0.113.2' is also Remote; a tunnel joins two different addresses")]
    [InlineData("Local", "0.0.0.0", "Tunnels[0].Local: '0.0.0.0' is the unspecified address; leave Local unset for 'any'")]
    [InlineData("Key", "4294967296", "Tunnels[0].Key: '4294967296' is not a GRE key (0 to 4294967295, or a dotted quad like 0.0.0.42)")]
    [InlineData("Key", "-1", "Tunnels[0].Key: '-1' is not a GRE key (0 to 4294967295, or a dotted quad like 0.0.0.42)")]
    [InlineData("Addresses", "10.255.0.1/33", "Tunnels[0].Addresses[0]: '33' is not a prefix length from 0 to 32")]
    [InlineData("Routes", "192.168.20.0/24 dev eth0", "Tunnels[0].Routes[0]: dev 'eth0' is not this tunnel (gre_black); a tunnel's routes go over the tunnel")]
    [InlineData("Routes", "192.168.20.1/24", "Tunnels[0].Routes[0]: word 1 '192.168.20.1/24': has host bits set; did you mean 192.168.20.0/24?")]
    [InlineData("Routes", "192.168.20.0/24 table nowhere", "Tunnels[0].Routes[0]: word 3 'nowhere': is not a table defined in rt_tables or the policy's Tables; add it to Tables, e.g. \"Tables\": { \"vpn\": 200 }")]
    [InlineData("Routes", "192.168.20.0/24 proto static", "Tunnels[0].Routes[0]: word 2 'proto': tunnel-router sets the protocol itself (it marks what tunnel-router owns); remove it")]
    [InlineData("Routes", "blackhole 192.168.20.0/24", "Tunnels[0].Routes[0]: 'blackhole 192.168.20.0/24' is a blackhole route; only unicast routes go over a tunnel")]
    [InlineData("Underlay", "gre_black", "Tunnels[0].Underlay: is the tunnel itself")]
    public void Bad_values_are_one_line_errors_naming_the_key(string key, string value, string error)
    {
        Assert.Equal(error, Error(o =>
        {
            switch (key)
            {
                case "Name": o.Name = value; break;
                case "Mode": o.Mode = value; break;
                case "Remote": o.Remote = value; break;
                case "Local": o.Local = value; break;
                case "Key": o.Key = value; break;
                case "Addresses": o.Addresses = [value]; break;
                case "Routes": o.Routes = [value]; break;
                case "Underlay": o.Underlay = value; break;
            }
        }));
    }

    [Fact]
    public void Numbers_out_of_range_and_contradictions_are_errors()
    {
        Assert.Equal("Tunnels[0].Ttl: 256 is not a TTL (0 = inherit, 1 to 255)", Error(o => o.Ttl = 256));
        Assert.Equal("Tunnels[0].Tos: 300 is not a TOS byte (0 to 255)", Error(o => o.Tos = 300));
        Assert.Equal("Tunnels[0].Mtu: 40 is not an MTU (68 to 65535)", Error(o => o.Mtu = 40));
        Assert.Equal("Tunnels[0].Mtu: 1200 is below 1280, the least IPv6 needs, and the tunnel has IPv6 addresses",
            Error(o => { o.Mtu = 1200; o.Addresses = ["fd00:6::1/64"]; }));
        Assert.Equal("Tunnels[0].Key: is set together with IKey/OKey; use Key for one key both ways, or IKey and OKey",
            Error(o => { o.Key = "1"; o.OKey = "2"; }));
        Assert.Equal("Tunnels[0].PMtuDisc: applies to gre and gretap only; ip6gre has no such switch",
            Error(o => { o.Mode = "ip6gre"; o.Local = "2001:db8::1"; o.Remote = "2001:db8::2"; o.PMtuDisc = false; }));
        Assert.Equal("Tunnels[0].Dev: 'eth1' contradicts Underlay 'eth0'; set one of them", Error(o => { o.Underlay = "eth0"; o.Dev = "eth1"; }));
        Assert.Equal("Tunnels[0].Addresses[1]: '10.255.0.1/30' is listed twice", Error(o => o.Addresses = ["10.255.0.1/30", "10.255.0.1/30"]));
    }

    [Fact]
    public void Two_tunnels_may_not_share_a_name_nor_endpoints_and_key()
    {
        var second = Seed();
        second.Remote = "203.0.113.3";
        Assert.Equal("Tunnels[1].Name: 'gre_black' is already the name of Tunnels[0]",
            Assert.Throws<InputException>(() => Parse(Seed(), second)).Message);

        var twin = Seed();
        twin.Name = "gre_white";
        Assert.Equal("Tunnels[1]: has the same mode, local, remote and key as Tunnels[0]; the kernel could not tell their packets apart",
            Assert.Throws<InputException>(() => Parse(Seed(), twin)).Message);

        twin.Key = "9";
        Assert.Equal(2, Parse(Seed(), twin).Count);
    }

    [Fact]
    public void A_misspelt_key_inside_a_tunnel_is_an_error_naming_it()
    {
        var e = Assert.Throws<InputException>(() => ConfigLoader.Load(new Dictionary<string, string>(),
            [new("Tunnels:0:Name", "gre_black"), new("Tunnels:0:Remtoe", "203.0.113.2")], null));

        Assert.StartsWith("command line: Tunnels[0].Remtoe: unknown key; did you mean 'Remote'? (known: Name, Mode", e.Message);
    }

    [Fact]
    public void Tunnels_bind_from_the_configuration()
    {
        var (options, _) = ConfigLoader.Load(new Dictionary<string, string>(),
        [
            new("Tunnels:0:Name", "gre_black"), new("Tunnels:0:Mode", "gretap"), new("Tunnels:0:Remote", "203.0.113.2"),
            new("Tunnels:0:Ttl", "64"), new("Tunnels:0:PMtuDisc", "false"), new("Tunnels:0:Mtu", "1400"),
            new("Tunnels:0:Addresses:0", "10.255.0.1/30"), new("Tunnels:0:Routes:0", "192.168.20.0/24 table vpn"),
        ], null);

        var t = Assert.Single(options.Tunnels);
        Assert.Equal(("gre_black", "gretap", 64u, false, 1400u), (t.Name, t.Mode, t.Ttl!.Value, t.PMtuDisc!.Value, t.Mtu!.Value));
        Assert.Equal(["10.255.0.1/30"], t.Addresses);
        Assert.Equal(["192.168.20.0/24 table vpn"], t.Routes);
    }
}
