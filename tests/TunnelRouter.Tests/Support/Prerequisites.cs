namespace TunnelRouter.Tests.Support;

/// <summary>
/// Kernel tests need root, iproute2 and the published binary. When any is missing they fail with a
/// message saying what is missing; they never skip, so CI cannot pass without running them.
/// </summary>
public static class Prerequisites
{
    public static void RequireKernelTests()
    {
        if (Environment.UserName != "root" && Interop.geteuid() != 0)
            throw new InvalidOperationException("kernel tests need root (they create network namespaces); run ./test.sh as root");
        if (!File.Exists("/usr/sbin/ip"))
            throw new InvalidOperationException("kernel tests need iproute2 (/usr/sbin/ip); ./test.sh installs it");
    }

    /// <summary>The published native-AOT binary under test (./test.sh sets TUNNEL_ROUTER_BIN).</summary>
    public static string Binary
    {
        get
        {
            var bin = Environment.GetEnvironmentVariable("TUNNEL_ROUTER_BIN");
            if (string.IsNullOrEmpty(bin) || !File.Exists(bin))
                throw new InvalidOperationException(
                    $"TUNNEL_ROUTER_BIN ('{bin}') is not the published tunnel-router binary; run the tests through ./test.sh");
            return bin;
        }
    }

    static class Interop
    {
        [System.Runtime.InteropServices.DllImport("libc")]
        public static extern uint geteuid();
    }
}
