using System.Net;
using System.Net.Sockets;
using TunnelRouter.Core;
using TunnelRouter.Kernel;
using TunnelRouter.Tests.Support;
using Xunit;

namespace TunnelRouter.Tests.Kernel;

/// <summary>
/// The IKernel contract, in-process, against a real kernel in a namespace of the test's own: every route
/// form and every rule selector TunnelRouter can express goes in and reads back equal, failures carry the
/// kernel's errno and say exactly how much took effect. Runs once per backend (see KernelBackend).
/// </summary>
public class KernelBackendSpecs
{
    const byte Proto = 147;
    static readonly AddressFamily V4 = AddressFamily.InterNetwork, V6 = AddressFamily.InterNetworkV6;

    static IPNetwork N(string text) => Net.ParsePrefix("test", text);
    static IPAddress A(string text) => IPAddress.Parse(text);

    static NetNs Namespace()
    {
        var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24", "fd00:4242::1/64");
        ns.AddTun("tun1", "10.20.20.1/24");
        return ns;
    }

    static IKernel Backend() => Backends.Create(KernelBackend.Current ?? "netlink");

    static void Apply(IKernel kernel, params Change[] changes) => kernel.Apply(changes);

    public static readonly Route[] EveryRouteForm =
    [
        new(N("192.0.2.0/24"), 200, Proto, device: "tun0"),
        new(N("198.51.100.0/24"), 200, Proto, device: "tun0", gateway: A("10.10.10.2")),
        new(N("203.0.113.0/25"), 200, Proto, device: "tun0", source: A("10.10.10.1")),
        new(N("203.0.113.128/25"), 200, Proto, device: "tun0", metric: 50),
        new(N("0.0.0.0/0"), 200, Proto, device: "tun1", gateway: A("192.168.99.1"), onLink: true),
        new(N("10.99.0.0/16"), 200, Proto, device: "tun0", gateway: A("10.10.10.3"), mtu: 1400),
        new(N("10.66.0.0/16"), 200, Proto, type: RouteType.Blackhole),
        new(N("10.67.0.0/16"), 200, Proto, type: RouteType.Unreachable),
        new(N("10.68.0.0/16"), 200, Proto, type: RouteType.Prohibit),
        new(N("10.69.0.0/16"), 200, Proto, type: RouteType.Throw),
        new(N("10.70.0.1/32"), 200, Proto, device: "tun0"),
        new(N("172.16.0.0/12"), 100_000, Proto, device: "tun0"),
        new(N("fd00:1::/64"), 200, Proto, device: "tun0"),
        new(N("fd00:2::/64"), 200, Proto, device: "tun0", gateway: A("fd00:4242::2")),
        new(N("fd00:3::/64"), 200, Proto, device: "tun0", metric: 7),
        new(N("::/0"), 200, Proto, device: "tun0", gateway: A("fd00:4242::3"), mtu: 1280),
        new(N("fd00:4::/64"), 200, Proto, type: RouteType.Blackhole),
        new(N("fd00:5::/64"), 100_000, Proto, type: RouteType.Unreachable),
    ];

