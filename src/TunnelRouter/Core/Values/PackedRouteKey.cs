using System.Net;

namespace TunnelRouter.Core;

/// <summary>
/// <see cref="RouteKey"/> packed into 32 bytes with the address inline, for the tables of the planner and the
/// policy parser: hashing and comparing a million of these never leaves the table's own memory, whereas a
/// <see cref="RouteKey"/> reaches into an <see cref="IPAddress"/> object for both.
/// </summary>
internal readonly struct PackedRouteKey : IEquatable<PackedRouteKey>
{
    readonly UInt128 _address;
    readonly uint _table;
    readonly uint _metric;
    readonly int _lengthAndFamily;

    public PackedRouteKey(Route route) : this(route.Destination, route.Table, route.Metric) { }

    /// <summary><paramref name="destination"/> must be masked already (as every route's is).</summary>
    public PackedRouteKey(IPNetwork destination, uint table, uint metric)
    {
        Span<byte> bytes = stackalloc byte[16];
        destination.BaseAddress.TryWriteBytes(bytes, out var n);
        _address = n == 4 ? System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(bytes)
            : System.Buffers.Binary.BinaryPrimitives.ReadUInt128BigEndian(bytes);
        _table = table;
        _metric = metric;
        _lengthAndFamily = destination.PrefixLength | (n == 16 ? 0x100 : 0);
    }

    public bool IsV6 => (_lengthAndFamily & 0x100) != 0;
    /// <summary>From the address as a number (an IPv4 address in the low 32 bits); host bits are cleared.</summary>
    public PackedRouteKey(UInt128 address, bool v6, int length, uint table, uint metric)
    {
        _address = address & ~HostBits(v6, length) & (v6 ? UInt128.MaxValue : uint.MaxValue);
        _table = table;
        _metric = metric;
        _lengthAndFamily = length | (v6 ? 0x100 : 0);
    }

    /// <summary>The host part of an address of the family with a prefix of <paramref name="length"/> bits, as a mask.</summary>
    public static UInt128 HostBits(bool v6, int length)
    {
        var bits = v6 ? 128 : 32;
        return length >= bits ? UInt128.Zero : (length == 0 ? (v6 ? UInt128.MaxValue : uint.MaxValue) : ((UInt128)1 << (bits - length)) - 1);
    }

    public uint Table => _table;
    public uint Metric => _metric;

    public int PrefixLength => _lengthAndFamily & 0xFF;

    /// <summary>Writes the destination's address in network order; returns its length (4 or 16).</summary>
    public int WriteAddress(Span<byte> into)
    {
        if (IsV6)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt128BigEndian(into, _address);
            return 16;
        }
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(into, (uint)_address);
        return 4;
    }

    /// <summary>The destination, made anew (an <see cref="IPAddress"/> each time).</summary>
    public IPNetwork Destination
    {
        get
        {
            Span<byte> bytes = stackalloc byte[16];
            return new IPNetwork(new IPAddress(bytes[..WriteAddress(bytes)]), PrefixLength);
        }
    }

    public bool Equals(PackedRouteKey other) =>
        _address == other._address && _table == other._table && _metric == other._metric && _lengthAndFamily == other._lengthAndFamily;

    public override bool Equals(object? obj) => obj is PackedRouteKey other && Equals(other);

    /// <summary>An order of keys: IPv4 before IPv6, then by address, prefix length, table and metric (a sorted
    /// prefix file is in this order).</summary>
    public int CompareTo(in PackedRouteKey other)
    {
        var c = IsV6.CompareTo(other.IsV6);
        if (c == 0) c = _address.CompareTo(other._address);
        if (c == 0) c = PrefixLength.CompareTo(other.PrefixLength);
        if (c == 0) c = _table.CompareTo(other._table);
        return c != 0 ? c : _metric.CompareTo(other._metric);
    }

    public override int GetHashCode() =>
        HashCode.Combine((ulong)_address, (ulong)(_address >> 64), _table, _metric, _lengthAndFamily);
}
