using System.Runtime.CompilerServices;
using System.Net;
using System.Net.Sockets;
using TunnelRouter.Core;
using TunnelRouter.Interop;

namespace TunnelRouter.Kernel.Netlink;

/// <summary>Routes as rtnetlink messages (rtmsg + RTA_* attributes), both ways.</summary>
internal static class NetlinkRoutes
{
    /// <summary>
    /// Equivalent to: ip route add|replace|del TYPE DST via GW dev DEV src PREFSRC table T proto P metric M onlink mtu MTU.
    /// The scope is what iproute2 picks: link for a unicast route without a gateway, universe otherwise,
    /// "nowhere" (any) for a delete.
    /// </summary>
    public static void Write(NetlinkWriter w, ushort type, ushort flags, uint seq, Route r, uint oif) =>
        Write(w, type, flags, seq, new PackedRouteKey(r), r.Protocol, r.Gateway, r.Source, r.Type, r.OnLink, r.Mtu, oif, r.Nexthop);

    /// <summary>The same from a packed route: a prefix file's routes go out without a route made for each.</summary>
    public static void Write(NetlinkWriter w, ushort type, ushort flags, uint seq, in PackedRoute r, uint oif) =>
        Write(w, type, flags, seq, r.Key, r.Tail.Protocol, r.Tail.Gateway, r.Tail.Source, r.Tail.Type, r.Tail.OnLink, r.Tail.Mtu, oif, r.Tail.Nexthop);

    static void Write(NetlinkWriter w, ushort type, ushort flags, uint seq, in PackedRouteKey key, byte protocol, IPAddress? gateway,
        IPAddress? source, RouteType routeType, bool onLink, uint mtu, uint oif, uint nexthop)
    {
        w.BeginMessage(type, (ushort)(Nl.NLM_F_REQUEST | Nl.NLM_F_ACK | flags), seq);
        var delete = type == Nl.RTM_DELROUTE;
        w.Put(new rtmsg
        {
            rtm_family = key.IsV6 ? Nl.AF_INET6 : Nl.AF_INET,
            rtm_dst_len = (byte)key.PrefixLength,
            // Tables above 255 only fit RTA_TABLE; rtm_table then says "see the attribute".
            rtm_table = key.Table < 256 ? (byte)key.Table : Nl.RT_TABLE_UNSPEC,
            rtm_protocol = protocol,
            rtm_scope = delete ? Nl.RT_SCOPE_NOWHERE
                // A route by a nexthop object takes its gateway's scope: universe (the kernel refuses link).
                : routeType == RouteType.Unicast && gateway is null && nexthop == 0 ? Nl.RT_SCOPE_LINK : Nl.RT_SCOPE_UNIVERSE,
            rtm_type = (byte)routeType,
            rtm_flags = onLink ? Nl.RTNH_F_ONLINK : 0,
        });
        w.AttrU32(Nl.RTA_TABLE, key.Table);
        if (key.PrefixLength > 0)
        {
            Span<byte> address = stackalloc byte[16];
            w.Attr(Nl.RTA_DST, address[..key.WriteAddress(address)]);
        }
        if (nexthop != 0) w.AttrU32(Nl.RTA_NH_ID, nexthop);
        if (gateway is not null) w.AttrAddress(Nl.RTA_GATEWAY, gateway);
        if (oif != 0) w.AttrU32(Nl.RTA_OIF, oif);
        if (source is not null) w.AttrAddress(Nl.RTA_PREFSRC, source);
        if (key.Metric != 0) w.AttrU32(Nl.RTA_PRIORITY, key.Metric);
        if (mtu != 0)
        {
            var metrics = w.BeginNest(Nl.RTA_METRICS);
            w.AttrU32(Nl.RTAX_MTU, mtu);
            w.EndNest(metrics);
        }
        w.EndMessage();
    }

