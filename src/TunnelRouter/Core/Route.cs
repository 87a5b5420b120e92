using System.Net;
using System.Net.Sockets;
using System.Text;

namespace TunnelRouter.Core;

/// <summary>Route types as rtnetlink numbers them (RTN_*).</summary>
public enum RouteType : byte { Unicast = 1, Blackhole = 6, Unreachable = 7, Prohibit = 8, Throw = 9 }

/// <summary>
/// One kernel route, normalised so that the kernel's read-back compares equal to what was asked for:
/// the destination is masked, and an unset IPv6 metric is the kernel's 1024.
/// </summary>
public sealed record Route
{
    /// <summary>The metric the kernel gives an IPv6 route added without one (IP6_RT_PRIO_USER).</summary>
    public const uint DefaultV6Metric = 1024;

    public Route(IPNetwork destination, uint table, byte protocol, string? device = null, IPAddress? gateway = null,
        IPAddress? source = null, uint? metric = null, RouteType type = RouteType.Unicast, bool onLink = false, uint mtu = 0, uint nexthop = 0)
    {
        Destination = Net.Masked(destination.BaseAddress, destination.PrefixLength);
        Table = table;
        Protocol = protocol;
        Device = device;
        Gateway = gateway;
        Source = source;
        Metric = metric ?? (destination.Family().IsV6() ? DefaultV6Metric : 0);
        Type = type;
        OnLink = onLink;
        Mtu = mtu;
        Nexthop = nexthop;
    }

    public IPNetwork Destination { get; init; }
    public uint Table { get; init; }
    public byte Protocol { get; init; }
    public string? Device { get; init; }
    public IPAddress? Gateway { get; init; }
    public IPAddress? Source { get; init; }
    public uint Metric { get; init; }
    public RouteType Type { get; init; }
    public bool OnLink { get; init; }
    public uint Mtu { get; init; }
    /// <summary>The kernel nexthop object (RTA_NH_ID) the route goes by, 0 for none: then it has no gateway or device of
    /// its own, and a failover rewrites the nexthop group, not the route (<see cref="Core.Nexthop"/>).</summary>
    public uint Nexthop { get; init; }

    public AddressFamily Family => Destination.Family();

    /// <summary>What the kernel keys a route on within a table (tos is always 0 here): two routes with
    /// one key cannot both exist, so a changed route is replaced rather than added beside the old one.</summary>
    public RouteKey Key => new(Family, Table, Destination, Metric);

    public override string ToString() => IpCommand.RouteArgs(this, TableNames.Numeric, ProtocolNames.Numeric);

    /// <summary>The same route in all but its owner: table, destination, metric, type, gateway and device (a
    /// route written without dev takes the kernel's device), and every other attribute (what --adopt takes over).</summary>
    public bool SameButOwner(Route have) => this with { Protocol = have.Protocol, Device = Device ?? have.Device } == have;

    /// <summary>The same path in the same table at another metric: a hand-made twin that stays beside the policy's.</summary>
    public bool SamePathOtherMetric(Route have) =>
        Metric != have.Metric && this with { Protocol = have.Protocol, Device = Device ?? have.Device, Metric = have.Metric } == have;
}

public readonly record struct RouteKey(AddressFamily Family, uint Table, IPNetwork Destination, uint Metric);

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
