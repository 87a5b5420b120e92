using System.Net;
using System.Net.Sockets;

namespace TunnelRouter.Core;

/// <summary>FR_ACT_* numbers of the rule's action.</summary>
public enum RuleAction : byte { Lookup = 1, Blackhole = 6, Unreachable = 7, Prohibit = 8 }

public readonly record struct PortRange(ushort Start, ushort End)
{
    public override string ToString() => Start == End ? Start.ToString() : $"{Start}-{End}";
}

public readonly record struct UidRange(uint Start, uint End)
{
    public override string ToString() => $"{Start}-{End}";
}

/// <summary>
/// One policy routing rule. Every selector the kernel offers is a field; a null field matches
/// everything. Normalised on construction: networks masked, a mark without a mask gets the kernel's
/// full mask, and a non-lookup action carries table 0 as the kernel reports it.
/// </summary>
public sealed record Rule
{
    public Rule(AddressFamily family, uint priority, RuleAction action, uint table, byte protocol,
        IPNetwork? from = null, IPNetwork? to = null, bool not = false, uint? fwMark = null, uint? fwMask = null,
        string? iif = null, string? oif = null, PortRange? sourcePort = null, PortRange? destinationPort = null,
        byte? ipProto = null, UidRange? uidRange = null, byte tos = 0, int? suppressPrefixLength = null)
    {
        Family = family;
        Priority = priority;
        Action = action;
        Table = action == RuleAction.Lookup ? table : 0;
        Protocol = protocol;
        From = from is { PrefixLength: > 0 } f ? Net.Masked(f.BaseAddress, f.PrefixLength) : null;
        To = to is { PrefixLength: > 0 } t ? Net.Masked(t.BaseAddress, t.PrefixLength) : null;
        Not = not;
        FwMark = fwMark ?? (fwMask is null ? null : 0);
        FwMask = FwMark is null ? null : fwMask ?? uint.MaxValue;
        Iif = iif;
        Oif = oif;
        SourcePort = sourcePort;
        DestinationPort = destinationPort;
        IpProto = ipProto;
        UidRange = uidRange;
        Tos = tos;
        SuppressPrefixLength = suppressPrefixLength is -1 ? null : suppressPrefixLength;
    }

    public AddressFamily Family { get; init; }
    public uint Priority { get; init; }
    public RuleAction Action { get; init; }
    public uint Table { get; init; }
    public byte Protocol { get; init; }
    public IPNetwork? From { get; init; }
    public IPNetwork? To { get; init; }
    public bool Not { get; init; }
    public uint? FwMark { get; init; }
    public uint? FwMask { get; init; }
    public string? Iif { get; init; }
    public string? Oif { get; init; }
    public PortRange? SourcePort { get; init; }
    public PortRange? DestinationPort { get; init; }
    public byte? IpProto { get; init; }
    public UidRange? UidRange { get; init; }
    public byte Tos { get; init; }
    public int? SuppressPrefixLength { get; init; }

    public override string ToString() => IpCommand.RuleArgs(this, TableNames.Numeric, ProtocolNames.Numeric);

    /// <summary>The same selectors and action, whoever owns it and at whatever priority: a hand-made twin.</summary>
    public bool SameSelectorsAndAction(Rule other) => this with { Priority = other.Priority, Protocol = other.Protocol } == other;

    /// <summary>The same rule in all but its owner: same selectors, priority and action (what --adopt takes over).</summary>
    public bool SameButOwner(Rule other) => this with { Protocol = other.Protocol } == other;
}