    public static readonly Rule[] EveryRuleSelector =
    [
        new(V4, 1000, RuleAction.Lookup, 200, Proto, from: N("10.10.10.0/24")),
        new(V4, 1001, RuleAction.Lookup, 200, Proto, to: N("192.0.2.0/24")),
        new(V4, 1002, RuleAction.Lookup, 200, Proto, from: N("10.10.10.0/24"), not: true),
        new(V4, 1003, RuleAction.Lookup, 200, Proto, fwMark: 0x10),
        new(V4, 1004, RuleAction.Lookup, 200, Proto, fwMark: 0x100, fwMask: 0xff00),
        new(V4, 1005, RuleAction.Lookup, 200, Proto, iif: "tun0"),
        new(V4, 1006, RuleAction.Lookup, 200, Proto, oif: "tun1"),
        new(V4, 1007, RuleAction.Lookup, 200, Proto, ipProto: 6, destinationPort: new PortRange(22, 22)),
        new(V4, 1008, RuleAction.Lookup, 200, Proto, ipProto: 17, sourcePort: new PortRange(1000, 2000)),
        new(V4, 1009, RuleAction.Lookup, 200, Proto, uidRange: new UidRange(1000, 1999)),
        new(V4, 1010, RuleAction.Lookup, 200, Proto, tos: 0x10),
        new(V4, 1011, RuleAction.Lookup, 254, Proto, suppressPrefixLength: 0),
        new(V4, 1012, RuleAction.Lookup, 100_000, Proto, from: N("10.20.20.0/24")),
        new(V4, 1013, RuleAction.Blackhole, 0, Proto, from: N("10.66.0.0/16")),
        new(V4, 1014, RuleAction.Unreachable, 0, Proto, from: N("10.67.0.0/16")),
        new(V4, 1015, RuleAction.Prohibit, 0, Proto, from: N("10.68.0.0/16")),
        new(V6, 1000, RuleAction.Lookup, 200, Proto, from: N("fd00:4242::/64")),
        new(V6, 1001, RuleAction.Lookup, 200, Proto, to: N("fd00:1::/64"), fwMark: 0x1, fwMask: 0x1),
        new(V6, 1002, RuleAction.Lookup, 100_000, Proto, iif: "tun0", oif: "tun1", not: true),
        new(V6, 1003, RuleAction.Prohibit, 0, Proto, ipProto: 58),
    ];

    [Fact]
    public void Every_route_form_reads_back_as_it_was_added()
    {
        using var ns = Namespace();

        var read = ns.Inside(() =>
        {
            var kernel = Backend();
            kernel.Apply(EveryRouteForm.Select(r => (Change)new AddRoute(r)).ToList());
            return kernel.Read(new StateQuery(new HashSet<uint> { 200, 100_000 }, Rules: false));
        });

        Assert.Equal(EveryRouteForm.OrderBy(r => r.ToString()), read.Routes.OrderBy(r => r.ToString()));
    }

    [Fact]
    public void Every_rule_selector_reads_back_as_it_was_added()
    {
        using var ns = Namespace();

        var read = ns.Inside(() =>
        {
            var kernel = Backend();
            kernel.Apply(EveryRuleSelector.Select(r => (Change)new AddRule(r)).ToList());
            return kernel.Read(new StateQuery(new HashSet<uint>(), Rules: true));
        });

        Assert.Equal(EveryRuleSelector.OrderBy(r => r.ToString()), read.Rules.Where(r => r.Protocol == Proto).OrderBy(r => r.ToString()));
    }

    [Fact]
    public void Deleting_every_route_and_rule_leaves_only_what_was_there_before()
    {
        using var ns = Namespace();
        var before = ns.Dump();

        ns.Inside(() =>
        {
            var kernel = Backend();
            kernel.Apply([.. EveryRouteForm.Select(r => new AddRoute(r)), .. EveryRuleSelector.Select(r => new AddRule(r))]);
            kernel.Apply([.. EveryRuleSelector.Select(r => new DeleteRule(r)), .. EveryRouteForm.Select(r => new DeleteRoute(r))]);
        });

        Assert.Equal(before, ns.Dump());
    }

    [Fact]
    public void Replace_swaps_a_routes_attributes_in_place()
    {
        using var ns = Namespace();
        var old = new Route(N("192.0.2.0/24"), 200, Proto, device: "tun0");
        var changed = new Route(N("192.0.2.0/24"), 200, Proto, device: "tun1", gateway: A("10.20.20.2"), mtu: 1300);

        var read = ns.Inside(() =>
        {
            var kernel = Backend();
            Apply(kernel, new AddRoute(old));
            Apply(kernel, new ReplaceRoute(old, changed));
            return kernel.Read(new StateQuery(new HashSet<uint> { 200 }, Rules: false));
        });

        Assert.Equal([changed], read.Routes);
    }

