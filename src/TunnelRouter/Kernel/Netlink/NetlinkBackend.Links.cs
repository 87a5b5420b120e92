using System.Runtime.CompilerServices;
using System.Net;
using System.Net.Sockets;
using System.Text;
using TunnelRouter.Core;
using TunnelRouter.Interop;

namespace TunnelRouter.Kernel.Netlink;

/// <summary>
/// Links and addresses over rtnetlink: GRE links (gre, gretap, ip6gre, ip6gretap) created, changed and read
/// back with their IFLA_LINKINFO/IFLA_INFO_DATA, a link's up/down state, MTU and alias, deleting a link,
/// addresses, and "route get". Checked against real GRE by the user-mode-linux tests (this host kernel has none).
/// </summary>
public sealed partial class NetlinkBackend
{
    /// <summary>Equivalent to: ip -j -d address show</summary>
    public IReadOnlyList<Link> ReadLinks()
    {
        var names = new InterfaceNames();
        var raw = new List<(ifinfomsg Info, string Name, uint Mtu, string? Alias, string? Kind, GreData? Gre)>();
        Socket.Dump(_writer, "the link list",
            (w, seq) =>
            {
                w.BeginMessage(Nl.RTM_GETLINK, Nl.NLM_F_REQUEST | Nl.NLM_F_DUMP, seq);
                w.Put(new ifinfomsg());
                w.EndMessage();
            },
            (in nlmsghdr h, ReadOnlySpan<byte> payload) =>
            {
                if (h.nlmsg_type != Nl.RTM_NEWLINK) return;
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
                if (name is not null) raw.Add((info, name, mtu, string.IsNullOrEmpty(alias) ? null : alias, kind, gre));
            },
            raw.Clear);
        var addresses = new Dictionary<int, List<InterfaceAddress>>();
        DumpAddresses(addresses, 0, globalOnly: false);
        return raw.Select(l => new Link(l.Name, l.Info.ifi_index, l.Kind, l.Mtu, (l.Info.ifi_flags & Nl.IFF_UP) != 0, l.Alias,
                l.Gre?.Tunnel(l.Name, l.Mtu, names), addresses.TryGetValue(l.Info.ifi_index, out var a) ? a : []))
            .ToList();
    }

    /// <summary>The addresses of every link (<paramref name="index"/> 0) or of one, by link index, in the kernel's
    /// order. Equivalent to: ip -j address show [dev DEV] [scope global]</summary>
    void DumpAddresses(Dictionary<int, List<InterfaceAddress>> into, uint index, bool globalOnly) =>
        Socket.Dump(_writer, "the address list",
            (w, seq) =>
            {
                w.BeginMessage(Nl.RTM_GETADDR, Nl.NLM_F_REQUEST | Nl.NLM_F_DUMP, seq);
                w.Put(new ifaddrmsg { ifa_family = Nl.AF_UNSPEC, ifa_index = index });
                w.EndMessage();
            },
            (in nlmsghdr h, ReadOnlySpan<byte> payload) =>
            {
                if (!TryReadAddress(h, payload, out var m, out var a)) return;
                if (index != 0 && m.ifa_index != index) return;
                if (globalOnly && m.ifa_scope != Nl.RT_SCOPE_UNIVERSE) return;
                if (!into.TryGetValue((int)m.ifa_index, out var list)) into[(int)m.ifa_index] = list = [];
                list.Add(new InterfaceAddress(a, m.ifa_prefixlen));
            },
            into.Clear);

    /// <summary>An RTM_NEWADDR message of family inet or inet6 and its address: IFA_LOCAL, the interface's own
    /// address, before IFA_ADDRESS, which on point-to-point links is the peer's.</summary>
    static bool TryReadAddress(in nlmsghdr h, ReadOnlySpan<byte> payload, out ifaddrmsg m, out IPAddress address)
    {
        m = default;
        address = IPAddress.None;
        if (h.nlmsg_type != Nl.RTM_NEWADDR) return false;
        m = NetlinkReader.Read<ifaddrmsg>(payload, "ifaddrmsg");
        if (m.ifa_family is not (Nl.AF_INET or Nl.AF_INET6)) return false;
        IPAddress? local = null, peer = null;
        var attrs = NetlinkReader.AttributesAfter(payload, Unsafe.SizeOf<ifaddrmsg>());
        while (NetlinkReader.NextAttribute(ref attrs, out var t, out var value))
        {
            if (t == Nl.IFA_LOCAL) local = NetlinkReader.Address(value);
            else if (t == Nl.IFA_ADDRESS) peer = NetlinkReader.Address(value);
        }
        if ((local ?? peer) is not { } a) return false;
        address = a;
        return true;
    }

