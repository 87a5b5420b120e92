using System.Net;
using TunnelRouter.Core;
using TunnelRouter.Kernel;
using TunnelRouter.Tests.Support;
using Xunit;

namespace TunnelRouter.Tests.Kernel;

/// <summary>
/// The netlink and iproute2 backends side by side: the same desired states, planned against what each
/// backend reads and applied by it, each in a namespace of its own. Both must plan the same changes, and
/// <c>ip -j</c> must read back the same routes, rules and addresses from both namespaces.
/// </summary>
[BackendIndependent]
public class BackendDifferentialSpecs
{
    const byte Proto = 147;

    static IPNetwork N(string text) => Net.ParsePrefix("test", text);

    static NetNs Namespace()
    {
        var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24", "fd00:4242::1/64");
        ns.AddTun("tun1", "10.20.20.1/24");
        // A route and a rule of another owner, which every step must leave alone.
        ns.Ip("route", "add", "192.0.2.128/25", "dev", "tun0", "table", "200");
        ns.Ip("rule", "add", "from", "10.99.0.0/16", "lookup", "200", "pref", "900");
        return ns;
    }

    /// <summary>Everything ip -j reads back that the backends could make differ.</summary>
    static string ReadBack(NetNs ns) => string.Join("\n",
        ns.Ip("-4", "-j", "-d", "route", "show", "table", "all"), ns.Ip("-6", "-j", "-d", "route", "show", "table", "all"),
        ns.Ip("-4", "-j", "rule", "show"), ns.Ip("-6", "-j", "rule", "show"),
        ns.Ip("-j", "addr", "show", "scope", "global"));

    static KernelState Step1 => new(KernelBackendSpecs.EveryRouteForm, KernelBackendSpecs.EveryRuleSelector);

    /// <summary>Some routes changed in place, some gone, some new; half the rules gone.</summary>
    static KernelState Step2 => new(
        [
            .. KernelBackendSpecs.EveryRouteForm.Where((_, i) => i % 3 == 0),
            .. KernelBackendSpecs.EveryRouteForm.Where((_, i) => i % 3 == 1 && KernelBackendSpecs.EveryRouteForm[i].Device is not null)
                .Select(r => r with { Mtu = 1300 }),
            new Route(N("100.64.0.0/10"), 200, Proto, device: "tun1", metric: 10),
            new Route(N("fd00:9::/48"), 300, Proto, device: "tun0"),
        ],
        KernelBackendSpecs.EveryRuleSelector.Where((_, i) => i % 2 == 0).ToList());

    [Fact]
    public void Both_backends_plan_the_same_changes_and_leave_the_same_kernel_state()
    {
        using var viaNetlink = Namespace();
        using var viaIp = Namespace();
        Assert.Equal(ReadBack(viaNetlink), ReadBack(viaIp));

        foreach (var (step, desired) in new[] { ("add", Step1), ("change", Step2), ("again", Step2), ("remove", KernelState.Empty) })
        {
            var netlinkPlan = Converge(viaNetlink, "netlink", desired);
            var ipPlan = Converge(viaIp, "ip", desired);

            Assert.Equal(netlinkPlan, ipPlan);
            Assert.True(step != "again" || netlinkPlan.Count == 0, "a second apply of the same state changes nothing");
            Assert.True(string.Equals(ReadBack(viaNetlink), ReadBack(viaIp)), $"after '{step}' the namespaces differ:\n{ReadBack(viaNetlink)}\n---\n{ReadBack(viaIp)}");
        }
        Assert.Contains("192.0.2.128/25", viaNetlink.Ip("route", "show", "table", "200"));
        Assert.Contains("10.99.0.0/16", viaNetlink.Ip("rule", "show"));
    }

    [Fact]
    public void Both_backends_read_the_same_links_addresses_and_route_devices()
    {
        using var ns = Namespace();
        using var peer = new NetNs();
        Topology.Link(ns, "eth1", ["192.168.1.6/24", "fd00:1010::6/64"], peer, "eth1", ["192.168.1.1/24"]);
        ns.Ip("link", "set", "tun1", "alias", "tunnel-router", "mtu", "1400");
        ns.Settle();

        var (netlink, ip) = ns.Inside(() =>
        {
            string Read(IKernel k) => string.Join("\n", k.ReadLinks().Select(l =>
                    $"{l.Name} {l.Index} {l.Kind} {l.Mtu} {l.Up} {l.Alias} {l.Gre} [{string.Join(", ", l.Addresses)}]"))
                + $"\n{string.Join(", ", k.ReadAddresses("eth1"))}\n{k.RouteDevice(IPAddress.Parse("192.168.1.77"))}"
                + $"\n{k.RouteDevice(IPAddress.Parse("fd00:1010::77"))}\n{k.RouteDevice(IPAddress.Parse("203.0.113.1"))}";
            return (Read(Backends.Create("netlink")), Read(Backends.Create("ip")));
        });

        Assert.Equal(ip, netlink);
        Assert.Contains("tun1 ", netlink);
        Assert.Contains("1400 True tunnel-router", netlink);
        Assert.Contains("eth1 ", netlink);
    }

    static List<string> Converge(NetNs ns, string backend, KernelState desired) => ns.Inside(() =>
    {
        var kernel = Backends.Create(backend);
        var current = kernel.Read(new StateQuery(new HashSet<uint> { 200, 300, 100_000 }));
        var plan = Planner.Plan(desired, current, Ownership.ByProtocol(Proto));
        kernel.Apply(plan);
        return plan.Select(c => c.ToString()).ToList();
    });
}