    /// <summary>Equivalent to: ip -4 route show table TABLE [dev DEV]. With strict checking (Linux 4.20)
    /// the kernel dumps only that table and device.</summary>
    public static void WriteDump(NetlinkWriter w, uint seq, byte family, uint? table, uint? oif)
    {
        w.BeginMessage(Nl.RTM_GETROUTE, Nl.NLM_F_REQUEST | Nl.NLM_F_DUMP, seq);
        w.Put(new rtmsg { rtm_family = family });
        if (table is { } t) w.AttrU32(Nl.RTA_TABLE, t);
        if (oif is { } o) w.AttrU32(Nl.RTA_OIF, o);
        w.EndMessage();
    }

    /// <summary>A route of a dump, or null for what TunnelRouter does not model (local, broadcast,
    /// multicast and anycast routes, cached clones, source-specific IPv6 routes).</summary>
    public static Route? Parse(ReadOnlySpan<byte> payload, InterfaceNames names)
    {
        var into = new PackedRoutes(1);
        return TryParse(payload, names, into) ? into[0] : null;
    }

    /// <summary>Adds the route of a dump to <paramref name="into"/> packed, without an object of its own unless it
    /// has a gateway or source (the tail is shared with the list's earlier routes); false for what
    /// <see cref="Parse"/> returns null for.</summary>
    public static bool TryParse(ReadOnlySpan<byte> payload, InterfaceNames names, PackedRoutes into)
    {
        var m = NetlinkReader.Read<rtmsg>(payload, "rtmsg");
        var type = (RouteType)m.rtm_type;
        if (!Enum.IsDefined(type) || (m.rtm_flags & Nl.RTM_F_CLONED) != 0 || m.rtm_src_len != 0) return false;
        if (m.rtm_family is not (Nl.AF_INET or Nl.AF_INET6)) return false;
        var v6 = m.rtm_family == Nl.AF_INET6;

        UInt128 dst = 0;
        IPAddress? gateway = null, prefsrc = null;
        uint table = m.rtm_table, oif = 0, mtu = 0, nexthop = 0;
        uint? metric = null;
        var attrs = NetlinkReader.AttributesAfter(payload, Unsafe.SizeOf<rtmsg>());
        while (NetlinkReader.NextAttribute(ref attrs, out var t, out var value))
        {
            switch (t)
            {
                case Nl.RTA_DST: dst = NetlinkReader.AddressBits(value); break;
                case Nl.RTA_GATEWAY: gateway = NetlinkReader.Address(value); break;
                case Nl.RTA_PREFSRC: prefsrc = NetlinkReader.Address(value); break;
                case Nl.RTA_OIF: oif = NetlinkReader.U32(value); break;
                case Nl.RTA_PRIORITY: metric = NetlinkReader.U32(value); break;
                case Nl.RTA_TABLE: table = NetlinkReader.U32(value); break;
                case Nl.RTA_NH_ID: nexthop = NetlinkReader.U32(value); break;
                case Nl.RTA_METRICS:
                    var nested = value;
                    while (NetlinkReader.NextAttribute(ref nested, out var mt, out var mv))
                        if (mt == Nl.RTAX_MTU) mtu = NetlinkReader.U32(mv);
                    break;
            }
        }
        // A route by a nexthop object is that object: the gateway and device the kernel adds for old readers are its.
        if (nexthop != 0) (gateway, oif) = (null, 0);
        var device = type == RouteType.Unicast && oif != 0 ? names.Of(oif) : null;
        var key = new PackedRouteKey(dst, v6, Math.Min(m.rtm_dst_len, v6 ? (byte)128 : (byte)32), table,
            metric ?? (v6 ? Route.DefaultV6Metric : 0));
        into.Add(new PackedRoute(key, into.Tail(m.rtm_protocol, device, gateway, prefsrc, type, nexthop == 0 && (m.rtm_flags & Nl.RTNH_F_ONLINK) != 0, mtu, nexthop)));
        return true;
    }

    public static byte Family(AddressFamily family) => family == AddressFamily.InterNetworkV6 ? Nl.AF_INET6 : Nl.AF_INET;
}