    [Fact]
    public void An_add_that_exists_fails_with_EEXIST_and_nothing_after_it_takes_effect()
    {
        using var ns = Namespace();
        ns.Ip("route", "add", "192.0.2.0/24", "dev", "tun0", "table", "200", "proto", "147");
        var first = new Route(N("198.51.100.0/24"), 200, Proto, device: "tun0");
        var existing = new Route(N("192.0.2.0/24"), 200, Proto, device: "tun0");
        var after = new Route(N("203.0.113.0/24"), 200, Proto, device: "tun0");
        var afterRule = new Rule(V4, 1000, RuleAction.Lookup, 200, Proto, from: N("10.10.10.0/24"));

        var (failure, read) = ns.Inside(() =>
        {
            var kernel = Backend();
            var e = Assert.Throws<ChangeFailedException>(() =>
                Apply(kernel, new AddRoute(first), new AddRoute(existing), new AddRoute(after), new AddRule(afterRule)));
            return (e, kernel.Read(new StateQuery(new HashSet<uint> { 200 })));
        });

        Assert.Equal(1, failure.Applied);
        Assert.Equal(Errno.EEXIST, failure.Errno);
        Assert.Equal(new AddRoute(existing), failure.Failed);
        Assert.Contains("192.0.2.0/24", failure.Message);
        Assert.Equal([existing, first], read.Routes.OrderBy(r => r.ToString()));
        Assert.DoesNotContain(afterRule, read.Rules);
    }

    [Fact]
    public void Deleting_what_is_gone_fails_with_ESRCH_or_ENOENT()
    {
        using var ns = Namespace();

        var (route, rule) = ns.Inside(() =>
        {
            var kernel = Backend();
            var r = Assert.Throws<ChangeFailedException>(() => Apply(kernel, new DeleteRoute(new Route(N("192.0.2.0/24"), 200, Proto, device: "tun0"))));
            var u = Assert.Throws<ChangeFailedException>(() => Apply(kernel, new DeleteRule(new Rule(V6, 1000, RuleAction.Lookup, 200, Proto, from: N("fd00::/64")))));
            return (r, u);
        });

        Assert.Equal(0, route.Applied);
        Assert.Contains(route.Errno, new[] { Errno.ESRCH, Errno.ENOENT });
        Assert.Contains(rule.Errno, new[] { Errno.ESRCH, Errno.ENOENT });
    }

    [Fact]
    public void A_route_on_a_missing_device_fails_with_ENODEV_after_the_changes_before_it()
    {
        using var ns = Namespace();
        var good = new Route(N("192.0.2.0/24"), 200, Proto, device: "tun0");

        var (failure, read) = ns.Inside(() =>
        {
            var kernel = Backend();
            var e = Assert.Throws<ChangeFailedException>(() =>
                Apply(kernel, new AddRoute(good), new AddRoute(new Route(N("198.51.100.0/24"), 200, Proto, device: "nosuch0"))));
            return (e, kernel.Read(new StateQuery(new HashSet<uint> { 200 }, Rules: false)));
        });

        Assert.Equal(1, failure.Applied);
        Assert.Equal(Errno.ENODEV, failure.Errno);
        Assert.Equal([good], read.Routes);
    }

    [Fact]
    public void A_read_sees_only_the_tables_and_device_asked_for_and_every_owner_in_them()
    {
        using var ns = Namespace();
        ns.Ip("route", "add", "192.0.2.0/24", "dev", "tun0", "table", "200");
        ns.Ip("route", "add", "198.51.100.0/24", "dev", "tun1", "table", "200", "proto", "147");
        ns.Ip("route", "add", "203.0.113.0/24", "dev", "tun0", "table", "300", "proto", "147");

        var (table200, tun1, never) = ns.Inside(() =>
        {
            var kernel = Backend();
            return (kernel.Read(new StateQuery(new HashSet<uint> { 200 }, Rules: false)),
                kernel.Read(new StateQuery(new HashSet<uint> { 200 }, Rules: false, Device: "tun1")),
                kernel.Read(new StateQuery(new HashSet<uint> { 4242 }, Rules: false)));
        });

        Assert.Equal(["192.0.2.0/24 dev tun0 table 200 proto 3", "198.51.100.0/24 dev tun1 table 200 proto 147"],
            table200.Routes.Select(r => r.ToString()).Order());
        Assert.Equal(["198.51.100.0/24 dev tun1 table 200 proto 147"], tun1.Routes.Select(r => r.ToString()));
        Assert.Empty(never.Routes);
    }

