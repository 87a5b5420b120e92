using System.Runtime.CompilerServices;
using System.Net;
using System.Net.Sockets;
using TunnelRouter.Core;
using TunnelRouter.Interop;

namespace TunnelRouter.Kernel.Netlink;

/// <summary>
/// Links and addresses over rtnetlink: GRE links created, changed and read back, a link's up/down state, MTU and
/// alias, deleting a link, addresses, and "route get". The wire format lives in <see cref="NetlinkLinks"/> and
/// <see cref="NetlinkAddresses"/>. Checked against real GRE by the user-mode-linux tests (this host kernel has none).
/// </summary>
public sealed partial class NetlinkBackend
{
    /// <summary>Equivalent to: ip -j -d address show</summary>
    public IReadOnlyList<Link> ReadLinks()
    {
        var names = new InterfaceNames();
        var reported = new List<NetlinkLinks.Reported>();
        Socket.Dump(_writer, "the link list", NetlinkLinks.WriteDump,
            (in nlmsghdr h, ReadOnlySpan<byte> payload) =>
            {
                if (NetlinkLinks.TryParse(h, payload, out var link)) reported.Add(link);
            },
            reported.Clear);
        var addresses = new Dictionary<int, List<InterfaceAddress>>();
        DumpAddresses(addresses, 0, globalOnly: false);
        return reported.Select(l => new Link(l.Name, l.Info.ifi_index, l.Kind, l.Mtu, (l.Info.ifi_flags & Nl.IFF_UP) != 0, l.Alias,
                l.Gre?.Tunnel(l.Name, l.Mtu, names), addresses.TryGetValue(l.Info.ifi_index, out var a) ? a : []))
            .ToList();
    }

    /// <summary>The addresses of every link (<paramref name="index"/> 0) or of one, by link index, in the kernel's
    /// order. Equivalent to: ip -j address show [dev DEV] [scope global]</summary>
    void DumpAddresses(Dictionary<int, List<InterfaceAddress>> into, uint index, bool globalOnly) =>
        Socket.Dump(_writer, "the address list", (w, seq) => NetlinkAddresses.WriteDump(w, seq, index),
            (in nlmsghdr h, ReadOnlySpan<byte> payload) =>
            {
                if (!NetlinkAddresses.TryParse(h, payload, out var m, out var a)) return;
                if (index != 0 && m.ifa_index != index) return;
                if (globalOnly && m.ifa_scope != Nl.RT_SCOPE_UNIVERSE) return;
                if (!into.TryGetValue((int)m.ifa_index, out var list)) into[(int)m.ifa_index] = list = [];
                list.Add(new InterfaceAddress(a, m.ifa_prefixlen));
            },
            into.Clear);

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

    /// <summary>The device a link or address change is the request of (for <see cref="AddLink"/>, the one it makes);
    /// null for any other change.</summary>
    static string? LinkDevice(Change change) => change switch
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

    int EncodeLinkChange(Change change, uint seq, DeviceIndexes devices, out string? reason)
    {
        reason = null;
        if (LinkDevice(change) is not { } device)
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
        switch (change)
        {
            case ChangeLink changed: return EncodeGre(changed.New, index, seq, devices, out reason);
            case AddAddress a: NetlinkAddresses.Write(_writer, Nl.RTM_NEWADDR, Nl.NLM_F_CREATE | Nl.NLM_F_EXCL, seq, index, a.Address); break;
            case ReplaceAddress r: NetlinkAddresses.Write(_writer, Nl.RTM_NEWADDR, Nl.NLM_F_CREATE | Nl.NLM_F_REPLACE, seq, index, r.Address); break;
            case DeleteAddress d: NetlinkAddresses.Write(_writer, Nl.RTM_DELADDR, 0, seq, index, d.Address); break;
            case DeleteLink: NetlinkLinks.WriteDelete(_writer, seq, index); break;
            default: NetlinkLinks.WriteSet(_writer, seq, index, change); break;
        }
        return 0;
    }

    /// <summary>A GRE link made (<paramref name="index"/> null) or changed: its underlay resolved to an index first.</summary>
    int EncodeGre(GreTunnel t, uint? index, uint seq, DeviceIndexes devices, out string? reason)
    {
        reason = null;
        var underlay = 0u;
        if (t.Underlay is not null && (underlay = devices.Of(t.Underlay)) == 0)
        {
            reason = $"Cannot find device \"{t.Underlay}\"";
            return Errno.ENODEV;
        }
        NetlinkLinks.WriteGre(_writer, seq, t, index, underlay);
        return 0;
    }
}
