using System.Net;
using Serilog;
using TunnelRouter.Cli;
using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Kernel;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>The tunnels part and the routing part planning together, against a kernel of plain data.</summary>
public class TunnelsPartSpecs : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("tunnel-router-unit-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    sealed class LinkKernel(IReadOnlyList<Link> links, IReadOnlyList<Route> routes) : IKernel
    {
        public string Name => "fake";
        public KernelState Read(StateQuery query) => new(routes, []);
        public void Apply(IReadOnlyList<Change> changes) => throw new InvalidOperationException("a plan must not apply");
        public bool LinkExists(string name) => links.Any(l => l.Name == name);
        public IReadOnlyList<InterfaceAddress> ReadAddresses(string device) => links.FirstOrDefault(l => l.Name == device)?.Addresses ?? [];
        public IReadOnlyList<Link> ReadLinks() => links;
        public string? RouteDevice(IPAddress destination) => "inet0";
    }

    static readonly GreTunnel Black = new("gre_black", GreMode.Gre, IPAddress.Parse("203.0.113.1"), IPAddress.Parse("203.0.113.2"), mtu: 1476);
    static readonly InterfaceAddress Inner = InterfaceAddress.Parse("a", "10.255.0.1/30");
    static readonly Link Inet0 = new("inet0", 2, "veth", 1500, true, null, null, [InterfaceAddress.Parse("a", "203.0.113.1/24")]);
    static readonly Link BlackLink = new("gre_black", 7, "gre", 1476, true, TunnelPlanner.OwnerAlias, Black, [Inner]);
    static readonly Route OverBlack = new(Net.ParsePrefix("d", "192.168.20.0/24"), TableNames.Main, 147, device: "gre_black");

    static TunnelOptions Seed() => new()
    {
        Name = "gre_black", Local = "203.0.113.1", Remote = "203.0.113.2", Addresses = ["10.255.0.1/30"], Routes = ["192.168.20.0/24"],
    };

    Context Ctx(TunnelRouterOptions options, IKernel kernel) => new()
    {
        Args = CliArgs.Parse(["plan"]),
        Environment = new Dictionary<string, string>(),
        Options = options,
        ConfigPath = "policy.json",
        Log = new LoggerConfiguration().CreateLogger(),
        Out = TextWriter.Null,
        Names = Iproute2Files.Load(_dir),
        KernelFactory = () => kernel,
    };

    static List<string> PlanAll(Context ctx)
    {
        var parts = PolicyParts.All(ctx);
        foreach (var p in parts) p.Validate(ctx);
        return parts.SelectMany(p => p.Plan(ctx)).Select(c => c.ToString()).ToList();
    }

    [Fact]
    public void Tunnels_come_first_and_their_routes_are_not_the_routing_parts_to_delete()
    {
        var ctx = Ctx(new TunnelRouterOptions { Tunnels = [Seed()], Routes = ["10.20.0.0/16 via 203.0.113.254"] },
            new LinkKernel([Inet0, BlackLink], [OverBlack]));

        Assert.Equal(["tunnels", "routing"], PolicyParts.All(ctx).Select(p => p.Name));
        Assert.Equal(["ip -4 route add 10.20.0.0/16 via 203.0.113.254 table 254 proto 147"], PlanAll(ctx));
    }

    [Fact]
    public void A_tunnel_removed_from_the_policy_loses_its_route_once_then_its_link()
    {
        var ctx = Ctx(new TunnelRouterOptions(), new LinkKernel([Inet0, BlackLink], [OverBlack]));

        Assert.Equal(["ip -4 route del 192.168.20.0/24 dev gre_black table 254 proto 147", "ip link del gre_black"], PlanAll(ctx));
    }

    [Fact]
    public void The_MTU_left_to_tunnel_router_is_the_underlays_minus_the_overhead()
    {
        var keyed = Seed();
        keyed.Key = "5";
        var ctx = Ctx(new TunnelRouterOptions { Tunnels = [keyed] }, new LinkKernel([Inet0, BlackLink with { Gre = Black with { IKey = 4, OKey = 4, Mtu = 1472 }, Mtu = 1472 }], [OverBlack]));

        var change = Assert.Single(PlanAll(ctx));

        Assert.StartsWith("ip link set gre_black mtu 1472 type gre remote 203.0.113.2 local 203.0.113.1 ikey 5 okey 5", change);
    }

    [Fact]
    public void A_top_level_route_over_a_tunnel_is_an_error_pointing_at_the_tunnels_routes()
    {
        var ctx = Ctx(new TunnelRouterOptions { Tunnels = [Seed()], Routes = ["192.168.30.0/24 dev gre_black"] },
            new LinkKernel([Inet0], []));

        var e = Assert.Throws<InputException>(() => PlanAll(ctx));

        Assert.Equal("policy.json: Routes[0]: goes over tunnel gre_black; list it in Tunnels:0:Routes, where it is made and removed with the tunnel", e.Message);
    }
}
