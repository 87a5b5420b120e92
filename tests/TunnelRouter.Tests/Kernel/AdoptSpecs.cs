using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary>
/// Moving from a how-to's hand-typed setup: on exactly the state its commands leave behind, apply lists every
/// conflict at once with the --adopt hint, and apply --adopt takes over what is identical to the policy's,
/// re-created as tunnel-router's (so flush removes it), and prints each.
/// </summary>
public class AdoptSpecs
{
    static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Seed 003's server after the how-to's "test it manually" commands (rt_tables: 200 vpn).</summary>
    static NetNs Seed003HandTyped(out string policy)
    {
        var ns = new NetNs();
        Hardening.AddVeth(ns, "eth1", "192.168.1.100/24");
        ns.Ip("-6", "addr", "add", "fd00:1010:1010:1010::100/64", "dev", "eth1", "nodad");
        ns.Ip("-4", "rule", "add", "from", "10.10.10.0/24", "lookup", "200");
        ns.Ip("-6", "rule", "add", "from", "fd00:4242:4242:4242::/64", "lookup", "200");
        ns.Ip("-4", "ro", "add", "default", "via", "192.168.1.1", "table", "200");
        ns.Ip("-6", "ro", "add", "default", "via", "fd00:1010:1010:1010::1", "table", "200");
        policy = Topology.Example(ns, "eduvpn-nat-router.json");
        return ns;
    }

    /// <summary>Seed 004's server after its /etc/rc.local: the rules with the priorities given (null: none, as the how-to
    /// types them), the second table's connected route on <paramref name="secondDevice"/> (the how-to says eth0, a typo).</summary>
    static NetNs Seed004RcLocal((string First, string Second)? prefs, string secondDevice, out string policy)
    {
        var ns = new NetNs();
        Hardening.AddVeth(ns, "eth0", "192.168.1.6/24");
        Hardening.AddVeth(ns, "eth1", "192.168.2.2/24");
        ns.Ip("route", "add", "default", "via", "192.168.1.1", "dev", "eth0");
        ns.Ip(["rule", "add", "from", "192.168.1.6", "table", "10", .. prefs is { } p ? ["pref", p.First] : Array.Empty<string>()]);
        ns.Ip("route", "add", "192.168.1.0/24", "dev", "eth0", "src", "192.168.1.6", "table", "10");
        ns.Ip("route", "add", "default", "via", "192.168.1.1", "table", "10");
        ns.Ip(["rule", "add", "from", "192.168.2.2", "table", "20", .. prefs is { } q ? ["pref", q.Second] : Array.Empty<string>()]);
        ns.Ip("route", "add", "192.168.2.0/24", "dev", secondDevice, "src", "192.168.2.2", "table", "20");
        ns.Ip("route", "add", "default", "via", "192.168.2.1", "table", "20");
        policy = Topology.Example(ns, "multihomed-reply-routing.json");
        return ns;
    }

    [Fact]
    public void Without_adopt_every_conflict_of_seed_003s_hand_typed_routes_is_listed_with_the_adopt_hint()
    {
        using var ns = Seed003HandTyped(out var policy);
        var before = ns.Dump();

        var run = Run(ns, ["apply", "-c", policy]);

        Assert.Equal(1, run.ExitCode);
        var errors = Lines(run.Stderr).Where(l => l.StartsWith("tunnel-router: error:")).ToArray();
        Assert.Equal(
        [
            "tunnel-router: error: route 'default via 192.168.1.1 dev eth1 table vpn proto boot' is the policy's 'default via 192.168.1.1 table vpn proto tunnel-router' made by someone else: 'tunnel-router apply --adopt' takes it over",
            "tunnel-router: error: route 'default via fd00:1010:1010:1010::1 dev eth1 table vpn proto boot' is the policy's 'default via fd00:1010:1010:1010::1 table vpn proto tunnel-router' made by someone else: 'tunnel-router apply --adopt' takes it over",
        ], errors);
        // No advice that would leave two default routes ("change the metric").
        Assert.DoesNotContain("metric", run.Stderr);
        Assert.Equal(before, ns.Dump());
    }