    /// <summary>IFLA_INFO_DATA of a GRE link as the kernel reports it (ipgre_fill_info, ip6gre_fill_info).</summary>
    sealed record GreData(GreMode Mode, IPAddress? Local, IPAddress? Remote, uint? IKey, uint? OKey, byte Ttl, byte Tos,
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

    /// <summary>Equivalent to: ip -j addr show dev DEV scope global</summary>
    public IReadOnlyList<InterfaceAddress> ReadAddresses(string device)
    {
        var index = Libc.InterfaceIndex(device);
        if (index == 0) return [];
        var result = new Dictionary<int, List<InterfaceAddress>>();
        DumpAddresses(result, index, globalOnly: true);
        return result.TryGetValue((int)index, out var list) ? list : [];
    }

    /// <summary>Equivalent to: ip -j route get ADDRESS</summary>
    public string? RouteDevice(IPAddress destination)
    {
        _writer.Reset();
        var seq = Socket.NextSequence();
        var v6 = destination.AddressFamily == AddressFamily.InterNetworkV6;
        _writer.BeginMessage(Nl.RTM_GETROUTE, Nl.NLM_F_REQUEST, seq);
        _writer.Put(new rtmsg { rtm_family = v6 ? Nl.AF_INET6 : Nl.AF_INET, rtm_dst_len = (byte)(v6 ? 128 : 32) });
        _writer.AttrAddress(Nl.RTA_DST, destination);
        _writer.EndMessage();
        uint oif = 0;
        var errno = Socket.Request(_writer, seq, (in nlmsghdr h, ReadOnlySpan<byte> payload) =>
        {
            var attrs = NetlinkReader.AttributesAfter(payload, Unsafe.SizeOf<rtmsg>());
            while (NetlinkReader.NextAttribute(ref attrs, out var t, out var value))
                if (t == Nl.RTA_OIF) oif = NetlinkReader.U32(value);
        });
        return errno != 0 || oif == 0 ? null : Libc.InterfaceName(oif);
    }

    int EncodeLinkChange(Change change, uint seq, DeviceIndexes devices, out string? reason)
    {
        reason = null;
        var device = change switch
        {
            AddLink c => c.Tunnel.Name,
            ChangeLink c => c.New.Name,
            SetLinkUp c => c.Name,
            SetLinkDown c => c.Name,
            SetLinkMtu c => c.Name,
            SetLinkAlias c => c.Name,
            DeleteLink c => c.Tunnel.Name,
            AddAddress c => c.Device,
            ReplaceAddress c => c.Device,
            DeleteAddress c => c.Device,
            _ => null,
        };
        if (device is null)
        {
            reason = $"the netlink backend cannot apply {change.GetType().Name}";
            return Errno.EOPNOTSUPP;
        }
        if (change is AddLink add) return EncodeGre(add.Tunnel, null, seq, devices, out reason);
        var index = devices.Of(device);
        if (index == 0)
        {
            reason = $"Cannot find device \"{device}\"";
            return Errno.ENODEV;
        }
        if (change is ChangeLink changed) return EncodeGre(changed.New, index, seq, devices, out reason);

        switch (change)
        {
            case AddAddress a: WriteAddress(Nl.RTM_NEWADDR, Nl.NLM_F_CREATE | Nl.NLM_F_EXCL, seq, index, a.Address); break;
            case ReplaceAddress r: WriteAddress(Nl.RTM_NEWADDR, Nl.NLM_F_CREATE | Nl.NLM_F_REPLACE, seq, index, r.Address); break;
            case DeleteAddress d: WriteAddress(Nl.RTM_DELADDR, 0, seq, index, d.Address); break;
            case DeleteLink:
                // Equivalent to: ip link del NAME
                _writer.BeginMessage(Nl.RTM_DELLINK, Nl.NLM_F_REQUEST | Nl.NLM_F_ACK, seq);
                _writer.Put(new ifinfomsg { ifi_index = (int)index });
                _writer.EndMessage();
                break;
            default:
                // Equivalent to: ip link set NAME up|down|mtu M|alias A
                _writer.BeginMessage(Nl.RTM_NEWLINK, Nl.NLM_F_REQUEST | Nl.NLM_F_ACK, seq);
                _writer.Put(new ifinfomsg
                {
                    ifi_index = (int)index,
                    ifi_flags = change is SetLinkUp ? Nl.IFF_UP : 0,
                    ifi_change = change is SetLinkUp or SetLinkDown ? Nl.IFF_UP : 0,
                });
                if (change is SetLinkMtu mtu) _writer.AttrU32(Nl.IFLA_MTU, mtu.Mtu);
                // Without a terminating NUL, as iproute2 sends it: an empty alias removes it.
                if (change is SetLinkAlias alias) _writer.Attr(Nl.IFLA_IFALIAS, Encoding.UTF8.GetBytes(alias.Alias));
                _writer.EndMessage();
                break;
        }
        return 0;
    }

    /// <summary>
    /// Equivalent to: ip link add NAME mtu M type gre|gretap|ip6gre|ip6gretap remote R local L [ikey K okey K] ttl T
    /// tos T [no]pmtudisc dev UNDERLAY, or with <paramref name="index"/> ip link set NAME mtu M type ... (every
    /// parameter spelt out: the kernel's changelink resets what a request leaves out). The IPv6 kinds get
    /// iproute2's defaults for what TunnelRouter does not model: encapsulation limit 4, flow label 0.
    /// </summary>
    int EncodeGre(GreTunnel t, uint? index, uint seq, DeviceIndexes devices, out string? reason)
    {
        reason = null;
        var underlay = 0u;
        if (t.Underlay is not null && (underlay = devices.Of(t.Underlay)) == 0)
        {
            reason = $"Cannot find device \"{t.Underlay}\"";
            return Errno.ENODEV;
        }
        var create = index is null;
        _writer.BeginMessage(Nl.RTM_NEWLINK,
            (ushort)(Nl.NLM_F_REQUEST | Nl.NLM_F_ACK | (create ? Nl.NLM_F_CREATE | Nl.NLM_F_EXCL : 0)), seq);
        _writer.Put(new ifinfomsg { ifi_index = (int)(index ?? 0) });
        if (create) _writer.AttrString(Nl.IFLA_IFNAME, t.Name);
        if (t.Mtu != 0) _writer.AttrU32(Nl.IFLA_MTU, t.Mtu);
        var info = _writer.BeginNest(Nl.IFLA_LINKINFO);
        _writer.AttrString(Nl.IFLA_INFO_KIND, t.Mode.Kind());
        var data = _writer.BeginNest(Nl.IFLA_INFO_DATA);
        Span<byte> b = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(b, t.IKey is null ? (ushort)0 : Nl.GRE_KEY);
        _writer.Attr(Nl.IFLA_GRE_IFLAGS, b[..2]);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(b, t.OKey is null ? (ushort)0 : Nl.GRE_KEY);
        _writer.Attr(Nl.IFLA_GRE_OFLAGS, b[..2]);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(b, t.IKey ?? 0);
        _writer.Attr(Nl.IFLA_GRE_IKEY, b);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(b, t.OKey ?? 0);
        _writer.Attr(Nl.IFLA_GRE_OKEY, b);
        _writer.AttrAddress(Nl.IFLA_GRE_LOCAL, t.Local ?? (t.IsV6 ? IPAddress.IPv6Any : IPAddress.Any));
        _writer.AttrAddress(Nl.IFLA_GRE_REMOTE, t.Remote);
        _writer.AttrU8(Nl.IFLA_GRE_TTL, t.Ttl);
        if (underlay != 0) _writer.AttrU32(Nl.IFLA_GRE_LINK, underlay);
        if (t.IsV6)
        {
            _writer.AttrU8(Nl.IFLA_GRE_ENCAP_LIMIT, Nl.IPV6_DEFAULT_TNL_ENCAP_LIMIT);
            var inherit = t.Tos == 1;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(b, inherit ? 0 : (uint)t.Tos << 20);
            _writer.Attr(Nl.IFLA_GRE_FLOWINFO, b);
            _writer.AttrU32(Nl.IFLA_GRE_FLAGS, inherit ? Nl.IP6_TNL_F_USE_ORIG_TCLASS : 0);
        }
        else
        {
            _writer.AttrU8(Nl.IFLA_GRE_TOS, t.Tos);
            _writer.AttrU8(Nl.IFLA_GRE_PMTUDISC, t.PMtuDisc ? (byte)1 : (byte)0);
        }
        _writer.EndNest(data);
        _writer.EndNest(info);
        _writer.EndMessage();
        return 0;
    }

    /// <summary>Equivalent to: ip address add|replace|del ADDRESS/PREFIX dev DEV</summary>
    void WriteAddress(ushort type, ushort flags, uint seq, uint index, InterfaceAddress a)
    {
        _writer.BeginMessage(type, (ushort)(Nl.NLM_F_REQUEST | Nl.NLM_F_ACK | flags), seq);
        _writer.Put(new ifaddrmsg
        {
            ifa_family = NetlinkRoutes.Family(a.Family),
            ifa_prefixlen = (byte)a.PrefixLength,
            ifa_index = index,
        });
        _writer.AttrAddress(Nl.IFA_LOCAL, a.Address);
        _writer.AttrAddress(Nl.IFA_ADDRESS, a.Address);
        _writer.EndMessage();
    }
}
