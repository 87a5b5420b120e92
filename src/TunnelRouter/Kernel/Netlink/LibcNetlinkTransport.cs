using System.Runtime.InteropServices;
using TunnelRouter.Interop;

namespace TunnelRouter.Kernel.Netlink;

/// <summary>A netlink socket through libc (NETLINK_ROUTE unless asked otherwise): errno of the syscalls becomes
/// <see cref="NetlinkException"/>.</summary>
internal sealed unsafe class LibcNetlinkTransport : INetlinkTransport
{
    int _fd;

    LibcNetlinkTransport(int fd) => _fd = fd;

    /// <summary>A NETLINK_ROUTE socket bound to multicast <paramref name="groups"/>: the event socket, read through
    /// <see cref="Drain"/> (recvmsg and the sender's port id, as requests are).</summary>
    public static LibcNetlinkTransport Subscribe(uint groups) => Bound(Nl.NETLINK_ROUTE, groups, requests: false);

    /// <summary>The descriptor, to poll.</summary>
    public int Fd => _fd;

    /// <summary>The port id the kernel gave this socket (what a sender would have to aim at).</summary>
    public uint PortId
    {
        get
        {
            var address = new sockaddr_nl();
            var length = (uint)sizeof(sockaddr_nl);
            return Libc.getsockname(_fd, &address, &length) == 0 ? address.nl_pid : 0;
        }
    }

    public static LibcNetlinkTransport Open(int protocol = Nl.NETLINK_ROUTE) => Bound(protocol, 0, requests: true);

    static LibcNetlinkTransport Bound(int protocol, uint groups, bool requests)
    {
        var fd = Libc.socket(Libc.AF_NETLINK, Libc.SOCK_RAW | Libc.SOCK_CLOEXEC, protocol);
        if (fd < 0) throw NetlinkException.Of("socket(AF_NETLINK)", Marshal.GetLastPInvokeError());
        var transport = new LibcNetlinkTransport(fd);
        try
        {
            if (requests)
            {
                // Acks without a copy of the request (they stay small, so thousands fit the receive buffer),
                // with the kernel's own error text ("Nexthop device is not up").
                transport.Option(Nl.SOL_NETLINK, Nl.NETLINK_CAP_ACK, 1);
                transport.Option(Nl.SOL_NETLINK, Nl.NETLINK_EXT_ACK, 1);
                // Dumps filtered by the kernel where it can (Linux 4.20); the filter is applied on reading as well.
                transport.Option(Nl.SOL_NETLINK, Nl.NETLINK_GET_STRICT_CHK, 1);
            }
            var address = new sockaddr_nl { nl_family = Libc.AF_NETLINK, nl_groups = groups };
            if (Libc.bind(fd, &address, (uint)sizeof(sockaddr_nl)) != 0)
                throw NetlinkException.Of(groups == 0 ? "bind(AF_NETLINK)" : "bind(AF_NETLINK, groups)", Marshal.GetLastPInvokeError());
        }
        catch
        {
            transport.Dispose();
            throw;
        }
        return transport;
    }

    /// <summary>SO_RCVBUFFORCE, which root may use beyond net.core.rmem_max.</summary>
    public bool GrowReceiveBuffer(int bytes) => Option(Libc.SOL_SOCKET, Libc.SO_RCVBUFFORCE, bytes);

    bool Option(int level, int name, int value) => Libc.setsockopt(_fd, level, name, &value, sizeof(int)) == 0;

    public void Send(ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            while (true)
            {
                var n = Libc.send(_fd, p, (nuint)data.Length, 0);
                if (n >= 0) return;
                var errno = Marshal.GetLastPInvokeError();
                if (errno == Errno.EINTR) continue;
                throw NetlinkException.Of("send(netlink)", errno);
            }
        }
    }

    public int Receive(Span<byte> buffer, out uint senderPid)
    {
        var n = Receive(buffer, Libc.MSG_TRUNC, out senderPid);
        return n >= 0 ? n : throw NetlinkException.Of("recvmsg(netlink)", -n);
    }

    /// <summary>What <see cref="Drain"/> met besides the messages it handed on.</summary>
    /// <param name="Lost">the kernel dropped notifications (ENOBUFS: the socket overflowed).</param>
    /// <param name="CutShort">a datagram was larger than the buffer: it was skipped, and what it said is unknown.</param>
    /// <param name="Errno">the error that ended the reading; 0 when it ended because nothing more was queued.</param>
    public readonly record struct Drained(bool Lost, bool CutShort, int Errno);

    /// <summary>
    /// The event sockets' receive path: reads every datagram queued, without waiting, and hands each message of the
    /// kernel's to <paramref name="handler"/>. As on the request path (<see cref="NetlinkSocket"/>), only the kernel's
    /// datagrams (port id 0) are read; anyone else's (a process with CAP_NET_ADMIN aiming at this port) is dropped.
    /// </summary>
    public Drained Drain(Span<byte> buffer, NetlinkSocket.MessageHandler handler)
    {
        bool lost = false, cutShort = false;
        while (true)
        {
            // MSG_TRUNC: the datagram's whole length, more than the buffer when it was cut short.
            var n = Receive(buffer, Libc.MSG_TRUNC | Libc.MSG_DONTWAIT, out var sender);
            if (n < 0)
            {
                if (-n == Errno.ENOBUFS) { lost = true; continue; }
                return new Drained(lost, cutShort, -n == Errno.EAGAIN ? 0 : -n);
            }
            if (n == 0) return new Drained(lost, cutShort, 0);
            if (sender != 0) continue;
            if (n > buffer.Length) { cutShort = true; continue; }
            ReadOnlySpan<byte> data = buffer[..n];
            while (NetlinkReader.NextMessage(ref data, out var header, out var payload)) handler(header, payload);
        }
    }

    int Receive(Span<byte> buffer, int flags, out uint senderPid)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                var sender = new sockaddr_nl();
                var iov = new iovec { iov_base = p, iov_len = (nuint)buffer.Length };
                var msg = new msghdr { msg_name = &sender, msg_namelen = (uint)sizeof(sockaddr_nl), msg_iov = &iov, msg_iovlen = 1 };
                var n = Libc.recvmsg(_fd, &msg, flags);
                senderPid = sender.nl_pid;
                if (n >= 0) return (int)Math.Min(n, int.MaxValue);
                var errno = Marshal.GetLastPInvokeError();
                if (errno != Errno.EINTR) return -errno;
            }
        }
    }

    public void Dispose()
    {
        if (_fd <= 0) return;
        Libc.close(_fd);
        _fd = 0;
    }
}
