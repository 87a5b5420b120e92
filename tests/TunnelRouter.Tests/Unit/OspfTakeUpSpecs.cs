using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>
/// Issue "FRR never takes some tunnels into OSPF": after an apply the daemon must run OSPF on every interface it was
/// given. The daemons' own words are read here (pure), and what one look at them asks for next is decided here.
/// </summary>
public class OspfTakeUpSpecs
{
    static readonly InterfaceAddress Ab = InterfaceAddress.Parse("a", "10.255.1.1/30");
    static readonly InterfaceAddress Ac = InterfaceAddress.Parse("a", "10.255.3.1/30");
    static readonly InterfaceAddress Lan = InterfaceAddress.Parse("a", "192.168.1.1/24");

    static SettleOspf Settle(RoutingDaemonKind daemon) => new(daemon, "/run/frr",
        new OspfSettings(daemon, "0", 1, 4, false, [new("gre_ab", 10, false), new("gre_ac", 10, false), new("lan0", 0, true)]),
        new Dictionary<string, IReadOnlyList<InterfaceAddress>> { ["gre_ab"] = [Ab], ["gre_ac"] = [Ac] }, TimeSpan.FromSeconds(30));

    static readonly Dictionary<string, IReadOnlyList<InterfaceAddress>> Kernel = new()
    {
        ["gre_ab"] = [Ab], ["gre_ac"] = [Ac], ["lan0"] = [Lan],
    };

    static Func<string, DaemonLink?> Knows(params DaemonLink[] links) => name => links.FirstOrDefault(l => l.Name == name);

    [Fact]
    public void FRRs_interface_table_lists_every_interface_ospfd_took_up_or_down()
    {
        const string output = """
            gre_ab is up
              ifindex 5, MTU 1476 bytes, BW 0 Mbit <UP,POINTOPOINT,RUNNING,NOARP>
              Internet Address 10.255.1.1/30, Broadcast 10.255.1.3, Area 0.0.0.0
            lan0 is down
              ifindex 3, MTU 1500 bytes, BW 10000 Mbit <UP,BROADCAST,MULTICAST>
              OSPF is enabled, but not running on this interface

            """;

        Assert.Equal(["gre_ab", "lan0"], OspfTakeUp.ParseFrrOspfInterfaces(output).Order());
    }

    [Fact]
    public void Zebras_view_of_an_interface_gives_its_IPv4_addresses_and_nothing_when_it_does_not_know_it()
    {
        const string known = """
            Interface gre_ac is up, line protocol is up
              Link ups:       0    last: (never)
              index 7 metric 0 mtu 1476 speed 0
              inet 10.255.3.1/30
              inet6 fe80::5efe:cb00:710d/64
            """;

        var link = OspfTakeUp.ParseZebraInterface("gre_ac", known);

        Assert.NotNull(link);
        Assert.True(link.Usable);
        Assert.Equal([Ac], link.Ipv4);
        Assert.Null(OspfTakeUp.ParseZebraInterface("gre_ac", "% Can't find interface gre_ac\n"));
    }

    [Fact]
    public void BIRDs_interfaces_say_whether_a_link_is_up_and_its_addresses()
    {
        const string output = """
            BIRD 2.0.12 ready.
            b1 up (index=3)
            	MultiAccess Broadcast Multicast AdminUp LinkUp MTU=1500
            	10.8.0.1/30 (Preferred, opposite 10.8.0.2, scope site)
            	fe80::b4d8:d0ff:fed7:e1c0/64 (Preferred, scope link)
            b2 up (index=7)
            	MultiAccess Broadcast Multicast AdminUp LinkDown MTU=1500
            	10.8.0.5/30 (Preferred, opposite 10.8.0.6, scope site)
            """;

        var links = OspfTakeUp.ParseBirdInterfaces(output);

        Assert.True(links["b1"].Usable);
        Assert.Equal([InterfaceAddress.Parse("a", "10.8.0.1/30")], links["b1"].Ipv4);
        Assert.False(links["b2"].Usable);
    }

    [Fact]
    public void BIRDs_OSPF_interfaces_are_the_ones_it_heads_with_Interface()
    {
        const string output = "BIRD 2.0.12 ready.\ntunnel_router:\nInterface b1 (10.8.0.0/30)\n\tType: ptp\nInterface lanx (192.168.9.0/24)\n\tType: broadcast\n";

        Assert.Equal(["b1", "lanx"], OspfTakeUp.ParseBirdOspfInterfaces(output).Order());
    }

