using System.Net;
using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Policy;
using Xunit;

namespace TunnelRouter.Tests.Unit;

public class RoutingSectionSpecs
{
    static RoutingSpec Parse(RoutingOptions o) => RoutingSection.Parse(o, "p.json", [])!;

    static InputException Refused(RoutingOptions o) => Assert.Throws<InputException>(() => RoutingSection.Parse(o, "p.json", []));

    [Fact]
    public void A_section_with_a_daemon_and_interfaces_parses_with_OSPFs_defaults()
    {
        var spec = Parse(new RoutingOptions { Daemon = "bird", Interfaces = ["gre_ab cost 20", "gre_ac"], Stubs = ["lan0"] });

        Assert.Equal(RoutingDaemonKind.Bird, spec.Daemon);
        Assert.Equal("/etc/bird/tunnel-router.conf", spec.ConfigFile);
        Assert.Equal((10u, 40u, "0"), (spec.Ospf.Hello, spec.Ospf.Dead, spec.Ospf.Area));
        Assert.Equal([new OspfInterface("gre_ab", 20, false), new OspfInterface("gre_ac", 10, false), new OspfInterface("lan0", 0, true)], spec.Ospf.Interfaces);
        Assert.Equal("/etc/frr/tunnel-router.conf", Parse(new RoutingOptions { Daemon = "FRR", Interfaces = ["t0"] }).ConfigFile);
    }

    [Theory]
    [InlineData(null, "p.json: Routing.Daemon: is not set; expected bird or frr")]
    [InlineData("quagga", "p.json: Routing.Daemon: 'quagga' is not a daemon tunnel-router configures; expected bird or frr")]
    public void The_daemon_is_bird_or_frr(string? daemon, string message) =>
        Assert.Equal(message, Refused(new RoutingOptions { Daemon = daemon, Interfaces = ["t0"] }).Message);

    [Theory]
    [InlineData("gre_ab cost 0", "p.json: Routing.Interfaces[0]: cost '0' is not an OSPF cost; expected 1 to 65535")]
    [InlineData("gre_ab cots 5", "p.json: Routing.Interfaces[0]: 'gre_ab cots 5': expected \"NAME\" or \"NAME cost N\"")]
    [InlineData("gre;ab", "p.json: Routing.Interfaces[0]")]
    public void A_bad_interface_line_names_its_entry(string line, string start) =>
        Assert.StartsWith(start, Refused(new RoutingOptions { Daemon = "bird", Interfaces = [line] }).Message);

    [Fact]
    public void An_interface_listed_twice_names_both_places_and_stubs_alone_are_not_enough()
    {
        Assert.Equal("p.json: Routing.Stubs[0]: t0 is already in p.json: Routing.Interfaces[0]",
            Refused(new RoutingOptions { Daemon = "bird", Interfaces = ["t0"], Stubs = ["t0"] }).Message);
        Assert.StartsWith("p.json: Routing.Interfaces: names no interface",
            Refused(new RoutingOptions { Daemon = "bird", Stubs = ["lan0"] }).Message);
    }

    [Theory]
    [InlineData(10u, 10u, "p.json: Routing.Dead: 10 must be more than Hello (10)")]
    [InlineData(0u, 40u, "p.json: Routing.Hello: 0 is not a hello interval")]
    public void Timers_are_checked(uint hello, uint dead, string start) =>
        Assert.StartsWith(start, Refused(new RoutingOptions { Daemon = "bird", Interfaces = ["t0"], Hello = hello, Dead = dead }).Message);

    [Theory]
    [InlineData("0.0.0.1", "0.0.0.1")]
    [InlineData("7", "7")]
    public void The_area_is_a_number_or_a_dotted_quad(string area, string expected) =>
        Assert.Equal(expected, Parse(new RoutingOptions { Daemon = "bird", Interfaces = ["t0"], Area = area }).Ospf.Area);

    [Fact]
    public void A_relative_file_or_control_path_is_refused()
    {
        Assert.StartsWith("p.json: Routing.ConfigFile: 'bird.conf' is not an absolute path",
            Refused(new RoutingOptions { Daemon = "bird", Interfaces = ["t0"], ConfigFile = "bird.conf" }).Message);
        Assert.StartsWith("p.json: Routing.Control: 'bird.ctl' is not an absolute path",
            Refused(new RoutingOptions { Daemon = "bird", Interfaces = ["t0"], Control = "bird.ctl" }).Message);
    }

    [Fact]
    public void OSPFv3_joins_when_a_tunnel_taking_part_has_an_IPv6_address()
    {
        var tunnel = new TunnelConfigEntry("Tunnels[0]",
            new GreTunnel("gre_ab", GreMode.Gre, IPAddress.Parse("203.0.113.1"), IPAddress.Parse("203.0.113.2")),
            [new InterfaceAddress(IPAddress.Parse("fd00:1::1"), 64)], []);

        var spec = RoutingSection.Parse(new RoutingOptions { Daemon = "bird", Interfaces = ["gre_ab"] }, "p.json", [tunnel])!;

        Assert.True(spec.Ospf.Ipv6);
        Assert.Contains("protocol ospf v3 tunnel_router6", spec.Render("p.json"));
    }
}

public class OspfNeighboursSpecs
{
    [Fact]
    public void BIRDs_neighbour_table_reads_as_interface_router_and_state()
    {
        const string output = "BIRD 2.0.12 ready.\ntunnel_router:\nRouter ID   \tPri\t     State     \tDTime\tInterface  Router IP\n" +
                              "10.99.0.2   \t  1\tFull/PtP  \t 3.988\to0         10.99.0.2\n10.0.0.3 \t 1\tExStart/PtP \t 3.1\tgre_ac 10.255.3.2\n";

        var n = OspfNeighbours.ParseBird(output);

        Assert.Equal([new OspfNeighbour("o0", "10.99.0.2", "Full/PtP"), new OspfNeighbour("gre_ac", "10.0.0.3", "ExStart/PtP")], n);
        Assert.True(n[0].IsFull);
        Assert.True(n[1].IsStuckOnMtu);
    }

    [Fact]
    public void FRRs_neighbour_table_reads_the_interface_before_the_colon()
    {
        const string output = "\nNeighbor ID     Pri State           Up Time         Dead Time Address         Interface                        RXmtL RqstL DBsmL\n" +
                              "10.98.0.2         1 Full/-          7.302s             3.846s 10.98.0.2       o0:10.98.0.1                         1     0     0\n\n";

        Assert.Equal([new OspfNeighbour("o0", "10.98.0.2", "Full/-")], OspfNeighbours.ParseFrr(output));
    }
}
