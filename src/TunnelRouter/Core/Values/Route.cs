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
