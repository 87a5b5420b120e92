using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Net;
using System.Text;
using TunnelRouter.Core;

namespace TunnelRouter.Kernel.Netlink;

/// <summary>Links as rtnetlink messages (ifinfomsg + IFLA_* attributes), both ways: GRE links (gre, gretap, ip6gre,
/// ip6gretap) with their IFLA_LINKINFO/IFLA_INFO_DATA, a link's up/down state, MTU and alias, deleting a link.</summary>
internal static class NetlinkLinks
{
    /// <summary>What an RTM_NEWLINK says of a link, before its addresses and its underlay's name are known.</summary>
    public readonly record struct Reported(ifinfomsg Info, string Name, uint Mtu, string? Alias, string? Kind, GreData? Gre);

    /// <summary>Equivalent to: ip -j -d link show</summary>
    public static void WriteDump(NetlinkWriter w, uint seq)
    {
        w.BeginMessage(Nl.RTM_GETLINK, Nl.NLM_F_REQUEST | Nl.NLM_F_DUMP, seq);
        w.Put(new ifinfomsg());
        w.EndMessage();
    }

    /// <summary>An RTM_NEWLINK's link; false for another message or a link without a name.</summary>
    public static bool TryParse(in nlmsghdr h, ReadOnlySpan<byte> payload, out Reported link)
    {
        link = default;
        if (h.nlmsg_type != Nl.RTM_NEWLINK) return false;
        var info = NetlinkReader.Read<ifinfomsg>(payload, "ifinfomsg");
        string? name = null, alias = null, kind = null;
        uint mtu = 0;
        GreData? gre = null;
        var attrs = NetlinkReader.AttributesAfter(payload, Unsafe.SizeOf<ifinfomsg>());
        while (NetlinkReader.NextAttribute(ref attrs, out var t, out var value))
        {
            switch (t)
            {
                case Nl.IFLA_IFNAME: name = NetlinkReader.String(value); break;
                case Nl.IFLA_MTU: mtu = NetlinkReader.U32(value); break;
                case Nl.IFLA_IFALIAS: alias = NetlinkReader.String(value); break;
                case Nl.IFLA_LINKINFO:
                    // The kernel puts IFLA_INFO_KIND before IFLA_INFO_DATA.
                    var nested = value;
                    while (NetlinkReader.NextAttribute(ref nested, out var it, out var iv))
                        if (it == Nl.IFLA_INFO_KIND) kind = NetlinkReader.String(iv);
                        else if (it == Nl.IFLA_INFO_DATA && GreModes.TryParse(kind, out var mode)) gre = GreData.Parse(mode, iv);
                    break;
            }
        }
        if (name is null) return false;
        link = new Reported(info, name, mtu, string.IsNullOrEmpty(alias) ? null : alias, kind, gre);
        return true;
    }

    /// <summary>
    /// Equivalent to: ip link add NAME mtu M type gre|gretap|ip6gre|ip6gretap remote R local L [ikey K okey K] ttl T
    /// tos T [no]pmtudisc dev UNDERLAY, or with <paramref name="index"/> ip link set NAME mtu M type ... (every
    /// parameter spelt out: the kernel's changelink resets what a request leaves out). The IPv6 kinds get
    /// iproute2's defaults for what TunnelRouter does not model: encapsulation limit 4, flow label 0.
    /// </summary>
    /// <param name="underlay">the underlay's index; 0 for none.</param>
    public static void WriteGre(NetlinkWriter w, uint seq, GreTunnel t, uint? index, uint underlay)
    {
        var create = index is null;
        w.BeginMessage(Nl.RTM_NEWLINK,
            (ushort)(Nl.NLM_F_REQUEST | Nl.NLM_F_ACK | (create ? Nl.NLM_F_CREATE | Nl.NLM_F_EXCL : 0)), seq);
        w.Put(new ifinfomsg { ifi_index = (int)(index ?? 0) });
        if (create) w.AttrString(Nl.IFLA_IFNAME, t.Name);
        if (t.Mtu != 0) w.AttrU32(Nl.IFLA_MTU, t.Mtu);
        var info = w.BeginNest(Nl.IFLA_LINKINFO);
        w.AttrString(Nl.IFLA_INFO_KIND, t.Mode.Kind());
        var data = w.BeginNest(Nl.IFLA_INFO_DATA);
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt16BigEndian(b, t.IKey is null ? (ushort)0 : Nl.GRE_KEY);
        w.Attr(Nl.IFLA_GRE_IFLAGS, b[..2]);
        BinaryPrimitives.WriteUInt16BigEndian(b, t.OKey is null ? (ushort)0 : Nl.GRE_KEY);
        w.Attr(Nl.IFLA_GRE_OFLAGS, b[..2]);
        BinaryPrimitives.WriteUInt32BigEndian(b, t.IKey ?? 0);
        w.Attr(Nl.IFLA_GRE_IKEY, b);
        BinaryPrimitives.WriteUInt32BigEndian(b, t.OKey ?? 0);
        w.Attr(Nl.IFLA_GRE_OKEY, b);
        w.AttrAddress(Nl.IFLA_GRE_LOCAL, t.Local ?? (t.IsV6 ? IPAddress.IPv6Any : IPAddress.Any));
        w.AttrAddress(Nl.IFLA_GRE_REMOTE, t.Remote);
        w.AttrU8(Nl.IFLA_GRE_TTL, t.Ttl);
        if (underlay != 0) w.AttrU32(Nl.IFLA_GRE_LINK, underlay);
        if (t.IsV6)
        {
            w.AttrU8(Nl.IFLA_GRE_ENCAP_LIMIT, Nl.IPV6_DEFAULT_TNL_ENCAP_LIMIT);
            var inherit = t.Tos == 1;
            BinaryPrimitives.WriteUInt32BigEndian(b, inherit ? 0 : (uint)t.Tos << 20);
            w.Attr(Nl.IFLA_GRE_FLOWINFO, b);
            w.AttrU32(Nl.IFLA_GRE_FLAGS, inherit ? Nl.IP6_TNL_F_USE_ORIG_TCLASS : 0);
        }
        else
        {
            w.AttrU8(Nl.IFLA_GRE_TOS, t.Tos);
            w.AttrU8(Nl.IFLA_GRE_PMTUDISC, t.PMtuDisc ? (byte)1 : (byte)0);
        }
        w.EndNest(data);
        w.EndNest(info);
        w.EndMessage();
    }

