using TunnelRouter.Tests.Support;
using Xunit;

namespace TunnelRouter.Tests.Kernel;

/// <summary>Sysctls through the published binary, in a namespace: net.* settings are per namespace, so
/// the host's are never touched.</summary>
public class SysctlsKernelSpecs
{
    static string Policy(NetNs ns, string sysctls)
    {
        var path = Path.Combine(ns.StateDir, "policy.json");
        File.WriteAllText(path, $$"""{ "Sysctls": {{sysctls}} }""");
        return path;
    }

    [Fact]
    public void Plan_shows_apply_sets_and_a_second_plan_finds_a_per_device_rp_filter_as_wanted()
    {
        using var ns = new NetNs();
        using var peer = new NetNs();
        Links.Veth(ns, "uplink0", ["192.0.2.1/24"], peer, "eth0", ["192.0.2.2/24"]);
        var path = Policy(ns, """{ "net.ipv4.conf.uplink0.rp_filter": "2", "net.ipv4.conf.all.rp_filter": "0" }""");
        ns.Exec("/usr/sbin/sysctl", ["-qw", "net.ipv4.conf.uplink0.rp_filter=1", "net.ipv4.conf.all.rp_filter=0"]).ShouldSucceed();
        var peerBefore = peer.Sysctl("net.ipv4.conf.eth0.rp_filter");

        var plan = TunnelRouterProcess.Run(ns, ["plan", "--config", path]);
        var apply = TunnelRouterProcess.Run(ns, ["apply", "--config", path]).ShouldSucceed();
        var again = TunnelRouterProcess.Run(ns, ["plan", "--config", path]);

        Assert.Equal(2, plan.ExitCode);
        Assert.Equal("sysctl -w net.ipv4.conf.uplink0.rp_filter=2\n", plan.Stdout);
        Assert.Contains("[#] sysctl -w net.ipv4.conf.uplink0.rp_filter=2", apply.Stderr);
        Assert.Equal("2", ns.Sysctl("net.ipv4.conf.uplink0.rp_filter"));
        Assert.Equal(peerBefore, peer.Sysctl("net.ipv4.conf.eth0.rp_filter"));
        Assert.Equal(0, again.ExitCode);
        Assert.Equal("", again.Stdout);
    }

    [Fact]
    public void Multi_value_settings_compare_as_the_kernel_prints_them()
    {
        using var ns = new NetNs();
        var path = Policy(ns, """{ "net.ipv4.ip_local_port_range": "20000 40000" }""");

        TunnelRouterProcess.Run(ns, ["apply", "--config", path]).ShouldSucceed();
        var again = TunnelRouterProcess.Run(ns, ["plan", "--config", path]);

        Assert.Equal("20000\t40000", ns.Sysctl("net.ipv4.ip_local_port_range"));
        Assert.Equal(0, again.ExitCode);
    }

    [Fact]
    public void A_sysctl_the_kernel_does_not_have_is_an_error_naming_it_and_nothing_changes()
    {
        using var ns = new NetNs();
        var path = Policy(ns, """{ "net.ipv4.ip_forward": "1", "net.ipv4.conf.nosuchdev0.rp_filter": "2" }""");
        // A new namespace copies the host's ip_forward; start from a known value.
        ns.Exec("/usr/sbin/sysctl", ["-qw", "net.ipv4.ip_forward=0"]).ShouldSucceed();

        var run = TunnelRouterProcess.Run(ns, ["apply", "--config", path]);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("Sysctls.net.ipv4.conf.nosuchdev0.rp_filter: no such setting", run.Stderr);
        Assert.Equal("0", ns.Sysctl("net.ipv4.ip_forward"));
    }

    [Fact]
    public void A_key_outside_net_is_refused_before_anything_is_read()
    {
        using var ns = new NetNs();
        var path = Policy(ns, """{ "kernel.core_pattern": "|/bin/sh" }""");

        var run = TunnelRouterProcess.Run(ns, ["plan", "--config", path]);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("Sysctls.kernel.core_pattern: 'kernel.core_pattern' is not a net.* sysctl", run.Stderr);
    }
}
