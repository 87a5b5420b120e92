using System.Runtime.CompilerServices;
using System.Buffers.Binary;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;

namespace TunnelRouter.Kernel.Netlink;

/// <summary>
/// Builds netlink requests back to back in one buffer, so a whole batch goes to the kernel in one send:
/// each message is a <see cref="nlmsghdr"/>, a family header (rtmsg, fib_rule_hdr ...) and rtattrs, every
/// part padded to 4 bytes (NLMSG_ALIGN / RTA_ALIGN).
/// </summary>
internal sealed class NetlinkWriter
{
    byte[] _buffer = new byte[4096];
    int _length;
    int _messageStart = -1;

    public int Length => _length;
    public int Messages { get; private set; }
    public ReadOnlySpan<byte> Span => _buffer.AsSpan(0, _length);

    public void Reset()
    {
        _length = 0;
        _messageStart = -1;
        Messages = 0;
    }

    public void BeginMessage(ushort type, ushort flags, uint seq)
    {
        _messageStart = _length;
        Put(new nlmsghdr { nlmsg_type = type, nlmsg_flags = flags, nlmsg_seq = seq });
    }

    public void EndMessage()
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer.AsSpan(_messageStart), (uint)(_length - _messageStart));
        _messageStart = -1;
        Messages++;
    }

    /// <summary>Clears NLM_F_ACK on every message but the last (the kernel still answers each failure); returns
    /// the last message's sequence number.</summary>
    public uint AckLastOnly()
    {
        var at = 0;
        uint seq = 0;
        while (at < _length)
        {
            var header = MemoryMarshal.Read<nlmsghdr>(_buffer.AsSpan(at));
            var next = at + Nl.Align((int)header.nlmsg_len);
            seq = header.nlmsg_seq;
            if (next < _length && (header.nlmsg_flags & Nl.NLM_F_ACK) != 0)
                BinaryPrimitives.WriteUInt16LittleEndian(_buffer.AsSpan(at + 6), (ushort)(header.nlmsg_flags & ~Nl.NLM_F_ACK));
            at = next;
        }
        return seq;
    }

    /// <summary>A fixed header (rtmsg, fib_rule_hdr, ifinfomsg ...), padded.</summary>
    public void Put<T>(in T value) where T : unmanaged
    {
        var size = Unsafe.SizeOf<T>();
        var span = Reserve(Nl.Align(size));
        MemoryMarshal.Write(span, in value);
    }

    public void Attr(ushort type, ReadOnlySpan<byte> data)
    {
        var len = 4 + data.Length;
        var span = Reserve(Nl.Align(len));
        MemoryMarshal.Write(span, new rtattr { rta_len = (ushort)len, rta_type = type });
        data.CopyTo(span[4..]);
    }

    public void AttrU8(ushort type, byte value) => Attr(type, [value]);

    public void AttrU32(ushort type, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value); // host order: x86-64 and arm64 are little-endian
        Attr(type, b);
    }

    public void AttrStruct<T>(ushort type, in T value) where T : unmanaged =>
        Attr(type, MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in value)));

    /// <summary>A NUL-terminated string (interface names, kinds).</summary>
    public void AttrString(ushort type, string value)
    {
        Span<byte> b = stackalloc byte[Encoding.UTF8.GetMaxByteCount(value.Length) + 1];
        var n = Encoding.UTF8.GetBytes(value, b);
        b[n] = 0;
        Attr(type, b[..(n + 1)]);
    }

    /// <summary>Network byte order, 4 or 16 bytes.</summary>
    public void AttrAddress(ushort type, IPAddress address)
    {
        Span<byte> b = stackalloc byte[16];
        address.TryWriteBytes(b, out var n);
        Attr(type, b[..n]);
    }

    /// <summary>Opens a nested attribute (RTA_METRICS, IFLA_LINKINFO); returns what <see cref="EndNest"/> takes.</summary>
    public int BeginNest(ushort type)
    {
        var start = _length;
        var span = Reserve(4);
        MemoryMarshal.Write(span, new rtattr { rta_type = type });
        return start;
    }

    public void EndNest(int start) =>
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer.AsSpan(start), (ushort)(_length - start));

    Span<byte> Reserve(int size)
    {
        if (_length + size > _buffer.Length) Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + size));
        var span = _buffer.AsSpan(_length, size);
        span.Clear();
        _length += size;
        return span;
    }
}
