namespace TunnelRouter.Tests.Support;

/// <summary>Runs the published binary inside a namespace, with an environment built from scratch the
/// way OpenVPN builds a hook's: no PATH, no HOME, only what the test passes.</summary>
public static class TunnelRouterProcess
{
    public static RunResult Run(NetNs ns, IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null, string? stdin = null) =>
        ns.Exec(Prerequisites.Binary, args, Environment(ns, env), stdin);

    /// <summary>The whole environment the binary runs with: the namespace's own iproute2 names and lock, no
    /// policy file unless the test names one, the test's backend, and what the test adds.</summary>
    public static Dictionary<string, string> Environment(NetNs ns, IReadOnlyDictionary<string, string>? env = null)
    {
        var full = new Dictionary<string, string>
        {
            ["TUNNEL_ROUTER_IPROUTE2DIR"] = Path.Combine(ns.StateDir, "iproute2"),
            ["TUNNEL_ROUTER_LOCKFILE"] = Path.Combine(ns.StateDir, "lock"),
        };
        if (env is not null) foreach (var (k, v) in env) full[k] = v;
        // No policy file unless the test names one: the host's /etc/tunnel-router is never read.
        full.TryAdd("TUNNEL_ROUTER_CONFIG", "");
        // Per-backend kernel tests (see KernelBackend) run the binary with their backend, unless the test chose one.
        if (KernelBackend.Current is { } backend) full.TryAdd("TUNNEL_ROUTER_BACKEND", backend);
        return full;
    }

    /// <summary>OpenVPN's environment for a topology-subnet server with IPv4 and (optionally) IPv6.</summary>
    public static Dictionary<string, string> SubnetEnv(string dev, string v4Local, string netmask, string? v6Local = null,
        int v6Bits = 64, string scriptType = "up")
    {
        var env = new Dictionary<string, string>
        {
            ["script_type"] = scriptType,
            ["script_context"] = "init",
            ["dev"] = dev,
            ["dev_type"] = "tun",
            ["tun_mtu"] = "1500",
            ["ifconfig_local"] = v4Local,
            ["ifconfig_netmask"] = netmask,
            ["verb"] = "3",
            ["daemon"] = "0",
            ["config"] = "server.conf",
        };
        if (v6Local is not null)
        {
            env["ifconfig_ipv6_local"] = v6Local;
            env["ifconfig_ipv6_netbits"] = v6Bits.ToString();
        }
        return env;
    }
}
