using System.Runtime.CompilerServices;
using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace TunnelRouter.Kernel.Netlink;

/// <summary>
/// Requests and answers over rtnetlink: batches matched to their acks by sequence number, and dumps. The
/// transport underneath is the socket; this layer decides what of what arrives is believed. Only the
/// kernel's datagrams (sender port id 0) are read, sequence numbers start at a random value, every request
/// is acked at most once, and a message shorter than its header says is an error, not a crash.
/// </summary>
internal sealed class NetlinkSocket : IDisposable
{
    // Big enough for the largest dump datagram the kernel builds (it caps them at 32 KiB, or a page more).
    const int ReceiveBufferSize = 64 * 1024;
    const int DumpAttempts = 5;

    readonly INetlinkTransport _transport;
    readonly byte[] _receive = new byte[ReceiveBufferSize];
    uint _seq;

    /// <param name="firstSequence">the first sequence number less one; random unless a spec fixes it, so a
    /// process on the host cannot guess which answers to forge. From the runtime's OS-seeded generator, not
    /// RandomNumberGenerator: that one loads OpenSSL (libssl, libcrypto, openssl.cnf: ~3 ms, half the hook's time).</param>
    public NetlinkSocket(INetlinkTransport transport, uint? firstSequence = null)
    {
        _transport = transport;
        _seq = firstSequence ?? (uint)Random.Shared.NextInt64(1L << 32);
    }

    public static NetlinkSocket Open(int protocol = Nl.NETLINK_ROUTE) => new(LibcNetlinkTransport.Open(protocol));

    /// <summary>The sequence number the next request gets.</summary>
    public uint PeekSequence => _seq + 1;

    public bool GrowReceiveBuffer(int bytes) => _transport.GrowReceiveBuffer(bytes);

    public uint NextSequence() => ++_seq;

    /// <summary>Reserves <paramref name="count"/> consecutive sequence numbers; returns the first.</summary>
    public uint ReserveSequences(int count)
    {
        var first = _seq + 1;
        _seq += (uint)count;
        return first;
    }

    /// <summary>The next datagram from the kernel. Anything another process sent (a unicast to our port id
    /// from user space) is dropped unread: only port id 0 is the kernel.</summary>
    ReadOnlySpan<byte> Receive()
    {
        while (true)
        {
            var n = _transport.Receive(_receive, out var sender);
            if (n > _receive.Length)
                throw new NetlinkException("recvmsg(netlink): a message larger than the receive buffer was cut short") { Errno = Errno.ENOBUFS };
            if (sender != 0) continue;
            return _receive.AsSpan(0, n);
        }
    }

