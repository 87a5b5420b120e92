using System.Net;
using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>The Routing section planned by the reconciler against snapshots of plain data.</summary>
public class RoutingReconcilerSpecs
{
    static readonly GreTunnel Ab = new("gre_ab", GreMode.Gre, IPAddress.Parse("203.0.113.1"), IPAddress.Parse("203.0.113.2"), mtu: 1476);
    static readonly Link U0 = new("u0", 2, "veth", 1500, true, null, null, [InterfaceAddress.Parse("a", "203.0.113.1/24")]);
    static readonly Link AbLink = new("gre_ab", 7, "gre", 1476, true, TunnelPlanner.OwnerAlias, Ab, [InterfaceAddress.Parse("a", "10.255.1.1/30")]);

    static Route R(string prefix, string dev, string? via = null, byte proto = 2, uint? metric = null) =>
        new(Net.ParsePrefix("d", prefix), TableNames.Main, proto, device: dev, gateway: via is null ? null : IPAddress.Parse(via), metric: metric);

    static TunnelRouterOptions Mesh() => new()
    {
        Tunnels = [new TunnelOptions { Name = "gre_ab", Local = "203.0.113.1", Remote = "203.0.113.2", Mtu = 1476, Addresses = ["10.255.1.1/30"] }],
        Routing = new RoutingOptions { Daemon = "bird", ConfigFile = "/etc/bird/tunnel-router.conf", Interfaces = ["gre_ab cost 10"], Stubs = ["lan0"] },
    };

    PolicyPlan Plan(TunnelRouterOptions o, KernelSnapshot snapshot, ReconcileMode mode = ReconcileMode.Converge) =>
        Reconciler.Plan(PolicyParser.Parse(o, Iproute2Files.Of(), "policy.json"), snapshot, mode);

    static KernelSnapshot Kernel(IReadOnlyList<Route> routes, string? file = null) => new()
    {
        State = new KernelState(routes, []),
        Links = [U0, AbLink],
        Files = new Dictionary<string, string?> { ["/etc/bird/tunnel-router.conf"] = file },
    };

    [Fact]
    public void The_remote_is_pinned_to_the_underlay_even_when_the_daemon_learned_a_longer_prefix_through_the_tunnel()
    {
        // BIRD learned 203.0.113.0/28 over the tunnel itself: the pin must still take the underlay.
        var kernel = Kernel([R("203.0.113.0/24", "u0"), R("203.0.113.0/28", "gre_ab", "10.255.1.2", proto: 12, metric: 32)]);

        var changes = Plan(Mesh(), kernel).Changes.Select(c => c.ToString()).ToList();

        Assert.Contains("ip -4 route add 203.0.113.2 dev u0 table 254 proto 147", changes);
    }

    [Fact]
    public void The_daemons_file_is_written_when_it_differs_and_the_plan_shows_its_diff_then_nothing_when_it_is_the_same()
    {
        var first = Plan(Mesh(), Kernel([R("203.0.113.0/24", "u0")])).Changes.OfType<WriteRoutingConfig>().Single();

        Assert.Null(first.Old);
        Assert.Contains("+\t\tinterface \"gre_ab\" { type ptp; cost 10; hello 10; dead 40; };", first.Display(TableNames.Numeric, ProtocolNames.Numeric));
        Assert.EndsWith("\nbirdc configure", first.Display(TableNames.Numeric, ProtocolNames.Numeric));

        var pinned = R("203.0.113.2/32", "u0", proto: 147);
        var again = Plan(Mesh(), Kernel([R("203.0.113.0/24", "u0"), pinned], first.New)).Changes;
        Assert.Empty(again);
    }

    [Fact]
    public void Flush_empties_the_daemons_file_first_and_leaves_a_file_that_was_never_written_alone()
    {
        var written = OspfConfig.Render(RoutingSection.Parse(Mesh().Routing, "policy.json", [])!.Ospf, "policy.json");
        var owner = ParsedPolicy.Empty("policy.json", 147, 148) with { Routing = RoutingSection.Parse(Mesh().Routing, "policy.json", []) };

        var flush = Reconciler.Plan(owner, Kernel([], written), ReconcileMode.Flush).Changes;
        var never = Reconciler.Plan(owner, Kernel([]), ReconcileMode.Flush).Changes;

        var write = Assert.IsType<WriteRoutingConfig>(flush[0]);
        Assert.Null(write.New);
        Assert.Equal(WriteRoutingConfig.Empty(RoutingDaemonKind.Bird), write.Text);
        Assert.DoesNotContain(never, c => c is WriteRoutingConfig);
    }

    [Fact]
    public void A_line_diff_keeps_what_is_common_and_marks_the_rest_in_file_order()
    {
        Assert.Equal(["-b", "+B", "+d"], LineDiff.Of("a\nb\nc\n", "a\nB\nc\nd\n"));
        Assert.Equal(["+x"], LineDiff.Of("", "x\n"));
    }
}
