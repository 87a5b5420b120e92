using System.Net;
using System.Net.Sockets;

namespace TunnelRouter.Core;

/// <summary>Strict address arithmetic. <see cref="IPAddress.TryParse(string, out IPAddress)"/> accepts
/// "1", "1.2.3" and "0x1.2.3.4"; ipcalc and the kernel do not, and neither do we.</summary>
public static class Net
{
    public static bool IsV6(this AddressFamily family) => family == AddressFamily.InterNetworkV6;
    public static int MaxPrefix(AddressFamily family) => family.IsV6() ? 128 : 32;
    public static string FamilyFlag(AddressFamily family) => family.IsV6() ? "-6" : "-4";

    public static bool TryParseAddress(string? text, out IPAddress address)
    {
        address = IPAddress.None;
        return text is not null && TryParseAddress(text.AsSpan(), out address);
    }

    /// <summary>The same, on a slice of a line: a prefix file's million lines are parsed without a string each.</summary>
    public static bool TryParseAddress(ReadOnlySpan<char> text, out IPAddress address)
    {
        address = IPAddress.None;
        if (text.IsEmpty || text.Length > 45) return false;
        if (text.Contains(':')) return TryParseV6(text, out address);
        if (!TryParseV4(text, out var v4)) return false;
        Span<byte> bytes = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes, v4);
        address = new IPAddress(bytes);
        return true;
    }

    /// <summary>The same rules, the address as a number (an IPv4 address in the low 32 bits) and no object made
    /// for an IPv4 address: what a prefix file's lines are read with.</summary>
    public static bool TryParseAddressBits(ReadOnlySpan<char> text, out UInt128 bits, out bool v6)
    {
        bits = 0;
        v6 = false;
        if (text.IsEmpty || text.Length > 45) return false;
        if (text.Contains(':'))
        {
            Span<byte> bytes = stackalloc byte[16];
            if (!TryParseV6(text, out var address) || !address.TryWriteBytes(bytes, out _)) return false;
            bits = System.Buffers.Binary.BinaryPrimitives.ReadUInt128BigEndian(bytes);
            v6 = true;
            return true;
        }
        if (!TryParseV4(text, out var v4)) return false;
        bits = v4;
        return true;
    }

    static bool TryParseV6(ReadOnlySpan<char> text, out IPAddress address)
    {
        address = IPAddress.None;
        // No zone ids ("%eth0"), no brackets: a route or rule address has neither.
        foreach (var c in text)
            if (!(char.IsAsciiHexDigit(c) || c == ':' || c == '.')) return false;
        return IPAddress.TryParse(text, out address!) && address.AddressFamily == AddressFamily.InterNetworkV6;
    }

    static bool TryParseV4(ReadOnlySpan<char> text, out uint address)
    {
        address = 0;
        var part = 0;
        var value = -1;
        foreach (var c in text)
        {
            if (c == '.')
            {
                if (value < 0 || part == 3) return false;
                address = address << 8 | (uint)value;
                part++;
                value = -1;
            }
            else if (char.IsAsciiDigit(c))
            {
                // Leading zeros read as octal by inet_aton ("010" = 8): refuse rather than guess.
                if (value == 0) return false;
                value = (value < 0 ? 0 : value * 10) + (c - '0');
                if (value > 255) return false;
            }
            else return false;
        }
        if (value < 0 || part != 3) return false;
        address = address << 8 | (uint)value;
        return true;
    }

    public static IPAddress ParseAddress(string field, string? text, AddressFamily? family = null)
    {
        if (string.IsNullOrEmpty(text)) throw new InputException(field, "is empty; expected an IP address");
        if (!TryParseAddress(text, out var address))
            throw new InputException(field, $"'{Printable(text)}' is not a valid {FamilyName(family)}address");
        if (family is { } f && address.AddressFamily != f)
            throw new InputException(field, $"'{text}' is {FamilyName(address.AddressFamily)}but {FamilyName(f)}was expected");
        return address;
    }

    /// <summary>Prefix length of a dotted netmask; a non-contiguous mask (255.0.255.0) is an error.</summary>
    public static int NetmaskToPrefix(string field, string? text)
    {
        var mask = ParseAddress(field, text, AddressFamily.InterNetwork);
        var bits = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(mask.GetAddressBytes());
        var prefix = System.Numerics.BitOperations.LeadingZeroCount(~bits);
        if (prefix < 32 && (bits << prefix) != 0)
            throw new InputException(field, $"'{text}' is not a contiguous netmask");
        return prefix;
    }

    public static int ParsePrefixLength(string field, string? text, AddressFamily family)
    {
        if (string.IsNullOrEmpty(text)) throw new InputException(field, "is empty; expected a prefix length");
        var max = MaxPrefix(family);
        if (text.Length > 3 || !text.All(char.IsAsciiDigit) || !int.TryParse(text, out var n) || n > max)
            throw new InputException(field, $"'{Printable(text)}' is not a prefix length from 0 to {max}");
        return n;
    }

    /// <summary>The network of <paramref name="address"/> with host bits cleared (what ipcalc -n prints). An address
    /// already masked is kept as it is: every route read or parsed passes here, and most are.</summary>
    public static IPNetwork Masked(IPAddress address, int prefix)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out var length);
        bytes = bytes[..length];
        // A network has no zone: a scoped IPv6 address is copied without it.
        var changed = address.AddressFamily == AddressFamily.InterNetworkV6 && address.ScopeId != 0;
        for (var i = prefix >> 3; i < bytes.Length; i++)
        {
            var keep = Math.Clamp(prefix - i * 8, 0, 8);
            var masked = (byte)(bytes[i] & (0xFF << (8 - keep)));
            if (masked == bytes[i]) continue;
            bytes[i] = masked;
            changed = true;
        }
        return new IPNetwork(changed ? new IPAddress(bytes) : address, prefix);
    }

    public static IPNetwork Host(IPAddress address) => new(address, MaxPrefix(address.AddressFamily));

    /// <summary>"10.0.0.0/8", "10.1.2.3" (host), "default"/"all"/"any" (0/0 of <paramref name="family"/>).</summary>
    public static IPNetwork ParsePrefix(string field, string? text, AddressFamily? family = null, bool strictHostBits = false)
    {
        if (string.IsNullOrEmpty(text)) throw new InputException(field, "is empty; expected an address or prefix");
        if (text is "default" or "all" or "any")
        {
            var f = family ?? AddressFamily.InterNetwork;
            return new IPNetwork(f.IsV6() ? IPAddress.IPv6Any : IPAddress.Any, 0);
        }
        var slash = text.IndexOf('/');
        var address = ParseAddress(field, slash < 0 ? text : text[..slash], family);
        var prefix = slash < 0 ? MaxPrefix(address.AddressFamily) : ParsePrefixLength(field, text[(slash + 1)..], address.AddressFamily);
        var net = Masked(address, prefix);
        if (strictHostBits && !net.BaseAddress.Equals(address))
            throw new InputException(field, $"'{text}' has host bits set; did you mean {Format(net)}?");
        return net;
    }

    public static string Format(IPNetwork net) => $"{net.BaseAddress}/{net.PrefixLength}";

    /// <summary>As iproute2 prints a destination: "default" for 0/0, the bare address for a host route.</summary>
    public static string FormatDestination(IPNetwork net) =>
        net.PrefixLength == 0 ? "default"
        : net.PrefixLength == MaxPrefix(net.BaseAddress.AddressFamily) ? net.BaseAddress.ToString()
        : Format(net);

    public static AddressFamily Family(this IPNetwork net) => net.BaseAddress.AddressFamily;

    static string FamilyName(AddressFamily? family) => family switch
    {
        AddressFamily.InterNetwork => "IPv4 ",
        AddressFamily.InterNetworkV6 => "IPv6 ",
        _ => "IP ",
    };

    /// <summary>Values echoed in an error stay on one line and printable, whatever was injected.</summary>
    public static string Printable(string text)
    {
        var clipped = text.Length > 64 ? text[..64] + "..." : text;
        return string.Concat(clipped.Select(c => c is >= ' ' and <= '~' ? c.ToString() : $"\\x{(int)c:x2}"));
    }
}