    [Fact]
    public void Every_interface_running_OSPF_is_done_and_one_without_an_IPv4_address_is_not_waited_for()
    {
        var kernel = new Dictionary<string, IReadOnlyList<InterfaceAddress>>(Kernel) { ["lan0"] = [] };

        var step = OspfTakeUp.Step(Settle(RoutingDaemonKind.Frr), kernel, new HashSet<string> { "gre_ab", "gre_ac" }, Knows(), nudge: true);

        Assert.True(step.Done);
    }

    [Fact]
    public void An_owned_tunnels_address_zebra_dropped_is_announced_again_and_named()
    {
        var step = OspfTakeUp.Step(Settle(RoutingDaemonKind.Frr), Kernel, new HashSet<string> { "gre_ab", "lan0" },
            Knows(new DaemonLink("gre_ac", true, [])), nudge: true);

        Assert.Equal(["gre_ac"], step.Missing);
        Assert.Equal([("gre_ac", Ac)], step.Reannounce);
        Assert.Empty(step.Resend);
        Assert.StartsWith("zebra does not know 10.255.3.1/30 on gre_ac", step.Why["gre_ac"]);
        Assert.Equal("ip -4 address replace 10.255.3.1/30 dev gre_ac", new ReplaceAddress("gre_ac", Ac).ToString());
    }

    [Fact]
    public void Nothing_is_sent_again_between_two_nudges()
    {
        var step = OspfTakeUp.Step(Settle(RoutingDaemonKind.Frr), Kernel, new HashSet<string> { "gre_ab", "lan0" },
            Knows(new DaemonLink("gre_ac", true, [])), nudge: false);

        Assert.Equal(["gre_ac"], step.Missing);
        Assert.Empty(step.Reannounce);
        Assert.Empty(step.Resend);
    }

    [Fact]
    public void An_address_of_an_interface_tunnel_router_does_not_own_is_never_touched_but_named_with_the_fix()
    {
        var step = OspfTakeUp.Step(Settle(RoutingDaemonKind.Frr), Kernel, new HashSet<string> { "gre_ab", "gre_ac" },
            Knows(new DaemonLink("lan0", true, [])), nudge: true);

        Assert.Equal(["lan0"], step.Missing);
        Assert.Empty(step.Reannounce);
        Assert.Contains("'ip address replace 192.168.1.1/24 dev lan0' announces it again", step.Why["lan0"]);
        Assert.Contains("FRRouting/frr#13288", step.Why["lan0"]);
        Assert.Equal("ip address replace 192.168.1.1/24 dev lan0 (announces it again, changes nothing), or systemctl restart frr", step.Fix["lan0"]);
    }

    [Fact]
    public void When_zebra_knows_the_address_and_ospfd_still_does_not_run_on_it_the_stanza_is_sent_again()
    {
        var settle = Settle(RoutingDaemonKind.Frr);
        var step = OspfTakeUp.Step(settle, Kernel, new HashSet<string> { "gre_ab", "lan0" }, Knows(new DaemonLink("gre_ac", true, [Ac])), nudge: true);

        Assert.Equal(["gre_ac"], step.Resend);
        Assert.Equal(["configure terminal", "interface gre_ac", "no ip ospf area 0", "ip ospf area 0", "ip ospf network point-to-point",
            "ip ospf cost 10", "ip ospf hello-interval 1", "ip ospf dead-interval 4", "exit"], OspfTakeUp.FrrResend(settle, "gre_ac"));
    }

    [Fact]
    public void A_link_zebra_has_not_heard_of_yet_is_waited_for()
    {
        var step = OspfTakeUp.Step(Settle(RoutingDaemonKind.Frr), Kernel, new HashSet<string> { "gre_ab", "lan0" }, Knows(), nudge: true);

        Assert.Equal(["gre_ac"], step.Missing);
        Assert.Empty(step.Reannounce);
        Assert.Equal("zebra does not know gre_ac", step.Why["gre_ac"]);
    }

    [Fact]
    public void BIRD_is_never_nudged_and_a_link_it_sees_down_is_not_waited_for()
    {
        var step = OspfTakeUp.Step(Settle(RoutingDaemonKind.Bird), Kernel, new HashSet<string> { "gre_ab" },
            Knows(new DaemonLink("gre_ac", true, []), new DaemonLink("lan0", false, [Lan])), nudge: true);

        Assert.Equal(["gre_ac"], step.Missing);
        Assert.Empty(step.Reannounce);
        Assert.Empty(step.Resend);
        Assert.Equal("BIRD does not know 10.255.3.1/30 on gre_ac", step.Why["gre_ac"]);
    }

