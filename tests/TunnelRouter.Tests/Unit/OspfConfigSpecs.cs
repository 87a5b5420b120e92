using TunnelRouter.Core;
using Xunit;

namespace TunnelRouter.Tests.Unit;

public class OspfConfigSpecs
{
    static OspfSettings Site(RoutingDaemonKind daemon, bool ipv6 = false, params OspfInterface[] interfaces) =>
        new(daemon, "0", 1, 4, ipv6, interfaces.Length > 0 ? interfaces : [new("gre_ab", 10, false), new("gre_ac", 20, false), new("lan0", 0, true)]);

    [Fact]
    public void BIRD_gets_one_OSPFv2_protocol_with_point_to_point_tunnels_and_stub_LANs()
    {
        var text = OspfConfig.Render(Site(RoutingDaemonKind.Bird), "/etc/tunnel-router/tunnel-router.json");

        Assert.Equal("""
            # Written by tunnel-router from /etc/tunnel-router/tunnel-router.json: do not edit, the next apply rewrites it.
            # Include it from bird.conf: include "<this file>";
            protocol ospf v2 tunnel_router {
            	ipv4 { import all; export none; };
            	area 0 {
            		interface "gre_ab" { type ptp; cost 10; hello 1; dead 4; };
            		interface "gre_ac" { type ptp; cost 20; hello 1; dead 4; };
            		interface "lan0" { stub yes; };
            	};
            }

            """.ReplaceLineEndings("\n"), text);
    }

    [Fact]
    public void BIRD_with_IPv6_gets_an_OSPFv3_protocol_on_the_same_interfaces()
    {
        var text = OspfConfig.Render(Site(RoutingDaemonKind.Bird, ipv6: true), "p.json");

        Assert.Contains("protocol ospf v2 tunnel_router {\n\tipv4 {", text);
        Assert.Contains("protocol ospf v3 tunnel_router6 {\n\tipv6 { import all; export none; };", text);
        Assert.Equal(2, text.Split("interface \"gre_ac\" { type ptp; cost 20;").Length - 1);
    }

    [Fact]
    public void FRR_gets_interface_stanzas_in_the_area_and_no_network_statement()
    {
        var text = OspfConfig.Render(Site(RoutingDaemonKind.Frr, false, new("gre_ab", 10, false), new("lan0", 0, true)), "p.json");

        Assert.Equal("""
            ! Written by tunnel-router from p.json: do not edit, the next apply rewrites it.
            ! Applied with: vtysh -f <this file>
            interface gre_ab
             ip ospf area 0
             ip ospf network point-to-point
             ip ospf cost 10
             ip ospf hello-interval 1
             ip ospf dead-interval 4
            exit
            interface lan0
             ip ospf area 0
             ip ospf passive
            exit
            router ospf
            exit

            """.ReplaceLineEndings("\n"), text);
        Assert.DoesNotContain("network 1", text);
    }

    [Fact]
    public void Rendering_is_pure_the_same_settings_give_the_same_bytes()
    {
        Assert.Equal(OspfConfig.Render(Site(RoutingDaemonKind.Frr, true), "p"), OspfConfig.Render(Site(RoutingDaemonKind.Frr, true), "p"));
        Assert.Equal(OspfConfig.Render(Site(RoutingDaemonKind.Bird, true), "p"), OspfConfig.Render(Site(RoutingDaemonKind.Bird, true), "p"));
    }

    [Fact]
    public void FRR_withdraw_negates_the_lines_of_an_interface_that_left_and_the_lines_that_changed()
    {
        var before = OspfConfig.Render(Site(RoutingDaemonKind.Frr), "p");
        var after = OspfConfig.Render(Site(RoutingDaemonKind.Frr, false, new("gre_ab", 15, false), new("lan0", 0, true)), "p");

        var withdraw = OspfConfig.FrrWithdraw(before, after);

        Assert.Equal("""
            interface gre_ab
             no ip ospf cost 10
            exit
            interface gre_ac
             no ip ospf area 0
             no ip ospf network point-to-point
             no ip ospf cost 20
             no ip ospf hello-interval 1
             no ip ospf dead-interval 4
            exit

            """.ReplaceLineEndings("\n"), withdraw);
    }

    [Fact]
    public void FRR_withdraw_is_nothing_without_an_earlier_file_or_when_nothing_left()
    {
        var text = OspfConfig.Render(Site(RoutingDaemonKind.Frr), "p");

        Assert.Null(OspfConfig.FrrWithdraw(null, text));
        Assert.Null(OspfConfig.FrrWithdraw(text, text));
    }

    [Fact]
    public void FRR_stanzas_are_read_back_by_interface()
    {
        var stanzas = OspfConfig.FrrStanzas(OspfConfig.Render(Site(RoutingDaemonKind.Frr), "p"));

        Assert.Equal(["gre_ab", "gre_ac", "lan0"], stanzas.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(["ip ospf area 0", "ip ospf passive"], stanzas["lan0"]);
    }
}
