using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary>export in a namespace: the devices the kernel fills in are named as the target names them (OpenWrt's logical
/// interfaces, NetworkManager's connections), and a name option of the other format is an error.</summary>
public class ExportNamesSpecs
{
    /// <summary>Seed 003's server: eth1 towards the NAT router, the policy's routes without dev.</summary>
    static NetNs Seed003(out string policy)
    {
        var ns = new NetNs();
        Hardening.AddVeth(ns, "eth1", "192.168.1.100/24");
        ns.Ip("-6", "addr", "add", "fd00:1010:1010:1010::100/64", "dev", "eth1", "nodad");
        policy = Topology.Example(ns, "eduvpn-nat-router.json");
        return ns;
    }

    [Fact]
    public void Uci_names_the_device_the_gateway_is_reached_through_by_its_logical_interface()
    {
        using var ns = Seed003(out var policy);

        var run = Run(ns, ["export", "--format", "uci", "--interface", "eth1=nat", "-c", policy]);

        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Contains("config route\n\toption table 'vpn'\n\toption interface 'nat'\n\toption target '0.0.0.0/0'\n\toption gateway '192.168.1.1'\n", run.Stdout);
        Assert.Contains("# netifd names logical interfaces, not devices: 'nat' is eth1\n", run.Stdout);
        Assert.DoesNotContain("no logical interface given", run.Stdout);
    }

    [Fact]
    public void Nmcli_looks_the_connection_up_unless_it_is_named()
    {
        using var ns = Seed003(out var policy);

        var looked = Run(ns, ["export", "--format", "nmcli", "-c", policy]);
        var named = Run(ns, ["export", "--format", "nmcli", "--connection", "eth1=System eth1", "-c", policy]);

        Assert.Contains("con_eth1=$(connection eth1)\n", looked.Stdout);
        Assert.Contains("tunnel-router: note: the connections of eth1 are the ones active on them when the script runs", looked.Stderr);
        Assert.Contains("nmcli connection modify 'System eth1' +ipv4.routes \"0.0.0.0/0 192.168.1.1 table=200\"\n", named.Stdout);
    }

    [Theory]
    [InlineData("nmcli", "--interface", "eth1=nat", "tunnel-router: error: --interface: names OpenWrt's logical interfaces: it goes with --format uci\n")]
    [InlineData("uci", "--interface", "eth1", "tunnel-router: error: --interface: 'eth1': expected DEV=NAME, e.g. br-vpn=vpn\n")]
    [InlineData("uci", "--connection", "eth1=x", "tunnel-router: error: --connection: names NetworkManager's connections: it goes with --format nmcli\n")]
    public void A_name_option_that_does_not_fit_is_one_line(string format, string option, string value, string expected)
    {
        using var ns = Seed003(out var policy);

        var run = Run(ns, ["export", "--format", format, option, value, "-c", policy]);

        Assert.Equal((1, expected), (run.ExitCode, run.Stderr));
    }
}
