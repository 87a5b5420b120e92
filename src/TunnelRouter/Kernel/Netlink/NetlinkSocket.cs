using System.Runtime.InteropServices;
using TunnelRouter.Kernel;

namespace TunnelRouter.Interop;

/// <summary>
/// A NETLINK_ROUTE socket: the thin layer that turns errno (of the syscalls and of the kernel's acks)
/// into <see cref="NetlinkException"/>. Requests and dumps go through <see cref="Exchange"/> and
/// <see cref="Dump"/>; nothing above this class sees a file descriptor or a raw errno.
/// </summary>
internal sealed unsafe class NetlinkSocket : IDisposable
{
    // Big enough for the largest dump datagram the kernel builds (it caps them at 32 KiB).
    const int ReceiveBufferSize = 64 * 1024;

    int _fd;
    uint _seq;
    readonly byte[] _receive = new byte[ReceiveBufferSize];

    NetlinkSocket(int fd)
    {
        _fd = fd;
        // Sequence numbers only need to differ between the requests of this socket.
        _seq = (uint)Environment.TickCount;
    }

    /// <summary>True when the kernel filters dumps by the request's attributes (NETLINK_GET_STRICT_CHK, Linux 4.20).</summary>
    public bool StrictDumps { get; private set; }

    public static NetlinkSocket Open()
    {
        var fd = Libc.socket(Libc.AF_NETLINK, Libc.SOCK_RAW | Libc.SOCK_CLOEXEC, Nl.NETLINK_ROUTE);
        if (fd < 0) throw Error("socket(AF_NETLINK)", Marshal.GetLastPInvokeError());
        var socket = new NetlinkSocket(fd);
        try
        {
            // Acks without a copy of the request (they stay small, so thousands fit the receive buffer),
            // with the kernel's own error text ("Nexthop device is not up").
            socket.Option(Nl.SOL_NETLINK, Nl.NETLINK_CAP_ACK, 1);
            socket.Option(Nl.SOL_NETLINK, Nl.NETLINK_EXT_ACK, 1);
            socket.StrictDumps = socket.Option(Nl.SOL_NETLINK, Nl.NETLINK_GET_STRICT_CHK, 1);
            var address = new sockaddr_nl { nl_family = Libc.AF_NETLINK };
            if (Libc.bind(fd, &address, (uint)sizeof(sockaddr_nl)) != 0) throw Error("bind(AF_NETLINK)", Marshal.GetLastPInvokeError());
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return socket;
    }

    /// <summary>Raises the receive buffer for big batches and dumps; best effort, since the default works
    /// too (only slower, in smaller batches).</summary>
    /// <returns>true when the buffer now holds <paramref name="bytes"/> (SO_RCVBUFFORCE, which root may
    /// use beyond net.core.rmem_max).</returns>
    public bool GrowReceiveBuffer(int bytes) => Option(Libc.SOL_SOCKET, Libc.SO_RCVBUFFORCE, bytes);

    bool Option(int level, int name, int value) => Libc.setsockopt(_fd, level, name, &value, sizeof(int)) == 0;

    public uint NextSequence() => ++_seq;

    /// <summary>Reserves <paramref name="count"/> consecutive sequence numbers; returns the first.</summary>
    public uint ReserveSequences(int count)
    {
        var first = _seq + 1;
        _seq += (uint)count;
        return first;
    }

    public void Send(ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            while (true)
            {
                var n = Libc.send(_fd, p, (nuint)data.Length, 0);
                if (n >= 0) return;
                var errno = Marshal.GetLastPInvokeError();
                if (errno == TunnelRouter.Errno.EINTR) continue;
                throw Error("send(netlink)", errno);
            }
        }
    }

    ReadOnlySpan<byte> Receive()
    {
        fixed (byte* p = _receive)
        {
            while (true)
            {
                var n = Libc.recv(_fd, p, (nuint)_receive.Length, Libc.MSG_TRUNC);
                if (n > _receive.Length) throw new NetlinkException("recv(netlink): a message larger than the receive buffer was cut short") { Errno = TunnelRouter.Errno.ENOBUFS };
                if (n >= 0) return _receive.AsSpan(0, (int)n);
                var errno = Marshal.GetLastPInvokeError();
                if (errno == TunnelRouter.Errno.EINTR) continue;
                throw Error("recv(netlink)", errno);
            }
        }
    }

