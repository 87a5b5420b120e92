using System.Diagnostics;
using TunnelRouter.Tests.Support;
using Xunit;

namespace TunnelRouter.Tests.Kernel;

/// <summary><c>tunnel-router demo</c> run as a newcomer runs it, on the host: it must show the policy at work
/// and leave the host exactly as it found it.</summary>
public class DemoSpecs
{
    /// <summary>The host's policy routing. Links are left out: other tests may add and move veths meanwhile.</summary>
    static string HostRouting() => string.Join("\n---\n",
        Sh.Ip("-4", "rule", "show"), Sh.Ip("-6", "rule", "show"), Sh.Ip("-4", "route", "show", "table", "all"));

    static string[] DemoNamespaces(int pid) =>
        Directory.Exists("/run/netns") ? Directory.GetFiles("/run/netns", $"trdemo-{pid}-*") : [];

    static string HostIproute2() =>
        string.Join("\n", new[] { "/etc/iproute2/rt_tables.d/tunnel-router.conf", "/etc/iproute2/rt_protos.d/tunnel-router.conf" }
            .Select(p => File.Exists(p) ? p + ":" + File.ReadAllText(p) : p + ": none"));

    [Fact]
    public async Task The_demo_shows_plan_status_packet_paths_and_a_ping_through_the_NAT_router_then_leaves_nothing()
    {
        Prerequisites.RequireKernelTests();
        var routing = HostRouting();
        var names = HostIproute2();
        var psi = new ProcessStartInfo(Prerequisites.Binary) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("demo");
        // As a newcomer's shell has it: TUNNEL_ROUTER_BIN, the tests' own variable, would be a configuration key.
        psi.Environment.Remove("TUNNEL_ROUTER_BIN");
        using var demo = Process.Start(psi)!;
        var stdout = demo.StandardOutput.ReadToEndAsync();
        var stderr = demo.StandardError.ReadToEndAsync();
        Assert.True(demo.WaitForExit(60_000), "the demo did not finish within 60 s");
        var output = await stdout;
        var errors = await stderr;

        Assert.True(demo.ExitCode == 0, $"exit {demo.ExitCode}\n{output}\n{errors}");
        // plan shows what apply will add; apply and the hook print their changes as ip lines.
        Assert.Contains("ip -4 route add default via 192.168.1.1 table vpn", output);
        Assert.Contains("[#] ip -4 rule add from 10.10.10.0/24 pref 1000 lookup vpn protocol tunnel-router-hook", output);
        // status, then the paths: clients via the NAT router in table vpn, the server itself via main.
        Assert.Contains("table vpn (200):", output);
        Assert.Contains("→ 198.51.100.10 from 10.10.10.2 via 192.168.1.1 dev eth1 table vpn (200)", output);
        Assert.Contains("→ 10.10.10.3 from 10.10.10.2 dev tun0 table vpn (200)", output);
        Assert.Contains("→ 198.51.100.10 via 192.168.178.1 dev eth0 src 192.168.178.2", output);
        Assert.Contains("ping 198.51.100.10 from 10.10.10.1: reply", output);
        Assert.Contains("ping 2001:db8:100::10 from fd00:4242:4242:4242::1: reply", output);
        Assert.Contains("ping 198.51.100.10 from 192.168.178.2: no reply", output);
        // After flush, nothing owned; then the lab is gone and the host unchanged.
        Assert.EndsWith("tunnel-router owns nothing in the kernel.\n\nremoved the lab (4 namespaces); the host was not changed.\n", output);
        Assert.Empty(DemoNamespaces(demo.Id));
        Assert.Equal(routing, HostRouting());
        Assert.Equal(names, HostIproute2());
    }

    [Fact]
    public async Task Ctrl_C_in_the_middle_of_the_demo_removes_the_lab()
    {
        Prerequisites.RequireKernelTests();
        var psi = new ProcessStartInfo(Prerequisites.Binary) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("demo");
        // As a newcomer's shell has it: TUNNEL_ROUTER_BIN, the tests' own variable, would be a configuration key.
        psi.Environment.Remove("TUNNEL_ROUTER_BIN");
        using var demo = Process.Start(psi)!;
        var stderr = demo.StandardError.ReadToEndAsync();
        // Interrupt once the lab stands: the first step after building it.
        string? line;
        var seen = new System.Text.StringBuilder();
        while ((line = demo.StandardOutput.ReadLine()) is not null && !line.StartsWith("== 1.")) seen.AppendLine(line);
        if (line is null) Assert.Fail($"the demo ended before building its lab:\n{seen}{await stderr}");
        var namespacesWhileRunning = DemoNamespaces(demo.Id).Length;

        Assert.Equal(0, kill(demo.Id, 2));
        var rest = await demo.StandardOutput.ReadToEndAsync();
        Assert.True(demo.WaitForExit(30_000));

        Assert.Equal(4, namespacesWhileRunning);
        Assert.Equal(130, demo.ExitCode);
        Assert.Contains("interrupted.", rest);
        Assert.Contains("removed the lab (4 namespaces)", rest);
        Assert.Empty(DemoNamespaces(demo.Id));
    }

    [System.Runtime.InteropServices.DllImport("libc")]
    static extern int kill(int pid, int sig);
}