    /// <summary>
    /// Sends the requests in <paramref name="requests"/> (sequence numbers <paramref name="firstSeq"/> on) in one
    /// send. Only the last of them keeps NLM_F_ACK: the kernel answers every failed request with an error
    /// whether it asked for an ack or not (netlink_rcv_skb), works through every request even after one fails,
    /// and answers them in order, so once the last one's answer is read every request before it without an
    /// error took effect. Thousands of acks saying "done" are neither built by the kernel nor read here.
    /// <paramref name="errnos"/>[i] is then the errno of request i, or is left as the caller set it (0 for a
    /// request written, the refusal of one not written). A second answer for the same request is ignored (the
    /// first one counts). Returns the kernel's text for the first failure, if it gave one.
    /// </summary>
    public string? Exchange(NetlinkWriter requests, uint firstSeq, Span<int> errnos)
    {
        if (requests.Messages == 0) return null;
        var lastSeq = requests.AckLastOnly();
        _transport.Send(requests.Span);
        var count = errnos.Length;
        var last = unchecked((int)(lastSeq - firstSeq));
        var answered = new bool[count];
        string? firstMessage = null;
        var firstFailed = int.MaxValue;
        while (last >= 0 && last < count && !answered[last])
        {
            var data = Receive();
            while (NetlinkReader.NextMessage(ref data, out var header, out var payload))
            {
                if (header.nlmsg_type != Nl.NLMSG_ERROR) continue;
                var index = unchecked((int)(header.nlmsg_seq - firstSeq));
                if (index < 0 || index >= count || answered[index]) continue; // a late answer to something earlier, or a repeat
                var ack = NetlinkReader.Read<nlmsgerr>(payload, "ack");
                answered[index] = true;
                if (ack.error == 0) continue;
                errnos[index] = -ack.error;
                if (index < firstFailed)
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
        var errSize = Unsafe.SizeOf<nlmsgerr>();
        // Without NLM_F_CAPPED the request's payload is echoed after the header and the TLVs follow it.
        var echoed = (header.nlmsg_flags & Nl.NLM_F_CAPPED) != 0 ? 0 : (int)NetlinkReader.Read<nlmsgerr>(payload, "ack").msg.nlmsg_len - NetlinkReader.HeaderSize;
        var start = Nl.Align(errSize + Math.Max(0, echoed));
        if (start > payload.Length) return null;
        var attrs = payload[start..];
        while (NetlinkReader.NextAttribute(ref attrs, out var type, out var value))
            if (type == Nl.NLMSGERR_ATTR_MSG) return NetlinkReader.String(value);
        return null;
    }

    public delegate void MessageHandler(in nlmsghdr header, ReadOnlySpan<byte> payload);

    /// <summary>Writes one dump request with the sequence number given.</summary>
    public delegate void RequestWriter(NetlinkWriter writer, uint seq);

    /// <summary>
    /// A consistent dump: sends the request <paramref name="request"/> writes and hands every answer to
    /// <paramref name="handler"/>. When the kernel flags the dump as interrupted (NLM_F_DUMP_INTR: the
    /// objects changed while they were read), <paramref name="restart"/> discards what the attempt collected
    /// and the dump runs again, up to 5 times. Equivalent to what iproute2 does for "show".
    /// </summary>
    /// <param name="what">what is read, for the error when it never settles: "the routing table".</param>
    public void Dump(NetlinkWriter writer, string what, RequestWriter request, MessageHandler handler, Action restart)
    {
        for (var attempt = 1; ; attempt++)
        {
            writer.Reset();
            var seq = NextSequence();
            request(writer, seq);
            try
            {
                if (DumpOnce(writer, seq, handler)) return;
            }
            catch
            {
                restart();
                throw;
            }
            restart();
            if (attempt == DumpAttempts)
                throw new NetlinkException($"{what} kept changing while it was read ({DumpAttempts} attempts)") { Errno = Errno.EAGAIN };
        }
    }

    /// <summary>One dump; false when the kernel flagged it as interrupted.</summary>
    bool DumpOnce(NetlinkWriter request, uint seq, MessageHandler handler)
    {
        _transport.Send(request.Span);
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
                        var done = payload.Length >= 4 ? -BinaryPrimitives.ReadInt32LittleEndian(payload) : 0;
                        if (done != 0) throw NetlinkException.Of("netlink dump", done);
                        return consistent;
                    case Nl.NLMSG_ERROR:
                        var ack = NetlinkReader.Read<nlmsgerr>(payload, "ack");
                        if (ack.error == 0) return consistent;
                        throw NetlinkException.Of("netlink dump", -ack.error, ExtendedAckMessage(header, payload));
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
        _transport.Send(request.Span);
        while (true)
        {
            var data = Receive();
            while (NetlinkReader.NextMessage(ref data, out var header, out var payload))
            {
                if (header.nlmsg_seq != seq) continue;
                if (header.nlmsg_type == Nl.NLMSG_ERROR) return -NetlinkReader.Read<nlmsgerr>(payload, "ack").error;
                handler(header, payload);
                return 0;
            }
        }
    }

    public void Dispose() => _transport.Dispose();
}
