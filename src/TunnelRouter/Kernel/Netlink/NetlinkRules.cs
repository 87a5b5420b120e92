using System.Runtime.CompilerServices;
using System.Net;
using System.Net.Sockets;
using TunnelRouter.Core;
using TunnelRouter.Interop;

namespace TunnelRouter.Kernel.Netlink;

/// <summary>Policy routing rules as rtnetlink messages (fib_rule_hdr + FRA_* attributes), both ways.</summary>
internal static class NetlinkRules
{
    /// <summary>
    /// Equivalent to: ip rule add|del [not] from SRC to DST fwmark M/MASK iif I oif O ipproto P sport A-B
    /// dport C-D uidrange U-V tos T suppress_prefixlength N pref PRIO lookup TABLE|blackhole|... protocol PROTO.
    /// </summary>
    public static void Write(NetlinkWriter w, ushort type, ushort flags, uint seq, Rule r)
    {
        w.BeginMessage(type, (ushort)(Nl.NLM_F_REQUEST | Nl.NLM_F_ACK | flags), seq);
        var lookup = r.Action == RuleAction.Lookup;
        w.Put(new fib_rule_hdr
        {
            family = NetlinkRoutes.Family(r.Family),
            dst_len = (byte)(r.To?.PrefixLength ?? 0),
            src_len = (byte)(r.From?.PrefixLength ?? 0),
            tos = r.Tos,
            table = lookup && r.Table < 256 ? (byte)r.Table : Nl.RT_TABLE_UNSPEC,
            action = (byte)r.Action,
            flags = r.Not ? Nl.FIB_RULE_INVERT : 0,
        });
        w.AttrU32(Nl.FRA_PRIORITY, r.Priority);
        if (lookup) w.AttrU32(Nl.FRA_TABLE, r.Table);
        if (r.From is { } from) w.AttrAddress(Nl.FRA_SRC, from.BaseAddress);
        if (r.To is { } to) w.AttrAddress(Nl.FRA_DST, to.BaseAddress);
        if (r.FwMark is { } mark)
        {
            if (mark != 0) w.AttrU32(Nl.FRA_FWMARK, mark);
            // Always explicit: for "fwmark 0" the kernel would otherwise keep no mask, and no match at all.
            w.AttrU32(Nl.FRA_FWMASK, r.FwMask ?? uint.MaxValue);
        }
        if (r.Iif is not null) w.AttrString(Nl.FRA_IIFNAME, r.Iif);
        if (r.Oif is not null) w.AttrString(Nl.FRA_OIFNAME, r.Oif);
        if (r.IpProto is { } proto) w.AttrU8(Nl.FRA_IP_PROTO, proto);
        if (r.SourcePort is { } sp) w.AttrStruct(Nl.FRA_SPORT_RANGE, new fib_rule_port_range { start = sp.Start, end = sp.End });
        if (r.DestinationPort is { } dp) w.AttrStruct(Nl.FRA_DPORT_RANGE, new fib_rule_port_range { start = dp.Start, end = dp.End });
        if (r.UidRange is { } uid) w.AttrStruct(Nl.FRA_UID_RANGE, new fib_rule_uid_range { start = uid.Start, end = uid.End });
        if (r.SuppressPrefixLength is { } spl) w.AttrU32(Nl.FRA_SUPPRESS_PREFIXLEN, unchecked((uint)spl));
        w.AttrU8(Nl.FRA_PROTOCOL, r.Protocol);
        w.EndMessage();
    }

    /// <summary>Equivalent to: ip -4 rule show</summary>
    public static void WriteDump(NetlinkWriter w, uint seq, byte family)
    {
        w.BeginMessage(Nl.RTM_GETRULE, Nl.NLM_F_REQUEST | Nl.NLM_F_DUMP, seq);
        w.Put(new fib_rule_hdr { family = family });
        w.EndMessage();
    }

    public static Rule? Parse(ReadOnlySpan<byte> payload)
    {
        var h = NetlinkReader.Read<fib_rule_hdr>(payload, "fib_rule_hdr");
        if (h.family is not (Nl.AF_INET or Nl.AF_INET6)) return null;
        var family = h.family == Nl.AF_INET6 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork;

        uint priority = 0, table = h.table;
        byte protocol = 0;
        IPNetwork? from = null, to = null;
        uint? mark = null, mask = null;
        string? iif = null, oif = null;
        PortRange? sport = null, dport = null;
        byte? ipProto = null;
        UidRange? uid = null;
        int? suppress = null;
        var attrs = NetlinkReader.AttributesAfter(payload, Unsafe.SizeOf<fib_rule_hdr>());
        while (NetlinkReader.NextAttribute(ref attrs, out var t, out var value))
        {
            switch (t)
            {
                case Nl.FRA_PRIORITY: priority = NetlinkReader.U32(value); break;
                case Nl.FRA_TABLE: table = NetlinkReader.U32(value); break;
                case Nl.FRA_PROTOCOL: protocol = NetlinkReader.U8(value); break;
                case Nl.FRA_SRC: from = Net.Masked(NetlinkReader.Address(value), h.src_len); break;
                case Nl.FRA_DST: to = Net.Masked(NetlinkReader.Address(value), h.dst_len); break;
                case Nl.FRA_FWMARK: mark = NetlinkReader.U32(value); break;
                case Nl.FRA_FWMASK: mask = NetlinkReader.U32(value); break;
                case Nl.FRA_IIFNAME: iif = NetlinkReader.String(value); break;
                case Nl.FRA_OIFNAME: oif = NetlinkReader.String(value); break;
                case Nl.FRA_IP_PROTO: ipProto = NetlinkReader.U8(value); break;
                case Nl.FRA_SPORT_RANGE: sport = Ports(value); break;
                case Nl.FRA_DPORT_RANGE: dport = Ports(value); break;
                case Nl.FRA_UID_RANGE:
                    var u = NetlinkReader.Read<fib_rule_uid_range>(value, "FRA_UID_RANGE");
                    uid = new UidRange(u.start, u.end);
                    break;
                case Nl.FRA_SUPPRESS_PREFIXLEN: suppress = unchecked((int)NetlinkReader.U32(value)); break;
            }
        }
        return new Rule(family, priority, (RuleAction)h.action, table, protocol, from, to,
            not: (h.flags & Nl.FIB_RULE_INVERT) != 0, fwMark: mark, fwMask: mask, iif: iif, oif: oif,
            sourcePort: sport, destinationPort: dport, ipProto: ipProto, uidRange: uid, tos: h.tos,
            suppressPrefixLength: suppress);
    }

    static PortRange Ports(ReadOnlySpan<byte> value)
    {
        var p = NetlinkReader.Read<fib_rule_port_range>(value, "a port range");
        return new PortRange(p.start, p.end);
    }
}
