using System.Net;
using System.Net.Sockets;
using System.Text;

namespace TunnelRouter.Core;

/// <summary>One member of a nexthop group: the member's id and its weight (1-256, the kernel's range).</summary>
public readonly record struct NexthopMember(uint Id, ushort Weight)
{
    public override string ToString() => Weight == 1 ? $"{Id}" : $"{Id},{Weight}";
}

/// <summary>
/// A kernel nexthop object (Linux 5.3, RTM_NEWNEXTHOP, as FRR uses them): a gateway on a device, or a group of such
/// nexthops with weights. A route that names one by <see cref="Route.Nexthop"/> (RTA_NH_ID) follows it: changing the
/// group changes every such route at once. Like routes, TunnelRouter's carry its protocol and only those are ever
/// replaced or deleted. Equivalent to: <c>ip nexthop add id 5 via 198.51.100.1 dev eth1 proto P</c> and
/// <c>ip nexthop add id 7 group 5,3/6 proto P</c>.
/// </summary>
public sealed record Nexthop(uint Id, byte Protocol, string? Device = null, IPAddress? Gateway = null, bool OnLink = false,
    IReadOnlyList<NexthopMember>? Group = null)
{
    public bool IsGroup => Group is { Count: > 0 };

    /// <summary>A gateway's family; Unspecified for a group (the kernel refuses a group with a family).</summary>
    public AddressFamily Family => Gateway?.AddressFamily ?? AddressFamily.Unspecified;

    public bool Equals(Nexthop? other) =>
        other is not null && Id == other.Id && Protocol == other.Protocol && Device == other.Device && Equals(Gateway, other.Gateway)
        && OnLink == other.OnLink && (Group ?? []).SequenceEqual(other.Group ?? []);

    public override int GetHashCode() => HashCode.Combine(Id, Protocol, Device, Gateway, Group?.Count ?? 0);

    public override string ToString() => IpCommand.NexthopArgs(this, ProtocolNames.Numeric);

    /// <summary>The id of TunnelRouter's nexthop number <paramref name="n"/> (below 2^20): the owner's protocol in the bits
    /// above, so owners with different protocols never pick the same id (zebra numbers its own from 1 up, and from 2^28
    /// for its daemons').</summary>
    public static uint IdOf(byte protocol, uint n) => ((uint)protocol << 20) | (n & 0xFFFFF);
}

public sealed record AddNexthop(Nexthop Nexthop) : IpChange
{
    public override Change Inverse() => new DeleteNexthop(Nexthop);
    protected override string Args(TableNames t, ProtocolNames p) => "nexthop add " + IpCommand.NexthopArgs(Nexthop, p);
}

/// <summary>Deleting a nexthop deletes the routes that use it and takes it out of its groups (the kernel's doing): the
/// planner deletes those routes first, so a rollback puts them back after it.</summary>
public sealed record DeleteNexthop(Nexthop Nexthop) : IpChange
{
    public override Change Inverse() => new AddNexthop(Nexthop);
    protected override string Args(TableNames t, ProtocolNames p) => $"nexthop del id {Nexthop.Id}";
}

/// <summary>Same id, other gateway or members: the kernel swaps it under every route that uses it, in one change.</summary>
public sealed record ReplaceNexthop(Nexthop Old, Nexthop New) : IpChange
{
    public override Change Inverse() => new ReplaceNexthop(New, Old);
    protected override string Args(TableNames t, ProtocolNames p) => "nexthop replace " + IpCommand.NexthopArgs(New, p);
}
