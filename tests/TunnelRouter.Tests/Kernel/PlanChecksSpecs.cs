using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.Hardening;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary>plan checks what the kernel will; apply's transcript shows only what was sent, and its errors use the
/// names every other line uses.</summary>
public class PlanChecksSpecs
{
    static NetNs Host()
    {
        var ns = new NetNs();
        AddVeth(ns, "wan", "192.168.1.2/24");
        return ns;
    }

    [Fact]
    public void A_gateway_that_is_not_on_link_is_an_error_in_plan_which_changes_nothing_and_in_apply_which_puts_in_the_rest()
    {
        using var ns = Host();
        var policy = WritePolicy(ns, Hardening.Policy(["default via 192.168.9.1 dev wan table vpn", "default via 192.168.1.1 table wan"], [], "\"vpn\": 200, \"wan\": 201"));
        var before = ns.Dump();

        var plan = Run(ns, ["plan", "--config", policy]);
        Assert.Equal(before, ns.Dump());
        var apply = Run(ns, ["apply", "--config", policy]);

        const string expected = "route 'default via 192.168.9.1 dev wan table vpn proto tunnel-router': gateway 192.168.9.1 is not on a connected network of wan, so the kernel would refuse it (\"Nexthop has invalid gateway\"); add the address or route that reaches it, or 'onlink' if it is on the link anyway";
        Assert.Equal(1, plan.ExitCode);
        Assert.Equal("", plan.Stdout);
        Assert.Contains(expected, plan.Stderr);
        Assert.Equal(1, apply.ExitCode);
        Assert.Contains(expected, apply.Stderr);
        // One route the kernel would refuse never keeps the others out (docs/lifecycle.md, invariant 9): table wan's went in.
        Assert.Contains("default via 192.168.1.1 dev wan proto 147", ns.Ip("route", "show", "table", "201"));
        Assert.DoesNotContain("192.168.9.1", ns.Ip("route", "show", "table", "all"));
        Assert.Equal(1, Run(ns, ["apply", "--config", policy]).ExitCode);
    }

    [Fact]
    public void Gateways_of_uplinks_and_prefix_lists_are_checked_in_plan_as_apply_meets_them_each_named_by_its_key()
    {
        using var ns = Host();
        var list = WritePolicy(ns, "5.3.0.0/16\n5.8.0.0/16\n", "ru.txt");
        var policy = WritePolicy(ns, $$"""
            { "Tables": { "vpn": 200, "lan1": 10 },
              "Uplinks": [ { "Interface": "wan", "Table": "lan1", "Address": "192.168.1.2/24", "Gateway": "192.168.1.2" } ],
              "PrefixLists": [ { "File": "{{list}}", "Route": "via 192.168.9.1 dev wan table vpn" } ] }
            """);
        var before = ns.Dump();

        var plan = Run(ns, ["plan", "--config", policy]);
        Assert.Equal(before, ns.Dump());
        var apply = Run(ns, ["apply", "--config", policy]);

        foreach (var run in new[] { plan, apply })
        {
            Assert.Equal(1, run.ExitCode);
            var error = Assert.Single(run.Stderr.Split('\n'), l => l.StartsWith("tunnel-router: error:"));
            Assert.Contains("Uplinks[0].Gateway: route 'default via 192.168.1.2 dev wan table lan1 proto tunnel-router': gateway 192.168.1.2 is an address of this host", error);
            Assert.Contains("PrefixLists[0].Route (ru.txt): its 2 routes like '5.3.0.0/16 via 192.168.9.1 dev wan table vpn proto tunnel-router': gateway 192.168.9.1 is not on a connected network of wan, so the kernel would refuse it", error);
        }
        Assert.Equal("", plan.Stdout);
    }

    [Fact]
    public void A_failed_apply_prints_no_line_for_changes_it_never_sent()
    {
        using var ns = Host();
        var policy = WritePolicy(ns, """
            { "Tables": { "wan": 201 }, "Routes": [ "default via 192.168.1.1 table wan" ],
              "Marks": [ { "Chain": "output", "Destination": "198.51.100.0/24", "Mark": "0x1" } ],
              "Sysctls": { "net.ipv4.conf.all.rp_filter": "2" } }
            """);

        var run = Run(ns, ["apply", "--config", policy], new Dictionary<string, string> { ["TUNNEL_ROUTER_FAULT_AFTER"] = "0" });

        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("[#] ip -4 route add default via 192.168.1.1 table wan proto tunnel-router", run.Stderr);
        Assert.DoesNotContain("[#] nft", run.Stderr);
        Assert.DoesNotContain("[#] sysctl", run.Stderr);
    }

    [Fact]
    public void The_transcript_names_the_line_of_a_batch_the_kernel_refused_and_what_came_of_the_lines_after_it()
    {
        using var ns = Host();
        // The second route's preferred source is not an address of this host: only the kernel refuses it.
        var policy = WritePolicy(ns, Hardening.Policy(
            ["10.1.0.0/24 dev wan table vpn", "default via 192.168.1.1 dev wan src 10.9.9.9 table vpn", "10.2.0.0/24 dev wan table vpn"], [], "\"vpn\": 200"));
        var before = ns.Dump();

        var run = Run(ns, ["apply", "--config", policy]);

        Assert.Equal(1, run.ExitCode);
        var lines = run.Stderr.Split('\n');
        var refused = Array.FindIndex(lines, l => l.StartsWith("[#] refused:"));
        Assert.True(refused == 3, run.Stderr);
        Assert.Equal("[#] ip -4 route add 10.2.0.0/24 dev wan table vpn proto tunnel-router", lines[2]);
        // ip -batch stops at the refused line; netlink sends every request and takes back what took effect.
        Assert.Equal("[#] refused: line 2 of the 3 above: ip -4 route add default via 192.168.1.1 dev wan src 10.9.9.9 table vpn proto tunnel-router; the 1 line after it was " +
                     (KernelBackend.Current == "ip" ? "not sent" : "sent and what took effect taken back"), lines[refused]);
        // Then the rollback of the first, and the error.
        Assert.Equal("[#] ip -4 route del 10.1.0.0/24 dev wan table vpn proto tunnel-router", lines[refused + 1]);
        Assert.StartsWith("tunnel-router: error: ", lines[refused + 2]);
        Assert.Equal(before, ns.Dump());
    }

    [Fact]
    public void A_kernel_error_names_tables_and_protocols_as_every_other_line_does()
    {
        using var ns = Host();
        // A preferred source that is not an address of this host: the kernel refuses it.
        var policy = WritePolicy(ns, Hardening.Policy(["default via 192.168.1.1 dev wan src 10.9.9.9 table vpn"], [], "\"vpn\": 200"));

        var run = Run(ns, ["apply", "--config", policy]);

        Assert.Equal(1, run.ExitCode);
        var error = Assert.Single(run.Stderr.Split('\n'), l => l.StartsWith("tunnel-router: error:"));
        Assert.Contains("table vpn proto tunnel-router", error);
        Assert.DoesNotContain("table 200", error);
        Assert.DoesNotContain("proto 147", error);
    }
}