    [Fact]
    public void Apply_adopt_takes_over_seed_003s_hand_typed_routes_prints_each_and_flush_then_removes_them()
    {
        using var ns = Seed003HandTyped(out var policy);

        var run = Run(ns, ["apply", "--adopt", "-c", policy]);

        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Contains("adopting route 'default via 192.168.1.1 dev eth1 table vpn proto boot': re-created as tunnel-router's", run.Stderr);
        Assert.Contains("adopting route 'default via fd00:1010:1010:1010::1 dev eth1 table vpn proto boot': re-created as tunnel-router's", run.Stderr);
        Assert.Equal(["default via 192.168.1.1 dev eth1 proto 147"], Lines(ns.Ip("-4", "route", "show", "table", "200")));
        Assert.Single(Lines(ns.Ip("-6", "route", "show", "table", "200")), l => l.StartsWith("default via fd00:1010:1010:1010::1 dev eth1 proto 147"));
        // The how-to typed its rules without pref: the kernel put them at 32765; the same rules, so taken over at the policy's priorities.
        Assert.Contains("adopting rule 'from 10.10.10.0/24 pref 32765 lookup vpn protocol unspec': the same rule at priority 32765 (the kernel's choice when a rule is added without pref); re-created as tunnel-router's at the policy's 2000", run.Stderr);
        Assert.Contains("adopting rule 'from fd00:4242:4242:4242::/64 pref 32765 lookup vpn protocol unspec': the same rule at priority 32765 (the kernel's choice when a rule is added without pref); re-created as tunnel-router's at the policy's 2010", run.Stderr);
        Assert.Equal(["0:\tfrom all lookup local", "2000:\tfrom 10.10.10.0/24 lookup 200 proto 147", "32766:\tfrom all lookup main", "32767:\tfrom all lookup default"],
            Lines(ns.Ip("-4", "rule", "show")));
        Assert.Contains("2010:\tfrom fd00:4242:4242:4242::/64 lookup 200 proto 147", ns.Ip("-6", "rule", "show"));
        Assert.DoesNotContain("32765:", ns.Ip("-6", "rule", "show"));
        Assert.Equal(0, Run(ns, ["plan", "-c", policy]).ExitCode);

        Run(ns, ["flush", "-c", policy]).ShouldSucceed();
        Assert.Empty(Lines(ns.Ip("-4", "route", "show", "table", "200")));
        Assert.DoesNotContain("lookup 200", ns.Ip("-4", "rule", "show"));
    }

    [Fact]
    public void Without_adopt_a_how_to_rule_at_the_kernels_priority_is_named_and_both_stay()
    {
        using var ns = Seed003HandTyped(out var policy);
        ns.Ip("-4", "ro", "flush", "table", "200");
        ns.Ip("-6", "ro", "flush", "table", "200");

        var run = Run(ns, ["apply", "-c", policy]);

        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Contains("rule 'from 10.10.10.0/24 pref 32765 lookup vpn protocol unspec' is the policy's 'from 10.10.10.0/24 pref 2000 lookup vpn protocol tunnel-router' made by someone else at priority 32765 (the kernel's choice when a rule is added without pref); both stay: 'tunnel-router apply --adopt' takes it over", run.Stderr);
        Assert.Contains("32765:\tfrom 10.10.10.0/24 lookup 200", ns.Ip("-4", "rule", "show"));
        Assert.Contains("2000:\tfrom 10.10.10.0/24 lookup 200 proto 147", ns.Ip("-4", "rule", "show"));
    }

