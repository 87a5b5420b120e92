using TunnelRouter.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace TunnelRouter.Tests.Guest;

/// <summary>Three sites' policies for tests/guest/mesh-bird.sh: a full GRE mesh, OSPF by BIRD over it.</summary>
public sealed class MeshGuest : IDisposable
{
    public MeshGuest()
    {
        Work = Directory.CreateTempSubdirectory("tunnel-router-mesh-").FullName;
        File.WriteAllText(Path.Combine(Work, "site-a.json"), Site("A", [("gre_ab", "203.0.113.5", "203.0.113.6", "10.255.1.1/30", 10),
                                                                        ("gre_ac", "203.0.113.13", "203.0.113.14", "10.255.3.1/30", 10)]));
        File.WriteAllText(Path.Combine(Work, "site-a-no-ac.json"), Site("A", [("gre_ab", "203.0.113.5", "203.0.113.6", "10.255.1.1/30", 10)]));
        File.WriteAllText(Path.Combine(Work, "site-b.json"), Site("B", [("gre_ab", "203.0.113.6", "203.0.113.5", "10.255.1.2/30", 10),
                                                                        ("gre_bc", "203.0.113.9", "203.0.113.10", "10.255.2.1/30", 10)]));
        File.WriteAllText(Path.Combine(Work, "site-c.json"), Site("C", [("gre_bc", "203.0.113.10", "203.0.113.9", "10.255.2.2/30", 10),
                                                                        ("gre_ac", "203.0.113.14", "203.0.113.13", "10.255.3.2/30", 10)]));
        Run = GuestKernel.Run(Path.Combine(GuestKernel.RepoRoot, "tests", "guest", "mesh-bird.sh"), Work, TimeSpan.FromSeconds(150));
    }

    /// <summary>One site of the mesh, as an admin writes it (README "Many sites").</summary>
    static string Site(string site, (string Name, string Local, string Remote, string Address, int Cost)[] tunnels) => $$"""
        {
          "Tunnels": [ {{string.Join(",\n    ", tunnels.Select(t =>
              $"{{ \"Name\": \"{t.Name}\", \"Local\": \"{t.Local}\", \"Remote\": \"{t.Remote}\", \"Addresses\": [ \"{t.Address}\" ] }}"))}} ],
          "Routing": {
            "Daemon": "bird", "Hello": 1, "Dead": 4,
            "ConfigFile": "/run/site{{site}}/bird/tunnel-router.conf", "Control": "/run/site{{site}}/bird.ctl",
            "Interfaces": [ {{string.Join(", ", tunnels.Select(t => $"\"{t.Name} cost {t.Cost}\""))}} ],
            "Stubs": [ "lan0" ]
          }
        }
        """;

    public string Work { get; }
    public GuestRun Run { get; }

    public void Dispose()
    {
        try { Directory.Delete(Work, recursive: true); } catch (IOException) { }
    }
}

/// <summary>
/// Issue "many sites": three sites in the guest kernel, a full GRE mesh owned by tunnel-router, BIRD's OSPF
/// over it configured through tunnel-router's Routing section. LAN A reaches LAN C directly; with the A–C
/// tunnel out of A's policy traffic goes through B within OSPF's dead interval; back in, the direct path returns.
/// </summary>
[Collection("guest-mesh")]
public class GreMeshGuestSpecs(MeshGuest guest, ITestOutputHelper output) : IClassFixture<MeshGuest>
{
    readonly GuestRun _run = guest.Run;

    static double Uptime(string value) => double.Parse(value.Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void The_guest_boots_and_runs_the_whole_scenario() => LinkJson.ReportTimes(_run, output);

    [Fact]
    public void Each_site_applies_its_mesh_and_BIRD_reads_the_file_tunnel_router_wrote()
    {
        Assert.Equal(0, _run.Rc("apply.a"));
        Assert.Equal(0, _run.Rc("apply.b"));
        Assert.Equal(0, _run.Rc("apply.c"));
        Assert.Contains("[#] ip link add gre_ac mtu 1476 type gre remote 203.0.113.14 local 203.0.113.13", _run.Out("apply.a"));
        Assert.Contains("[#] write /run/siteA/bird/tunnel-router.conf", _run.Out("apply.a"));
        var file = _run.One("file.a");
        Assert.Contains("protocol ospf v2 tunnel_router {", file);
        Assert.Contains("interface \"gre_ac\" { type ptp; cost 10; hello 1; dead 4; };", file);
        Assert.Contains("interface \"lan0\" { stub yes; };", file);
        Assert.Equal("2", _run.One("neighbours.a"));
        Assert.Equal(0, _run.Rc("plan.a"));
    }

    [Fact]
    public void Each_tunnels_remote_is_pinned_to_the_underlay_so_OSPF_can_never_route_it_into_a_tunnel()
    {
        Assert.StartsWith("203.0.113.14 dev uAC proto 147", _run.One("pin.a"));
    }

    [Fact]
    public void LAN_A_reaches_LAN_C_over_the_direct_tunnel()
    {
        Assert.Contains("192.168.3.0/24 via 10.255.3.2 dev gre_ac proto bird metric 32", _run.One("route.direct"));
        Assert.Equal("0", _run.One("ping.direct"));
    }

    [Fact]
    public void Without_the_A_C_tunnel_traffic_goes_through_B_within_the_dead_interval_and_returns_when_it_is_back()
    {
        Assert.Equal(0, _run.Rc("remove.a"));
        Assert.Contains("[#] ip link del gre_ac", _run.Out("remove.a"));
        Assert.Contains("192.168.3.0/24 via 10.255.1.2 dev gre_ab proto bird metric 32", _run.One("route.via_b"));
        var removed = Uptime(_run.One("removed"));
        var rerouted = Uptime(_run.One("route.via_b"));
        var reachable = Uptime(_run.One("reachable.via_b"));
        output.WriteLine($"failover (guest clock): A's route via B after {rerouted - removed:0.0} s, LAN C reachable again after {reachable - removed:0.0} s (dead interval 4 s)");
        Assert.NotEqual("0", _run.One("hops.via_b")); // the record-route option shows B's tunnel address on the way

        Assert.Equal(0, _run.Rc("restore.a"));
        Assert.Contains("192.168.3.0/24 via 10.255.3.2 dev gre_ac proto bird metric 32", _run.One("route.restored"));
        Assert.Equal("0", _run.One("ping.restored"));
    }

    [Fact]
    public void Flush_removes_the_mesh_and_empties_BIRDs_file_while_BIRD_keeps_running()
    {
        Assert.Equal(0, _run.Rc("flush.a"));
        Assert.Equal("0", _run.One("flushed.links"));
        Assert.Equal("0", _run.One("flushed.file"));
        Assert.Equal("1", _run.One("flushed.bird"));
    }
}