    [Fact]
    public void Addresses_link_state_mtu_and_alias_are_applied_and_read_back()
    {
        using var ns = Namespace();
        var address = new InterfaceAddress(A("10.30.30.1"), 24);
        var address6 = new InterfaceAddress(A("fd00:30::1"), 64);

        var (addresses, device) = ns.Inside(() =>
        {
            var kernel = Backend();
            kernel.Apply([new SetLinkDown("tun1"), new SetLinkMtu("tun1", 1400, 1500), new SetLinkAlias("tun1", "tunnel-router"),
                new AddAddress("tun1", address), new AddAddress("tun1", address6), new SetLinkUp("tun1")]);
            return (kernel.ReadAddresses("tun1"), kernel.RouteDevice(A("10.30.30.7")));
        });

        Assert.Equal([new InterfaceAddress(A("10.20.20.1"), 24), address, address6], addresses);
        Assert.Equal("tun1", device);
        var link = ns.Ip("-d", "link", "show", "tun1");
        Assert.Contains("mtu 1400", link);
        Assert.Contains("alias tunnel-router", link);
        Assert.Contains(",UP", link);

        var gone = ns.Inside(() =>
        {
            var kernel = Backend();
            kernel.Apply([new DeleteAddress("tun1", address), new SetLinkAlias("tun1", "", "tunnel-router")]);
            return Assert.Throws<ChangeFailedException>(() => kernel.Apply([new DeleteAddress("tun1", address)]));
        });
        Assert.Equal(Errno.EADDRNOTAVAIL, gone.Errno);
        Assert.DoesNotContain("10.30.30.1", ns.Ip("addr", "show", "tun1"));
        Assert.DoesNotContain("alias", ns.Ip("-d", "link", "show", "tun1"));
    }

    [Fact]
    public void An_address_sent_again_is_announced_once_more_and_stays_as_it_was()
    {
        using var ns = Namespace();
        var address = new InterfaceAddress(A("10.20.20.1"), 24);
        var before = ns.Ip("-4", "-d", "addr", "show", "tun1");
        // A listener on the namespace's address events: what a routing daemon that missed the address hears.
        using var monitor = new System.Diagnostics.Process { StartInfo = new("/usr/sbin/ip", ["-n", ns.Name, "-4", "monitor", "address"]) { RedirectStandardOutput = true } };
        monitor.Start();
        var lines = new System.Collections.Concurrent.BlockingCollection<string>();
        _ = Task.Run(() => { while (monitor.StandardOutput.ReadLine() is { } l) lines.Add(l); });
        // Listening once it has heard a probe address on lo come and go (no sleep that must be long enough).
        var deadline = DateTime.UtcNow.AddSeconds(60);
        for (var subscribed = false; !subscribed;)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("ip monitor heard no address event in 60 s");
            ns.Ip("addr", "add", "10.250.0.1/32", "dev", "lo");
            while (!subscribed && lines.TryTake(out var l, TimeSpan.FromMilliseconds(200))) subscribed = l.Contains("10.250.0.1/32");
            ns.Ip("addr", "del", "10.250.0.1/32", "dev", "lo");
        }
        // The next address event it prints (an event's second line is its lifetimes).
        string Heard(Func<string, bool> match, string what)
        {
            while (lines.TryTake(out var l, TimeSpan.FromSeconds(60))) if (match(l)) return l;
            throw new TimeoutException($"ip monitor did not print {what} in 60 s");
        }
        Heard(l => l.StartsWith("Deleted") && l.Contains("10.250.0.1/32"), "the probe's deletion");

        ns.Inside(() => Backend().Apply([new ReplaceAddress("tun1", address)]));

        var heard = Heard(l => l.Contains(" inet "), "an address event");
        monitor.Kill();
        Assert.Contains("inet 10.20.20.1/24", heard);
        Assert.Equal(before, ns.Ip("-4", "-d", "addr", "show", "tun1"));
    }
}
