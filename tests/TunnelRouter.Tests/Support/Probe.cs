using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace TunnelRouter.Tests.Support;

/// <summary>
/// Real traffic for kernel tests: a socket opened inside a namespace sends one TCP SYN (or UDP datagram)
/// from a chosen source address and port, and observer counters in candidate namespaces tell which one the
/// packet reached. The socket is made on a thread that has joined the namespace (setns is per thread), so no
/// helper program or shell is needed.
/// </summary>
public static partial class Probe
{
    const int CloneNewNet = 0x40000000;

    [DllImport("libc", SetLastError = true)]
    static extern int setns(int fd, int nstype);

    static T InNamespace<T>(NetNs ns, Func<T> action)
    {
        T result = default!;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var handle = File.OpenHandle($"/var/run/netns/{ns.Name}");
                if (setns((int)handle.DangerousGetHandle(), CloneNewNet) != 0)
                    throw new InvalidOperationException($"setns({ns.Name}) failed: errno {Marshal.GetLastPInvokeError()}");
                result = action();
            }
            catch (Exception e) { error = e; }
        });
        thread.Start();
        thread.Join();
        if (error is not null) throw new InvalidOperationException($"probe in {ns.Name} failed: {error.Message}", error);
        return result;
    }

    /// <summary>Sends one packet from <paramref name="from"/>: a TCP SYN (the connection need not succeed)
    /// or a UDP datagram. A null source address lets the kernel choose, as an unbound client does.</summary>
    public static void Send(NetNs from, ProtocolType protocol, string? sourceAddress, int sourcePort, string destination, int destinationPort)
    {
        InNamespace(from, () =>
        {
            var dst = IPAddress.Parse(destination);
            using var s = new Socket(dst.AddressFamily, protocol == ProtocolType.Tcp ? SocketType.Stream : SocketType.Dgram, protocol);
            var any = dst.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any;
            s.Bind(new IPEndPoint(sourceAddress is null ? any : IPAddress.Parse(sourceAddress), sourcePort));
            if (protocol == ProtocolType.Udp)
            {
                s.SendTo([1, 2, 3], new IPEndPoint(dst, destinationPort));
                return 0;
            }
            s.Blocking = false;
            try { s.Connect(new IPEndPoint(dst, destinationPort)); }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress) { }
            // The SYN leaves during connect(); wait for it to be through the veth before closing.
            Thread.Sleep(50);
            return 0;
        });
    }

    /// <summary>Counts packets to <paramref name="destinationPort"/> arriving in each namespace, from now on.</summary>
    public static void Observe(int destinationPort, params NetNs[] namespaces)
    {
        foreach (var ns in namespaces)
            ns.Nft($$"""
                table inet observe
                delete table inet observe
                table inet observe {
                	chain seen {
                		type filter hook prerouting priority raw; policy accept;
                		th dport {{destinationPort}} counter
                	}
                }
                """).ShouldSucceed();
    }

    public static long Seen(NetNs ns)
    {
        var m = CounterRegex().Match(ns.NftList("table", "inet", "observe"));
        return m.Success ? long.Parse(m.Groups[1].Value) : throw new InvalidOperationException("no observer counter in " + ns.Name);
    }

    /// <summary>Sends one packet and returns which of the candidate namespaces it reached (exactly one, or the test fails).</summary>
    public static string Where(NetNs from, ProtocolType protocol, string? sourceAddress, int sourcePort, string destination,
        int destinationPort, params (string Name, NetNs Ns)[] candidates)
    {
        Observe(destinationPort, candidates.Select(c => c.Ns).ToArray());
        Send(from, protocol, sourceAddress, sourcePort, destination, destinationPort);
        // Returns as soon as a packet is counted: the ceiling is for a loaded machine (no spec expects "nowhere").
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var seen = candidates.Where(c => Seen(c.Ns) > 0).Select(c => c.Name).ToList();
            if (seen.Count == 1) return seen[0];
            if (seen.Count > 1) return string.Join("+", seen);
            if (DateTime.UtcNow > deadline) return "nowhere";
            Thread.Sleep(20);
        }
    }

    [GeneratedRegex(@"counter packets (\d+)")]
    private static partial Regex CounterRegex();
}
