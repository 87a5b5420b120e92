using TunnelRouter.Host;
using TunnelRouter.Kernel.Netlink;

namespace TunnelRouter.Kernel;

public static class Backends
{
    public static IKernel Create(string name) => name switch
    {
        "netlink" => new NetlinkBackend(),
        "ip" or "iproute2" => new IpBackend(new ProcessRunner()),
        _ => throw new InputException("Backend", $"'{Core.Net.Printable(name)}' is not a backend (netlink, ip)"),
    };
}