    [Fact]
    public void A_run_that_never_converges_fails_with_one_line_naming_each_interface_and_what_the_daemon_runs_on()
    {
        var settle = Settle(RoutingDaemonKind.Frr);
        var step = OspfTakeUp.Step(settle, Kernel, new HashSet<string> { "gre_ab", "lan0" }, Knows(new DaemonLink("gre_ac", true, [])), nudge: true);

        var line = OspfTakeUp.Failure(settle, step, new HashSet<string> { "gre_ab", "lan0" });

        Assert.DoesNotContain('\n', line);
        Assert.StartsWith("FRR did not run OSPF on gre_ac within 30 s: zebra does not know 10.255.3.1/30 on gre_ac (zebra drops an address made an instant after its link, FRRouting/frr#13288; tunnel-router announces it again); it runs OSPF on gre_ab, lan0", line);
        Assert.Contains("vtysh --vty_socket /run/frr -c 'show ip ospf interface'", line);
    }

    static TunnelRouterOptions Mesh(uint settle = 30) => new()
    {
        Tunnels = [new TunnelOptions { Name = "gre_ab", Local = "203.0.113.1", Remote = "203.0.113.2", Mtu = 1476, Addresses = ["10.255.1.1/30"] }],
        Routing = new RoutingOptions { Daemon = "frr", ConfigFile = "/etc/frr/tunnel-router.conf", Interfaces = ["gre_ab cost 10"], Stubs = ["lan0"], Settle = settle },
    };

    static readonly System.Net.IPAddress Local = System.Net.IPAddress.Parse("203.0.113.1");
    static readonly Link U0 = new("u0", 2, "veth", 1500, true, null, null, [InterfaceAddress.Parse("a", "203.0.113.1/24")]);

    static KernelSnapshot Snapshot(string? file, params Link[] links) => new()
    {
        State = new KernelState([new Route(Net.ParsePrefix("d", "203.0.113.0/24"), TableNames.Main, 2, device: "u0"),
                                 new Route(Net.ParsePrefix("d", "203.0.113.2/32"), TableNames.Main, 147, device: "u0")], []),
        Links = [U0, .. links],
        Files = new Dictionary<string, string?> { ["/etc/frr/tunnel-router.conf"] = file },
    };

    IReadOnlyList<Change> Plan(TunnelRouterOptions o, KernelSnapshot snapshot) =>
        Reconciler.Plan(PolicyParser.Parse(o, Iproute2Files.Of(), "policy.json"), snapshot, ReconcileMode.Converge).Changes;

    [Fact]
    public void An_apply_that_makes_a_tunnel_or_writes_the_file_ends_by_waiting_for_the_daemon_and_one_that_changes_neither_does_not()
    {
        var first = Plan(Mesh(), Snapshot(null));
        var settle = Assert.IsType<SettleOspf>(first[^1]);
        Assert.IsType<WriteRoutingConfig>(first[^2]);
        Assert.Equal(TimeSpan.FromSeconds(30), settle.Bound);
        Assert.Equal([Ab], settle.Owned["gre_ab"]);
        Assert.Equal("check FRR runs OSPF on gre_ab, lan0 (up to 30 s): vtysh -c 'show ip ospf interface'",
            settle.Display(TableNames.Numeric, ProtocolNames.Numeric));

        var file = ((WriteRoutingConfig)first[^2]).New;
        var tunnel = new GreTunnel("gre_ab", GreMode.Gre, Local, System.Net.IPAddress.Parse("203.0.113.2"), mtu: 1476);
        var made = new Link("gre_ab", 7, "gre", 1476, true, TunnelPlanner.OwnerAlias, tunnel, [Ab]);
        Assert.Empty(Plan(Mesh(), Snapshot(file, made)));

        // The tunnel was deleted behind its back: the file is the same, the link is made again, and the daemon is waited for.
        var again = Plan(Mesh(), Snapshot(file));
        Assert.Contains(again, c => c is AddLink);
        Assert.IsType<SettleOspf>(again[^1]);
        Assert.DoesNotContain(again, c => c is WriteRoutingConfig);
    }

    [Fact]
    public void The_wait_is_the_policys_Routing_Settle_and_a_wait_of_nothing_is_refused_naming_the_key()
    {
        Assert.Equal(TimeSpan.FromSeconds(5), Assert.IsType<SettleOspf>(Plan(Mesh(5), Snapshot(null))[^1]).Bound);

        var e = Assert.ThrowsAny<InputException>(() => Plan(Mesh(0), Snapshot(null)));
        Assert.Contains("policy.json: Routing.Settle", e.Message);
    }
}
