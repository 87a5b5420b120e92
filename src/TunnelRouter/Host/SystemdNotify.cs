using System.Net.Sockets;
using System.Text;

namespace TunnelRouter.Host;

/// <summary>
/// systemd's notify protocol without libsystemd: one datagram ("READY=1", "STATUS=...") to the AF_UNIX socket
/// named by $NOTIFY_SOCKET, a path or, with a leading '@', an abstract name. Nothing when the variable is unset
/// (watch run by hand); a socket that cannot be reached is not fatal to watch.
/// </summary>
public sealed class SystemdNotify(string? socketPath)
{
    public bool Enabled => !string.IsNullOrEmpty(socketPath);

    public static SystemdNotify From(IReadOnlyDictionary<string, string> env) =>
        new(env.TryGetValue("NOTIFY_SOCKET", out var path) ? path : null);

    /// <summary>Returns whether the datagram went out.</summary>
    public bool Send(string state)
    {
        if (!Enabled) return false;
        var path = socketPath!.StartsWith('@') ? "\0" + socketPath[1..] : socketPath;
        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            socket.SendTo(Encoding.UTF8.GetBytes(state), new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException) { return false; }
    }
}
