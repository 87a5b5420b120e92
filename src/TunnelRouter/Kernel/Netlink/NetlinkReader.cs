using System.Buffers.Binary;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;

namespace TunnelRouter.Interop;

/// <summary>Reads what the kernel sends: messages in a datagram, attributes in a message.</summary>
internal static class NetlinkReader
{
    public static readonly int HeaderSize = Marshal.SizeOf<nlmsghdr>();

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

    public static T Read<T>(ReadOnlySpan<byte> payload) where T : unmanaged =>
        payload.Length >= Marshal.SizeOf<T>() ? MemoryMarshal.Read<T>(payload) : default;

    /// <summary>The attributes after a fixed header of <paramref name="headerSize"/> bytes.</summary>
    public static ReadOnlySpan<byte> AttributesAfter(ReadOnlySpan<byte> payload, int headerSize) =>
        payload.Length >= Nl.Align(headerSize) ? payload[Nl.Align(headerSize)..] : default;

    public static bool NextAttribute(ref ReadOnlySpan<byte> attrs, out ushort type, out ReadOnlySpan<byte> value)
    {
        type = 0;
        value = default;
        if (attrs.Length < 4) return false;
        var len = BinaryPrimitives.ReadUInt16LittleEndian(attrs);
        if (len < 4 || len > attrs.Length) return false;
        // NLA_F_NESTED and NLA_F_NET_BYTEORDER ride in the top bits of the type.
        type = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(attrs[2..]) & 0x3FFF);
        value = attrs[4..len];
        attrs = attrs[Math.Min(Nl.Align(len), attrs.Length)..];
        return true;
    }

    public static uint U32(ReadOnlySpan<byte> value) => value.Length >= 4 ? BinaryPrimitives.ReadUInt32LittleEndian(value) : 0;

    public static IPAddress Address(ReadOnlySpan<byte> value) => new(value.Length >= 16 ? value[..16] : value[..Math.Min(4, value.Length)]);

    public static string String(ReadOnlySpan<byte> value)
    {
        var nul = value.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul < 0 ? value : value[..nul]);
    }
}
