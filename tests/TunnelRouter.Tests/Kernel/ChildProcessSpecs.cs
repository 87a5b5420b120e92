using System.Reflection;
using System.Runtime.Loader;
using System.Text.RegularExpressions;
using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary>What tunnel-router's children get (nothing of OpenVPN's environment), and that the hook's
/// netlink path has no children at all: it never even loads the process library.</summary>
[BackendIndependent]
public partial class ChildProcessSpecs
{
    [Fact]
    public void Tools_the_hook_runs_get_LC_ALL_and_nothing_of_OpenVPN_s_environment()
    {
        using var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24");
        var trace = Path.Combine(ns.StateDir, "trace");
        var env = Hermetic(ns, SubnetEnv("tun0", "10.10.10.1", "255.255.255.0"));
        env["TUNNEL_ROUTER_BACKEND"] = "ip";
        env["MODPROBE_OPTIONS"] = "-C /nonexistent/modprobe.conf";

        ns.Exec("/usr/bin/strace", ["-f", "-qq", "-v", "-s", "4096", "-e", "trace=execve", "-o", trace, Prerequisites.Binary, "up"], env)
            .ShouldSucceed();

        var children = File.ReadLines(trace).Select(l => Execve().Match(l)).Where(m => m.Success && m.Groups[1].Value != Prerequisites.Binary)
            .Select(m => (Tool: m.Groups[1].Value, Environment: m.Groups[2].Value)).ToList();
        Assert.Contains(children, c => c.Tool == "/usr/sbin/ip");
        Assert.All(children, c => Assert.Equal((c.Tool, "\"LC_ALL=C\""), (c.Tool, c.Environment)));
    }

    [Fact]
    public void The_netlink_hook_never_loads_CliWrap()
    {
        using var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24");
        var env = Hermetic(ns, SubnetEnv("tun0", "10.10.10.1", "255.255.255.0"));
        env["TUNNEL_ROUTER_BACKEND"] = "netlink";
        // A fresh copy of the program and its libraries: an assembly shows up in this context only when code
        // run in it needs one of its types, as a native-AOT run would run that code.
        var context = new FreshContext();
        var app = context.LoadFromAssemblyPath(Path.Combine(AppContext.BaseDirectory, "tunnel-router.dll"))
            .GetType("TunnelRouter.Cli.App", throwOnError: true)!.GetMethod("Run")!;
        int Run(params string[] args) =>
            ns.Inside(() => (int)app.Invoke(null, [args, env, new StringWriter(), new StringWriter()])!);

        var hook = Run("up");
        var loadedByHook = context.Loaded();
        var plan = Run("plan", "--backend", "ip");

        Assert.Equal(0, hook);
        Assert.Contains("10.10.10.0/24 dev tun0", ns.Ip("route", "show", "table", "200"));
        Assert.DoesNotContain("CliWrap", loadedByHook);
        // The check can see CliWrap: a command that runs ip loads it.
        Assert.Equal(0, plan);
        Assert.Contains("CliWrap", context.Loaded());
    }

    /// <summary>The test's own policy (empty), iproute2 names and lock: nothing of the host's is read.</summary>
    static Dictionary<string, string> Hermetic(NetNs ns, Dictionary<string, string> env)
    {
        var policy = Path.Combine(ns.StateDir, "policy.json");
        File.WriteAllText(policy, "{}");
        env["TUNNEL_ROUTER_CONFIG"] = policy;
        env["TUNNEL_ROUTER_IPROUTE2DIR"] = Path.Combine(ns.StateDir, "iproute2");
        env["TUNNEL_ROUTER_LOCKFILE"] = Path.Combine(ns.StateDir, "lock");
        return env;
    }

    // 123 execve("/usr/sbin/ip", ["/usr/sbin/ip", "-4", ...], ["LC_ALL=C"]) = 0
    [GeneratedRegex("""execve\("([^"]+)", \[.*\], \[(.*)\]\) = 0""")]
    private static partial Regex Execve();

    sealed class FreshContext() : AssemblyLoadContext("tunnel-router-hook", isCollectible: true)
    {
        protected override Assembly? Load(AssemblyName name)
        {
            var path = Path.Combine(AppContext.BaseDirectory, name.Name + ".dll");
            return File.Exists(path) ? LoadFromAssemblyPath(path) : null;
        }

        public string[] Loaded() => Assemblies.Select(a => a.GetName().Name ?? "").ToArray();
    }
}
