using System.Buffers.Binary;
using TunnelRouter.Kernel.Netlink;

namespace TunnelRouter.Tests.Support;

/// <summary>A netlink "socket" that answers from a script: each datagram with the port id it claims to come
/// from (0 is the kernel). What was sent is kept for the spec to read.</summary>
sealed class ScriptedNetlinkTransport : INetlinkTransport
{
    readonly Queue<(uint Sender, byte[] Data)> _script = new();

    public List<byte[]> Sent { get; } = [];

    public ScriptedNetlinkTransport Then(uint sender, params byte[][] messages)
    {
        _script.Enqueue((sender, messages.SelectMany(m => m).ToArray()));
        return this;
    }

    public void Send(ReadOnlySpan<byte> data) => Sent.Add(data.ToArray());

    public int Receive(Span<byte> buffer, out uint senderPid)
    {
        if (!_script.TryDequeue(out var next)) throw new InvalidOperationException("the script has no more datagrams: the socket read too far");
        senderPid = next.Sender;
        next.Data.CopyTo(buffer);
        return next.Data.Length;
    }

    public bool GrowReceiveBuffer(int bytes) => true;

    public void Dispose() { }

    public int Unread => _script.Count;

    /// <summary>An NLMSG_ERROR ack (NETLINK_CAP_ACK: the request's header only) for <paramref name="seq"/>.</summary>
    public static byte[] Ack(uint seq, int errno = 0)
    {
        var m = new byte[16 + 20];
        BinaryPrimitives.WriteUInt32LittleEndian(m, (uint)m.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(m.AsSpan(4), Nl.NLMSG_ERROR);
        BinaryPrimitives.WriteUInt16LittleEndian(m.AsSpan(6), Nl.NLM_F_CAPPED);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(8), seq);
        BinaryPrimitives.WriteInt32LittleEndian(m.AsSpan(16), -errno);
        return m;
    }

    /// <summary>One message of a dump: header, payload, flags.</summary>
    public static byte[] Message(ushort type, uint seq, byte[] payload, ushort flags = Nl.NLM_F_MULTI)
    {
        var len = 16 + payload.Length;
        var m = new byte[Nl.Align(len)];
        BinaryPrimitives.WriteUInt32LittleEndian(m, (uint)len);
        BinaryPrimitives.WriteUInt16LittleEndian(m.AsSpan(4), type);
        BinaryPrimitives.WriteUInt16LittleEndian(m.AsSpan(6), flags);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(8), seq);
        payload.CopyTo(m.AsSpan(16));
        return m;
    }

    public static byte[] Done(uint seq) => Message(Nl.NLMSG_DONE, seq, new byte[4]);
}