    /// <summary>
    /// Sends the requests in <paramref name="requests"/> (sequence numbers <paramref name="firstSeq"/> on, each
    /// with NLM_F_ACK) in one send and reads one ack per request. The kernel works through every request
    /// even after one fails, so every outcome is reported: <paramref name="errnos"/>[i] is 0 or the errno of
    /// request i (the request with sequence number firstSeq + i). Returns the kernel's text for the first
    /// failure, if it gave one.
    /// </summary>
    public string? Exchange(NetlinkWriter requests, uint firstSeq, Span<int> errnos)
    {
        if (requests.Messages == 0) return null;
        Send(requests.Span);
        var count = errnos.Length;
        var pending = requests.Messages;
        string? firstMessage = null;
        var firstFailed = int.MaxValue;
        while (pending > 0)
        {
            var data = Receive();
            while (NetlinkReader.NextMessage(ref data, out var header, out var payload))
            {
                if (header.nlmsg_type != Nl.NLMSG_ERROR) continue;
                var index = unchecked((int)(header.nlmsg_seq - firstSeq));
                if (index < 0 || index >= count) continue; // a late answer to something earlier
                var ack = NetlinkReader.Read<nlmsgerr>(payload);
                errnos[index] = -ack.error;
                pending--;
                if (ack.error != 0 && index < firstFailed)
                {
                    firstFailed = index;
                    firstMessage = ExtendedAckMessage(header, payload);
                }
            }
        }
        return firstMessage;
    }

    /// <summary>The NLMSGERR_ATTR_MSG of an ack (NETLINK_EXT_ACK), when the kernel gave one.</summary>
    static string? ExtendedAckMessage(in nlmsghdr header, ReadOnlySpan<byte> payload)
    {
        if ((header.nlmsg_flags & Nl.NLM_F_ACK_TLVS) == 0) return null;
        var errSize = Marshal.SizeOf<nlmsgerr>();
        // Without NLM_F_CAPPED the request's payload is echoed after the header and the TLVs follow it.
        var echoed = (header.nlmsg_flags & Nl.NLM_F_CAPPED) != 0 ? 0 : (int)NetlinkReader.Read<nlmsgerr>(payload).msg.nlmsg_len - NetlinkReader.HeaderSize;
        var start = Nl.Align(errSize + Math.Max(0, echoed));
        if (start > payload.Length) return null;
        var attrs = payload[start..];
        while (NetlinkReader.NextAttribute(ref attrs, out var type, out var value))
            if (type == Nl.NLMSGERR_ATTR_MSG) return NetlinkReader.String(value);
        return null;
    }

    public delegate void MessageHandler(in nlmsghdr header, ReadOnlySpan<byte> payload);

    /// <summary>Sends one dump request and hands every answer to <paramref name="handler"/>. Returns false
    /// when the kernel flagged the dump as interrupted (NLM_F_DUMP_INTR: the table changed while it was
    /// read), in which case the caller discards what it got and dumps again.</summary>
    public bool Dump(NetlinkWriter request, uint seq, MessageHandler handler)
    {
        Send(request.Span);
        var consistent = true;
        while (true)
        {
            var data = Receive();
            while (NetlinkReader.NextMessage(ref data, out var header, out var payload))
            {
                if (header.nlmsg_seq != seq) continue;
                if ((header.nlmsg_flags & Nl.NLM_F_DUMP_INTR) != 0) consistent = false;
                switch (header.nlmsg_type)
                {
                    case Nl.NLMSG_DONE:
                        var done = payload.Length >= 4 ? -System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(payload) : 0;
                        if (done != 0) throw Error("netlink dump", done);
                        return consistent;
                    case Nl.NLMSG_ERROR:
                        var ack = NetlinkReader.Read<nlmsgerr>(payload);
                        if (ack.error == 0) return consistent;
                        throw Error("netlink dump", -ack.error, ExtendedAckMessage(header, payload));
                    case Nl.NLMSG_NOOP:
                        continue;
                    default:
                        handler(header, payload);
                        break;
                }
            }
        }
    }

    /// <summary>Sends one request that is answered by one message (RTM_GETROUTE for an address) and hands
    /// that answer to <paramref name="handler"/>. Returns 0, or the errno the kernel answered with.</summary>
    public int Request(NetlinkWriter request, uint seq, MessageHandler handler)
    {
        Send(request.Span);
        while (true)
        {
            var data = Receive();
            while (NetlinkReader.NextMessage(ref data, out var header, out var payload))
            {
                if (header.nlmsg_seq != seq) continue;
                if (header.nlmsg_type == Nl.NLMSG_ERROR) return -NetlinkReader.Read<nlmsgerr>(payload).error;
                handler(header, payload);
                return 0;
            }
        }
    }

    public static NetlinkException Error(string what, int errno, string? kernelText = null) =>
        new($"{what}: {NetlinkException.Describe(errno)}{(string.IsNullOrEmpty(kernelText) ? "" : $" ({kernelText})")}") { Errno = errno };

    public void Dispose()
    {
        if (_fd <= 0) return;
        Libc.close(_fd);
        _fd = 0;
    }
}
