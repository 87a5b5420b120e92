using TunnelRouter.Tests.Support;

namespace TunnelRouter.Tests.EndToEnd;

/// <summary>What every OpenVPN lab holds: its namespaces and the openvpn processes in them, all removed on Dispose.</summary>
public abstract class NamespaceLab : IDisposable
{
    readonly List<NetNs> _namespaces = [];
    protected readonly List<OpenVpnProcess> Processes = [];

    protected NetNs Add()
    {
        var ns = new NetNs();
        _namespaces.Add(ns);
        return ns;
    }

    protected OpenVpnProcess Track(OpenVpnProcess p)
    {
        Processes.Add(p);
        return p;
    }

    public void Dispose()
    {
        foreach (var p in Processes) p.Dispose();
        foreach (var ns in _namespaces)
        {
            // Helpers openvpn forked (the down-root plugin's root process) would keep a deleted namespace alive.
            foreach (var pid in OpenVpnLab.Lines(Sh.Run("/usr/sbin/ip", ["netns", "pids", ns.Name]).Stdout))
                Sh.Run("/bin/kill", ["-KILL", pid]);
            ns.Dispose();
        }
    }
}