    [Fact]
    public void Seed_004s_rc_local_as_written_without_pref_is_adopted_whatever_priorities_the_kernel_gave()
    {
        // The how-to's rules without pref (the kernel gives 32765, then 32764), its typo fixed.
        using var ns = Seed004RcLocal(prefs: null, secondDevice: "eth1", out var policy);
        Assert.Contains("32764:\tfrom 192.168.2.2 lookup 20", ns.Ip("rule", "show"));

        var run = Run(ns, ["apply", "--adopt", "-c", policy]);

        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Contains("adopting rule 'from 192.168.1.6/32 pref 32765 lookup lan1 protocol unspec': the same rule at priority 32765", run.Stderr);
        Assert.Contains("adopting rule 'from 192.168.2.2/32 pref 32764 lookup lan2 protocol unspec': the same rule at priority 32764", run.Stderr);
        Assert.Equal(["0:\tfrom all lookup local", "3000:\tfrom 192.168.1.6 lookup 10 proto 147", "3010:\tfrom 192.168.2.2 lookup 20 proto 147",
            "32766:\tfrom all lookup main", "32767:\tfrom all lookup default"], Lines(ns.Ip("-4", "rule", "show")));
        Assert.Equal(0, Run(ns, ["plan", "-c", policy]).ExitCode);
    }

    [Fact]
    public void Seed_004s_rc_local_is_adopted_where_identical_and_its_typo_route_is_named_as_in_the_way()
    {
        // /etc/rc.local of the how-to, as written (its second table's connected route says eth0).
        using var ns = Seed004RcLocal(prefs: ("3000", "3010"), secondDevice: "eth0", out var policy);

        var before = ns.Dump();

        var typo = Run(ns, ["apply", "--adopt", "-c", policy]);

        // The typo'd connected route, and the default route the kernel resolved over it (dev eth0), are in the way.
        Assert.Equal(1, typo.ExitCode);
        var errors = Lines(typo.Stderr).Where(l => l.StartsWith("tunnel-router: error:")).ToArray();
        Assert.Equal(2, errors.Length);
        Assert.Equal(
            "tunnel-router: error: route '192.168.2.0/24 dev eth0 src 192.168.2.2 table lan2 proto boot' is in the way of the policy's '192.168.2.0/24 dev eth1 src 192.168.2.2 table lan2 proto tunnel-router' (same table, destination and metric) and is not tunnel-router's: remove it (ip -4 route del 192.168.2.0/24 dev eth0 src 192.168.2.2 table lan2) and apply again",
            errors[0]);
        Assert.StartsWith("tunnel-router: error: route 'default via 192.168.2.1 dev eth0 table lan2 proto boot' is in the way of the policy's 'default via 192.168.2.1 dev eth1 table lan2", errors[1]);
        // Nothing changed: not even what could have been adopted.
        Assert.Equal(before, ns.Dump());

        // The admin fixes the typo as the how-to meant it, and adopts.
        ns.Ip("route", "flush", "table", "20");
        ns.Ip("route", "add", "192.168.2.0/24", "dev", "eth1", "src", "192.168.2.2", "table", "20");
        ns.Ip("route", "add", "default", "via", "192.168.2.1", "table", "20");
        var run = Run(ns, ["apply", "--adopt", "-c", policy]);

        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Contains("adopting rule 'from 192.168.1.6/32 pref 3000 lookup lan1 protocol unspec': re-created as tunnel-router's", run.Stderr);
        Assert.Contains("adopting rule 'from 192.168.2.2/32 pref 3010 lookup lan2 protocol unspec': re-created as tunnel-router's", run.Stderr);
        Assert.Contains("adopting route 'default via 192.168.1.1 dev eth0 table lan1 proto boot': re-created as tunnel-router's", run.Stderr);
        Assert.Contains("3000:\tfrom 192.168.1.6 lookup 10 proto 147", ns.Ip("rule", "show"));
        Assert.Contains("3010:\tfrom 192.168.2.2 lookup 20 proto 147", ns.Ip("rule", "show"));
        Assert.All(Lines(ns.Ip("route", "show", "table", "10")), l => Assert.Contains("proto 147", l));
        Assert.Equal(0, Run(ns, ["plan", "-c", policy]).ExitCode);
    }
}
