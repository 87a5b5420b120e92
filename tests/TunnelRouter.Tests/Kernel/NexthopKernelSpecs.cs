using System.Net;
using TunnelRouter.Core;
using TunnelRouter.Kernel;
using TunnelRouter.Tests.Support;
using Xunit;

namespace TunnelRouter.Tests.Kernel;

/// <summary>
/// Nexthop objects against a real kernel in a namespace of the test's own, once per backend: gateways and weighted
/// groups go in and read back equal, a route by a group reads back as that route, a group replaced in place keeps its
/// route, and deleting everything leaves what was there before. Linux 5.3 or later (the host's kernel is).
/// </summary>
public class NexthopKernelSpecs
{
    const byte Proto = 147;

    static IPNetwork N(string text) => Net.ParsePrefix("test", text);
    static IPAddress A(string text) => IPAddress.Parse(text);

    /// <summary>Two veth pairs with their far ends up: nexthops need a device with carrier.</summary>
    static NetNs Namespace()
    {
        var ns = new NetNs();
        foreach (var (dev, peer, v4, v6) in new[] { ("up1", "up1p", "10.1.0.2/24", "fd00:1::2/64"), ("up2", "up2p", "10.2.0.2/24", "fd00:2::2/64") })
        {
            ns.Ip("link", "add", dev, "type", "veth", "peer", "name", peer);
            ns.Ip("addr", "add", v4, "dev", dev);
            ns.Ip("-6", "addr", "add", v6, "dev", dev, "nodad");
            ns.Ip("link", "set", peer, "up");
            ns.Ip("link", "set", dev, "up");
        }
        return ns;
    }

    static IKernel Backend() => Backends.Create(KernelBackend.Current ?? "netlink");

    static readonly Nexthop One = new(101, Proto, "up1", A("10.1.0.1")), Two = new(102, Proto, "up2", A("10.2.0.1")),
        OnLink = new(103, Proto, "up2", A("192.168.77.1"), OnLink: true), Six = new(104, Proto, "up1", A("fd00:1::1")),
        Group = new(110, Proto, Group: [new(101, 3), new(102, 1)]), Group6 = new(111, Proto, Group: [new(104, 1)]);

    static readonly Route ByGroup = new(N("0.0.0.0/0"), 200, Proto, metric: 5, nexthop: 110),
        ByGroup6 = new(N("::/0"), 200, Proto, nexthop: 111);

    static IReadOnlyList<Change> AddAll() =>
        [.. new[] { One, Two, OnLink, Six, Group, Group6 }.Select(n => new AddNexthop(n)), new AddRoute(ByGroup), new AddRoute(ByGroup6)];

    [Fact]
    public void Gateways_groups_with_weights_and_routes_by_them_read_back_as_they_were_added()
    {
        using var ns = Namespace();

        var read = ns.Inside(() =>
        {
            var kernel = Backend();
            kernel.Apply(AddAll());
            return kernel.Read(new StateQuery(new HashSet<uint> { 200 }, Rules: false));
        });

        Assert.Equal(new[] { One, Two, OnLink, Six, Group, Group6 }.OrderBy(n => n.Id), read.Nexthops.OrderBy(n => n.Id));
        Assert.Equal(new[] { ByGroup, ByGroup6 }.OrderBy(r => r.ToString()), read.Routes.OrderBy(r => r.ToString()));
    }

    [Fact]
    public void Replacing_a_group_changes_where_its_route_goes_and_leaves_the_route_alone()
    {
        using var ns = Namespace();
        var onlyTwo = Group with { Group = [new(102, 1)] };

        var read = ns.Inside(() =>
        {
            var kernel = Backend();
            kernel.Apply(AddAll());
            kernel.Apply([new ReplaceNexthop(Group, onlyTwo)]);
            return kernel.Read(new StateQuery(new HashSet<uint> { 200 }, Rules: false));
        });

        Assert.Contains(onlyTwo, read.Nexthops);
        Assert.Contains(ByGroup, read.Routes);
        // The kernel's own answer: the table's default now leaves by up2 alone.
        ns.Ip("rule", "add", "to", "192.0.2.0/24", "lookup", "200", "pref", "100");
        Assert.Contains("dev up2", ns.Ip("route", "get", "192.0.2.1"));
        Assert.DoesNotContain("101", ns.Ip("nexthop", "show", "id", "110"));
    }

    [Fact]
    public void Deleting_routes_then_groups_then_gateways_leaves_only_what_was_there_before_and_a_foreign_nexthop()
    {
        using var ns = Namespace();
        ns.Ip("nexthop", "add", "id", "7", "via", "10.1.0.9", "dev", "up1", "proto", "11");
        var before = ns.Ip("nexthop", "show") + ns.Dump();

        ns.Inside(() =>
        {
            var kernel = Backend();
            kernel.Apply(AddAll());
            kernel.Apply([new DeleteRoute(ByGroup), new DeleteRoute(ByGroup6), .. new[] { Group, Group6, One, Two, OnLink, Six }.Select(n => new DeleteNexthop(n))]);
        });

        Assert.Equal(before, ns.Ip("nexthop", "show") + ns.Dump());
    }

    [Fact]
    public void A_failed_batch_is_rolled_back_by_the_applier_including_a_group_replace()
    {
        using var ns = Namespace();
        var onlyTwo = Group with { Group = [new(102, 1)] };
        var missing = new Nexthop(120, Proto, "nosuchdev", A("10.1.0.1"));

        var (error, read) = ns.Inside(() =>
        {
            var kernel = Backend();
            kernel.Apply(AddAll());
            var e = Record.Exception(() => new ChangeApplier(kernel, Serilog.Core.Logger.None, TableNames.Numeric, ProtocolNames.Numeric).Apply([new ReplaceNexthop(Group, onlyTwo), new AddNexthop(missing)], dryRun: false));
            return (e, kernel.Read(new StateQuery(new HashSet<uint> { 200 }, Rules: false)));
        });

        Assert.NotNull(error);
        Assert.Contains(Group, read.Nexthops);
        Assert.DoesNotContain(read.Nexthops, n => n.Id == 120);
    }
}
