using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using TunnelRouter.Core;
using TunnelRouter.Interop;

namespace TunnelRouter.Kernel;

/// <summary>
/// One raw ICMP (or ICMPv6) socket of one uplink and family: bound to the uplink's address and, with SO_BINDTODEVICE, to
/// its device, so an echo request leaves by that uplink through its own table ("from ADDRESS lookup TABLE") even while
/// its traffic is failed over, and only replies that came in by it are read. No process per probe: watch holds one
/// socket per uplink and family. Equivalent to: <c>ping -I eth0 -c 1 9.9.9.9</c> with the uplink's address as source.
/// </summary>
public sealed unsafe class IcmpProbe : IDisposable
{
    int _fd;
    readonly ushort _id;
    readonly byte[] _buffer = new byte[1500];

    public AddressFamily Family { get; }
    public int Fd => _fd;

    IcmpProbe(int fd, AddressFamily family, ushort id)
    {
        _fd = fd;
        Family = family;
        _id = id;
    }

    /// <param name="id">the ICMP identifier of this socket's echoes: a raw socket reads every echo reply to its address,
    /// so replies are told apart by it.</param>
    public static IcmpProbe Open(string device, IPAddress source, ushort id)
    {
        var v6 = source.AddressFamily.IsV6();
        var fd = Libc.socket(v6 ? Libc.AF_INET6 : Libc.AF_INET, Libc.SOCK_RAW | Libc.SOCK_CLOEXEC | Libc.SOCK_NONBLOCK, v6 ? Libc.IPPROTO_ICMPV6 : Libc.IPPROTO_ICMP);
        if (fd < 0) throw Error("socket(raw ICMP)", device);
        var probe = new IcmpProbe(fd, source.AddressFamily, id);
        try
        {
            var name = System.Text.Encoding.UTF8.GetBytes(device + "\0");
            fixed (byte* n = name)
                if (Libc.setsockopt(fd, Libc.SOL_SOCKET, Libc.SO_BINDTODEVICE, n, (uint)name.Length) != 0) throw Error("setsockopt(SO_BINDTODEVICE)", device);
            var bytes = source.GetAddressBytes();
            if (v6)
            {
                var a = new sockaddr_in6 { sin6_family = Libc.AF_INET6 };
                for (var i = 0; i < 16; i++) a.sin6_addr[i] = bytes[i];
                if (Libc.bind(fd, &a, (uint)sizeof(sockaddr_in6)) != 0) throw Error($"bind({source})", device);
            }
            else
            {
                var a = new sockaddr_in { sin_family = Libc.AF_INET };
                for (var i = 0; i < 4; i++) a.sin_addr[i] = bytes[i];
                if (Libc.bind(fd, &a, (uint)sizeof(sockaddr_in)) != 0) throw Error($"bind({source})", device);
            }
        }
        catch
        {
            probe.Dispose();
            throw;
        }
        return probe;
    }

    static EnvironmentException Error(string call, string device)
    {
        var errno = Marshal.GetLastPInvokeError();
        return new EnvironmentException($"uplink probe on {device}: {call} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
    }

    /// <summary>Sends one echo request with <paramref name="sequence"/>; false when the kernel refused it now (no route,
    /// the device down): a lost probe, not an error.</summary>
    public bool Send(IPAddress target, ushort sequence)
    {
        Span<byte> packet = stackalloc byte[16];
        packet[0] = Family.IsV6() ? (byte)128 : (byte)8; // echo request
        BinaryPrimitives.WriteUInt16BigEndian(packet[4..], _id);
        BinaryPrimitives.WriteUInt16BigEndian(packet[6..], sequence);
        "tnlrtr\0\0"u8.CopyTo(packet[8..]);
        // ICMPv6's checksum covers a pseudo-header: the kernel fills it in on a raw ICMPv6 socket. ICMP's is ours to make.
        if (!Family.IsV6()) BinaryPrimitives.WriteUInt16BigEndian(packet[2..], Checksum(packet));
        var bytes = target.GetAddressBytes();
        fixed (byte* p = packet)
        {
            nint sent;
            if (Family.IsV6())
            {
                var a = new sockaddr_in6 { sin6_family = Libc.AF_INET6 };
                for (var i = 0; i < 16; i++) a.sin6_addr[i] = bytes[i];
                sent = Libc.sendto(_fd, p, (nuint)packet.Length, 0, &a, (uint)sizeof(sockaddr_in6));
            }
            else
            {
                var a = new sockaddr_in { sin_family = Libc.AF_INET };
                for (var i = 0; i < 4; i++) a.sin_addr[i] = bytes[i];
                sent = Libc.sendto(_fd, p, (nuint)packet.Length, 0, &a, (uint)sizeof(sockaddr_in));
            }
            return sent == packet.Length;
        }
    }

    /// <summary>The sequence numbers of the echo replies of this socket waiting to be read, without blocking.</summary>
    public void Receive(List<ushort> sequences)
    {
        fixed (byte* b = _buffer)
            while (true)
            {
                var n = Libc.recvfrom(_fd, b, (nuint)_buffer.Length, 0, null, null);
                if (n <= 0) return;
                var data = _buffer.AsSpan(0, (int)n);
                // A raw IPv4 socket reads the IP header too; an IPv6 one the ICMPv6 message alone.
                if (!Family.IsV6())
                {
                    var header = (data[0] & 0xf) * 4;
                    if (data.Length < header + 8) continue;
                    data = data[header..];
                }
                if (data.Length < 8 || data[0] != (Family.IsV6() ? 129 : 0)) continue; // echo reply
                if (BinaryPrimitives.ReadUInt16BigEndian(data[4..]) != _id) continue;
                sequences.Add(BinaryPrimitives.ReadUInt16BigEndian(data[6..]));
            }
    }

    /// <summary>The Internet checksum (RFC 1071).</summary>
    internal static ushort Checksum(ReadOnlySpan<byte> data)
    {
        uint sum = 0;
        for (var i = 0; i + 1 < data.Length; i += 2) sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
        if ((data.Length & 1) == 1) sum += (uint)data[^1] << 8;
        while (sum >> 16 != 0) sum = (sum & 0xffff) + (sum >> 16);
        return (ushort)~sum;
    }

    public void Dispose()
    {
        if (_fd >= 0) Libc.close(_fd);
        _fd = -1;
    }
}
