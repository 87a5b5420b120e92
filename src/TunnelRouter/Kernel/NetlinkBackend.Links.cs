using System.Net;
using System.Net.Sockets;
using System.Text;
using TunnelRouter.Core;
using TunnelRouter.Interop;

namespace TunnelRouter.Kernel;

/// <summary>
/// Links and addresses over rtnetlink: addresses, a link's up/down state, MTU and alias, deleting a link,
/// the address read-back and "route get". Creating and changing GRE links (IFLA_LINKINFO with the gre and
/// ip6gre IFLA_INFO_DATA) and reading them back in full still go through iproute2: this kernel has no GRE,
/// so only the user-mode-linux tests could check those bytes, and until they do, iproute2 makes them.
/// </summary>
public sealed partial class NetlinkBackend
{
    IpBackend? _iproute2;

    IpBackend Iproute2 => _iproute2 ??= new IpBackend(new ProcessRunner());

    static bool IsNative(Change change) => change is not (AddLink or ChangeLink);

    /// <summary>Equivalent to: ip -j -d address show (through iproute2, see the class summary).</summary>
    public IReadOnlyList<Link> ReadLinks() => Iproute2.ReadLinks();

    /// <summary>Equivalent to: ip -j addr show dev DEV scope global</summary>
    public IReadOnlyList<InterfaceAddress> ReadAddresses(string device)
    {
        var index = Libc.InterfaceIndex(device);
        if (index == 0) return [];
        var result = new List<InterfaceAddress>();
        for (var attempt = 1; ; attempt++)
        {
            _writer.Reset();
            var seq = Socket.NextSequence();
            _writer.BeginMessage(Nl.RTM_GETADDR, Nl.NLM_F_REQUEST | Nl.NLM_F_DUMP, seq);
            _writer.Put(new ifaddrmsg { ifa_family = Nl.AF_UNSPEC, ifa_index = index });
            _writer.EndMessage();
            if (Socket.Dump(_writer, seq, (in nlmsghdr h, ReadOnlySpan<byte> payload) =>
                {
                    if (h.nlmsg_type != Nl.RTM_NEWADDR) return;
                    var m = NetlinkReader.Read<ifaddrmsg>(payload);
                    if (m.ifa_index != index || m.ifa_scope != Nl.RT_SCOPE_UNIVERSE) return;
                    if (m.ifa_family is not (Nl.AF_INET or Nl.AF_INET6)) return;
                    IPAddress? local = null, address = null;
                    var attrs = NetlinkReader.AttributesAfter(payload, System.Runtime.InteropServices.Marshal.SizeOf<ifaddrmsg>());
                    while (NetlinkReader.NextAttribute(ref attrs, out var t, out var value))
                    {
                        if (t == Nl.IFA_LOCAL) local = NetlinkReader.Address(value);
                        else if (t == Nl.IFA_ADDRESS) address = NetlinkReader.Address(value);
                    }
                    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer's on point-to-point links.
                    if ((local ?? address) is { } a) result.Add(new InterfaceAddress(a, m.ifa_prefixlen));
                }))
                return result;
            result.Clear();
            if (attempt == DumpAttempts)
                throw new NetlinkException($"the addresses of {device} kept changing while they were read") { Errno = Errno.EAGAIN };
        }
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
            var attrs = NetlinkReader.AttributesAfter(payload, System.Runtime.InteropServices.Marshal.SizeOf<rtmsg>());
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
            SetLinkUp c => c.Name,
            SetLinkDown c => c.Name,
            SetLinkMtu c => c.Name,
            SetLinkAlias c => c.Name,
            DeleteLink c => c.Tunnel.Name,
            AddAddress c => c.Device,
            DeleteAddress c => c.Device,
            _ => null,
        };
        if (device is null)
        {
            reason = $"the netlink backend cannot apply {change.GetType().Name}";
            return Errno.EOPNOTSUPP;
        }
        var index = devices.Of(device);
        if (index == 0)
        {
            reason = $"Cannot find device \"{device}\"";
            return Errno.ENODEV;
        }

        switch (change)
        {
            case AddAddress a: WriteAddress(Nl.RTM_NEWADDR, Nl.NLM_F_CREATE | Nl.NLM_F_EXCL, seq, index, a.Address); break;
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

    /// <summary>Equivalent to: ip address add|del ADDRESS/PREFIX dev DEV</summary>
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
