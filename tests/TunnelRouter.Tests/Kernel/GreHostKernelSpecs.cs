using TunnelRouter.Tests.Support;
using Xunit;

namespace TunnelRouter.Tests.Kernel;

/// <summary>The published binary on this host's kernel, which has no GRE: tunnels fail before anything changes.</summary>
public class GreHostKernelSpecs
{
    static string Policy(NetNs ns, string mode = "gre", string local = "203.0.113.1", string remote = "203.0.113.2")
    {
        var path = Path.Combine(ns.StateDir, "policy.json");
        File.WriteAllText(path, $$"""
            { "Tunnels": [ { "Name": "gre_black", "Mode": "{{mode}}", "Local": "{{local}}", "Remote": "{{remote}}",
                             "Addresses": [ "10.255.0.1/30" ], "Routes": [ "192.168.20.0/24" ] } ] }
            """);
        return path;
    }

    static NetNs SiteA()
    {
        RequireNoGre();
        var ns = new NetNs();
        ns.Ip("link", "add", "inet0", "type", "veth", "peer", "name", "inet1");
        // No kernel-made link-local addresses: they appear a moment after "up" and would race the dumps.
        ns.Ip("link", "set", "inet0", "addrgenmode", "none");
        ns.Ip("link", "set", "inet1", "addrgenmode", "none");
        ns.Ip("addr", "add", "203.0.113.1/24", "dev", "inet0");
        ns.Ip("-6", "addr", "add", "2001:db8:113::1/64", "dev", "inet0", "nodad");
        ns.Ip("link", "set", "inet0", "up");
        ns.Ip("link", "set", "inet1", "up");
        // The veth's carrier comes a moment after "up"; until then routes read "linkdown" and the dumps race.
        Eventually.True(() => ns.Ip("-o", "link", "show", "inet0").Contains("state UP"), () => "inet0 is not up after 60 s", 60_000);
        // The IPv6 address's local route comes from addrconf's work queue, also a moment later.
        ns.WaitForLocalRoute("2001:db8:113::1");
        return ns;
    }

    /// <summary>These tests are about a kernel without GRE; on one with it they would prove nothing.</summary>
    static void RequireNoGre()
    {
        if (Directory.Exists("/sys/module/ip_gre") || Directory.Exists("/sys/module/ip6_gre"))
            throw new InvalidOperationException("this host's kernel has GRE loaded; these tests need one without (the UML tests cover GRE)");
    }

    [Theory]
    [InlineData("apply")]
    [InlineData("plan")]
    [InlineData("apply --dry-run")]
    public void A_tunnel_on_a_kernel_without_GRE_fails_in_one_line_naming_ip_gre_and_changes_nothing(string command)
    {
        using var ns = SiteA();
        var before = ns.Dump();

        var run = TunnelRouterProcess.Run(ns, [.. command.Split(' '), "-c", Policy(ns)]);

        Assert.Equal(1, run.ExitCode);
        var line = Assert.Single(run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("tunnel-router: error: Tunnels[0] (gre_black, gre) needs the kernel module ip_gre: this kernel does not have it", line);
        Assert.Equal(before, ns.Dump());
        Assert.False(Directory.Exists(Path.Combine(ns.StateDir, "iproute2")), "no name drop-in may be written either");
    }

    [Fact]
    public void An_ip6gre_tunnel_names_ip6_gre()
    {
        using var ns = SiteA();

        var run = TunnelRouterProcess.Run(ns, ["apply", "-c", Policy(ns, "ip6gre", "2001:db8:113::1", "2001:db8:113::2")]);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("needs the kernel module ip6_gre", run.Stderr);
    }

    [Fact]
    public void A_bad_tunnel_is_an_input_error_before_the_kernel_is_asked_anything()
    {
        using var ns = SiteA();
        var before = ns.Dump();

        var run = TunnelRouterProcess.Run(ns, ["apply", "-c", Policy(ns), "Tunnels:0:Remote=2001:db8::2"]);

        Assert.Equal(1, run.ExitCode);
        // The value came from the command line, and the error says so.
        Assert.Equal("tunnel-router: error: command line: Tunnels[0].Remote: '2001:db8::2' is IPv6 but mode gre runs over IPv4 (use ip6gre for that)\n", run.Stderr);
        Assert.Equal(before, ns.Dump());
    }

    [Fact]
    public void Status_and_flush_work_without_GRE_when_no_tunnel_is_owned()
    {
        using var ns = SiteA();
        var before = ns.Dump();

        TunnelRouterProcess.Run(ns, ["flush", "-c", Policy(ns)]).ShouldSucceed();
        var status = TunnelRouterProcess.Run(ns, ["status", "--json", "-c", Policy(ns)]).ShouldSucceed();

        Assert.Contains("\"tunnels\": []", status.Stdout);
        Assert.Equal(before, ns.Dump());
    }
}
