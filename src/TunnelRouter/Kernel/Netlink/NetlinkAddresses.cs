using System.Runtime.CompilerServices;
using System.Net;
using TunnelRouter.Core;

namespace TunnelRouter.Kernel.Netlink;

/// <summary>Interface addresses as rtnetlink messages (ifaddrmsg + IFA_* attributes), both ways.</summary>
internal static class NetlinkAddresses
{
    /// <summary>Equivalent to: ip -j address show (the kernel filters by <paramref name="index"/> where it can; 0: every link).</summary>
    public static void WriteDump(NetlinkWriter w, uint seq, uint index)
    {
        w.BeginMessage(Nl.RTM_GETADDR, Nl.NLM_F_REQUEST | Nl.NLM_F_DUMP, seq);
        w.Put(new ifaddrmsg { ifa_family = Nl.AF_UNSPEC, ifa_index = index });
        w.EndMessage();
    }

    /// <summary>An RTM_NEWADDR message of family inet or inet6 and its address: IFA_LOCAL, the interface's own
    /// address, before IFA_ADDRESS, which on point-to-point links is the peer's.</summary>
    public static bool TryParse(in nlmsghdr h, ReadOnlySpan<byte> payload, out ifaddrmsg m, out IPAddress address)
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

    /// <summary>Equivalent to: ip address add|replace|del ADDRESS/PREFIX dev DEV</summary>
    public static void Write(NetlinkWriter w, ushort type, ushort flags, uint seq, uint index, InterfaceAddress a)
    {
        w.BeginMessage(type, (ushort)(Nl.NLM_F_REQUEST | Nl.NLM_F_ACK | flags), seq);
        w.Put(new ifaddrmsg
        {
            ifa_family = NetlinkRoutes.Family(a.Family),
            ifa_prefixlen = (byte)a.PrefixLength,
            ifa_index = index,
        });
        w.AttrAddress(Nl.IFA_LOCAL, a.Address);
        w.AttrAddress(Nl.IFA_ADDRESS, a.Address);
        w.EndMessage();
    }
}