    /// <summary>Equivalent to: ip link del NAME</summary>
    public static void WriteDelete(NetlinkWriter w, uint seq, uint index)
    {
        w.BeginMessage(Nl.RTM_DELLINK, Nl.NLM_F_REQUEST | Nl.NLM_F_ACK, seq);
        w.Put(new ifinfomsg { ifi_index = (int)index });
        w.EndMessage();
    }

    /// <summary>Equivalent to: ip link set NAME up|down|mtu M|alias A (<see cref="SetLinkUp"/>, <see cref="SetLinkDown"/>,
    /// <see cref="SetLinkMtu"/>, <see cref="SetLinkAlias"/>).</summary>
    public static void WriteSet(NetlinkWriter w, uint seq, uint index, Change change)
    {
        w.BeginMessage(Nl.RTM_NEWLINK, Nl.NLM_F_REQUEST | Nl.NLM_F_ACK, seq);
        w.Put(new ifinfomsg
        {
            ifi_index = (int)index,
            ifi_flags = change is SetLinkUp ? Nl.IFF_UP : 0,
            ifi_change = change is SetLinkUp or SetLinkDown ? Nl.IFF_UP : 0,
        });
        if (change is SetLinkMtu mtu) w.AttrU32(Nl.IFLA_MTU, mtu.Mtu);
        // Without a terminating NUL, as iproute2 sends it: an empty alias removes it.
        if (change is SetLinkAlias alias) w.Attr(Nl.IFLA_IFALIAS, Encoding.UTF8.GetBytes(alias.Alias));
        w.EndMessage();
    }

    /// <summary>IFLA_INFO_DATA of a GRE link as the kernel reports it (ipgre_fill_info, ip6gre_fill_info).</summary>
    public sealed record GreData(GreMode Mode, IPAddress? Local, IPAddress? Remote, uint? IKey, uint? OKey, byte Ttl, byte Tos,
        bool PMtuDisc, uint Link)
    {
        public static GreData Parse(GreMode mode, ReadOnlySpan<byte> data)
        {
            IPAddress? local = null, remote = null;
            uint ikey = 0, okey = 0, link = 0, flowinfo = 0, flags = 0;
            ushort iflags = 0, oflags = 0;
            byte ttl = 0, tos = 0;
            var pmtu = true;
            while (NetlinkReader.NextAttribute(ref data, out var t, out var v))
            {
                switch (t)
                {
                    case Nl.IFLA_GRE_LOCAL: local = NetlinkReader.Address(v); break;
                    case Nl.IFLA_GRE_REMOTE: remote = NetlinkReader.Address(v); break;
                    case Nl.IFLA_GRE_IKEY: ikey = NetlinkReader.U32BigEndian(v); break;
                    case Nl.IFLA_GRE_OKEY: okey = NetlinkReader.U32BigEndian(v); break;
                    case Nl.IFLA_GRE_IFLAGS: iflags = NetlinkReader.U16BigEndian(v); break;
                    case Nl.IFLA_GRE_OFLAGS: oflags = NetlinkReader.U16BigEndian(v); break;
                    case Nl.IFLA_GRE_LINK: link = NetlinkReader.U32(v); break;
                    case Nl.IFLA_GRE_TTL: ttl = NetlinkReader.U8(v); break;
                    case Nl.IFLA_GRE_TOS: tos = NetlinkReader.U8(v); break;
                    case Nl.IFLA_GRE_PMTUDISC: pmtu = NetlinkReader.U8(v) != 0; break;
                    case Nl.IFLA_GRE_FLOWINFO: flowinfo = NetlinkReader.U32BigEndian(v); break;
                    case Nl.IFLA_GRE_FLAGS: flags = NetlinkReader.U32(v); break;
                }
            }
            if (mode.UnderlayFamily().IsV6())
                // iproute2 shows "tclass inherit" (read back as 1) for the flag, else the class bits of the flow info.
                tos = (flags & Nl.IP6_TNL_F_USE_ORIG_TCLASS) != 0 ? (byte)1 : (byte)((flowinfo & 0x0FF00000) >> 20);
            static bool Any(IPAddress? a) => a is null || a.Equals(IPAddress.Any) || a.Equals(IPAddress.IPv6Any);
            return new GreData(mode, Any(local) ? null : local, Any(remote) ? null : remote,
                (iflags & Nl.GRE_KEY) != 0 ? ikey : null, (oflags & Nl.GRE_KEY) != 0 ? okey : null, ttl, tos, pmtu, link);
        }

        /// <summary>Null for a GRE link without a remote: a multipoint or fallback device, never one of ours.</summary>
        public GreTunnel? Tunnel(string name, uint mtu, InterfaceNames names) => Remote is null ? null
            : new GreTunnel(name, Mode, Local, Remote, IKey, OKey, Ttl, Tos, PMtuDisc, mtu, Link == 0 ? null : names.Of(Link));
    }
}
