using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TunnelRouter.Core;

namespace TunnelRouter.Kernel.Netlink;

/// <summary>Nexthop objects as rtnetlink messages (nhmsg + NHA_* attributes), both ways.</summary>
internal static class NetlinkNexthops
{
    /// <summary>Equivalent to: ip nexthop add|replace id N via GW dev DEV proto P [onlink], or ... id N group A,W/B proto P.</summary>
    public static void Write(NetlinkWriter w, ushort flags, uint seq, Nexthop n, uint oif)
    {
        w.BeginMessage(Nl.RTM_NEWNEXTHOP, (ushort)(Nl.NLM_F_REQUEST | Nl.NLM_F_ACK | flags), seq);
        w.Put(new nhmsg
        {
            // A group has no family of its own (the kernel refuses one); a gateway's is its address's.
            nh_family = n.Gateway is null ? Nl.AF_UNSPEC : NetlinkRoutes.Family(n.Gateway.AddressFamily),
            nh_protocol = n.Protocol,
            nh_flags = n.OnLink ? Nl.RTNH_F_ONLINK : 0,
        });
        w.AttrU32(Nl.NHA_ID, n.Id);
        if (n.IsGroup)
        {
            var members = n.Group!.Select(m => new nexthop_grp { id = m.Id, weight = (byte)(m.Weight - 1) }).ToArray();
            w.Attr(Nl.NHA_GROUP, MemoryMarshal.AsBytes(members.AsSpan()));
        }
        else
        {
            if (oif != 0) w.AttrU32(Nl.NHA_OIF, oif);
            if (n.Gateway is not null) w.AttrAddress(Nl.NHA_GATEWAY, n.Gateway);
        }
        w.EndMessage();
    }

    /// <summary>Equivalent to: ip nexthop del id N</summary>
    public static void WriteDelete(NetlinkWriter w, uint seq, uint id)
    {
        w.BeginMessage(Nl.RTM_DELNEXTHOP, Nl.NLM_F_REQUEST | Nl.NLM_F_ACK, seq);
        w.Put(new nhmsg());
        w.AttrU32(Nl.NHA_ID, id);
        w.EndMessage();
    }

    /// <summary>Equivalent to: ip nexthop show</summary>
    public static void WriteDump(NetlinkWriter w, uint seq)
    {
        w.BeginMessage(Nl.RTM_GETNEXTHOP, Nl.NLM_F_REQUEST | Nl.NLM_F_DUMP, seq);
        w.Put(new nhmsg());
        w.EndMessage();
    }

    /// <summary>A nexthop of a dump, or null for a blackhole one (TunnelRouter makes none).</summary>
    public static Nexthop? Parse(ReadOnlySpan<byte> payload, InterfaceNames names)
    {
        var m = NetlinkReader.Read<nhmsg>(payload, "nhmsg");
        uint id = 0, oif = 0;
        System.Net.IPAddress? gateway = null;
        List<NexthopMember>? group = null;
        var attrs = NetlinkReader.AttributesAfter(payload, Unsafe.SizeOf<nhmsg>());
        while (NetlinkReader.NextAttribute(ref attrs, out var t, out var value))
        {
            switch (t)
            {
                case Nl.NHA_ID: id = NetlinkReader.U32(value); break;
                case Nl.NHA_OIF: oif = NetlinkReader.U32(value); break;
                case Nl.NHA_GATEWAY: gateway = NetlinkReader.Address(value); break;
                case Nl.NHA_BLACKHOLE: return null;
                case Nl.NHA_GROUP:
                    group = [];
                    foreach (var g in MemoryMarshal.Cast<byte, nexthop_grp>(value)) group.Add(new NexthopMember(g.id, (ushort)(g.weight + 1)));
                    break;
            }
        }
        return new Nexthop(id, m.nh_protocol, oif == 0 ? null : names.Of(oif), gateway, (m.nh_flags & Nl.RTNH_F_ONLINK) != 0, group);
    }
}
