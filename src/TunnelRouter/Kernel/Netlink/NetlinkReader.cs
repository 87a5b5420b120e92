using System.Runtime.CompilerServices;
using System.Buffers.Binary;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;

namespace TunnelRouter.Kernel.Netlink;

/// <summary>Reads what the kernel sends: messages in a datagram, attributes in a message. A fixed header or an
/// attribute shorter than its type needs is a <see cref="NetlinkException"/> (EBADMSG), never a value made up
/// from too few bytes or an ArgumentException from deep inside the runtime.</summary>
internal static class NetlinkReader
{
    public static readonly int HeaderSize = Unsafe.SizeOf<nlmsghdr>();

    /// <summary>The next message of <paramref name="data"/>: its header and payload; false at the end.</summary>
    public static bool NextMessage(ref ReadOnlySpan<byte> data, out nlmsghdr header, out ReadOnlySpan<byte> payload)
    {
        header = default;
        payload = default;
        if (data.Length < HeaderSize) return false;
        header = MemoryMarshal.Read<nlmsghdr>(data);
        var len = (int)header.nlmsg_len;
        if (len < HeaderSize || len > data.Length) return false;
        payload = data[HeaderSize..len];
        data = data[Math.Min(Nl.Align(len), data.Length)..];
        return true;
    }

    /// <summary>A fixed header (rtmsg, fib_rule_hdr ...) or a struct attribute; <paramref name="what"/> names it in the error.</summary>
    public static T Read<T>(ReadOnlySpan<byte> payload, string what) where T : unmanaged =>
        payload.Length >= Unsafe.SizeOf<T>() ? MemoryMarshal.Read<T>(payload)
        : throw NetlinkException.Malformed($"{what} is {payload.Length} bytes, expected {Unsafe.SizeOf<T>()}");

    /// <summary>The attributes after a fixed header of <paramref name="headerSize"/> bytes.</summary>
    public static ReadOnlySpan<byte> AttributesAfter(ReadOnlySpan<byte> payload, int headerSize) =>
        payload.Length >= Nl.Align(headerSize) ? payload[Nl.Align(headerSize)..] : default;

    public static bool NextAttribute(ref ReadOnlySpan<byte> attrs, out ushort type, out ReadOnlySpan<byte> value)
    {
        type = 0;
        value = default;
        if (attrs.Length < 4) return false;
        var len = BinaryPrimitives.ReadUInt16LittleEndian(attrs);
        if (len < 4 || len > attrs.Length)
            throw NetlinkException.Malformed($"an attribute claims {len} bytes where {attrs.Length} are left");
        // NLA_F_NESTED and NLA_F_NET_BYTEORDER ride in the top bits of the type.
        type = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(attrs[2..]) & 0x3FFF);
        value = attrs[4..len];
        attrs = attrs[Math.Min(Nl.Align(len), attrs.Length)..];
        return true;
    }

    public static uint U32(ReadOnlySpan<byte> value) => value.Length >= 4 ? BinaryPrimitives.ReadUInt32LittleEndian(value)
        : throw NetlinkException.Malformed($"a 32-bit attribute is {value.Length} bytes");

    public static byte U8(ReadOnlySpan<byte> value) => value.Length >= 1 ? value[0]
        : throw NetlinkException.Malformed("an 8-bit attribute is empty");

    public static ushort U16BigEndian(ReadOnlySpan<byte> value) => value.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(value)
        : throw NetlinkException.Malformed($"a 16-bit attribute is {value.Length} bytes");

    public static uint U32BigEndian(ReadOnlySpan<byte> value) => value.Length >= 4 ? BinaryPrimitives.ReadUInt32BigEndian(value)
        : throw NetlinkException.Malformed($"a 32-bit attribute is {value.Length} bytes");

    /// <summary>An IPv4 (4 bytes) or IPv6 (16 bytes) address, network byte order.</summary>
    public static IPAddress Address(ReadOnlySpan<byte> value) => new(AddressBytes(value));

    /// <summary>An address as a number (IPv4 in the low 32 bits), without an <see cref="IPAddress"/>.</summary>
    public static UInt128 AddressBits(ReadOnlySpan<byte> value) => AddressBytes(value).Length == 4
        ? System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(value)
        : System.Buffers.Binary.BinaryPrimitives.ReadUInt128BigEndian(value);

    static ReadOnlySpan<byte> AddressBytes(ReadOnlySpan<byte> value) => value.Length is 4 or 16 ? value
        : throw NetlinkException.Malformed($"an address attribute is {value.Length} bytes, expected 4 or 16");

    public static string String(ReadOnlySpan<byte> value)
    {
        var nul = value.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul < 0 ? value : value[..nul]);
    }
}
