using System.Runtime.InteropServices;

namespace TunnelRouter.Kernel.Netlink;

// Wire structs of <linux/netlink.h>, <linux/rtnetlink.h>, <linux/fib_rules.h>, <linux/if_addr.h>: blittable,
// field names as in C, so the kernel headers are the documentation.
#pragma warning disable IDE1006, CS8981 // C names, as in the kernel headers

[StructLayout(LayoutKind.Sequential)]
internal struct nlmsghdr
{
    public uint nlmsg_len;
    public ushort nlmsg_type;
    public ushort nlmsg_flags;
    public uint nlmsg_seq;
    public uint nlmsg_pid;
}

[StructLayout(LayoutKind.Sequential)]
internal struct nlmsgerr
{
    public int error;
    /// <summary>The request's header (its payload too, unless NETLINK_CAP_ACK is set).</summary>
    public nlmsghdr msg;
}

[StructLayout(LayoutKind.Sequential)]
internal struct rtattr
{
    public ushort rta_len;
    public ushort rta_type;
}

/// <summary>struct nhmsg (linux/nexthop.h).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct nhmsg
{
    public byte nh_family;
    public byte nh_scope;
    public byte nh_protocol;
    public byte resvd;
    public uint nh_flags;
}

/// <summary>struct nexthop_grp: one member of NHA_GROUP; the weight is stored less one (0-255 for 1-256).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct nexthop_grp
{
    public uint id;
    public byte weight;
    public byte resvd1;
    public ushort resvd2;
}

[StructLayout(LayoutKind.Sequential)]
internal struct rtmsg
{
    public byte rtm_family;
    public byte rtm_dst_len;
    public byte rtm_src_len;
    public byte rtm_tos;
    public byte rtm_table;
    public byte rtm_protocol;
    public byte rtm_scope;
    public byte rtm_type;
    public uint rtm_flags;
}

[StructLayout(LayoutKind.Sequential)]
internal struct fib_rule_hdr
{
    public byte family;
    public byte dst_len;
    public byte src_len;
    public byte tos;
    public byte table;
    public byte res1;
    public byte res2;
    public byte action;
    public uint flags;
}

[StructLayout(LayoutKind.Sequential)]
internal struct fib_rule_port_range
{
    public ushort start;
    public ushort end;
}

[StructLayout(LayoutKind.Sequential)]
internal struct fib_rule_uid_range
{
    public uint start;
    public uint end;
}

[StructLayout(LayoutKind.Sequential)]
internal struct ifinfomsg
{
    public byte ifi_family;
    public byte __ifi_pad;
    public ushort ifi_type;
    public int ifi_index;
    public uint ifi_flags;
    public uint ifi_change;
}

[StructLayout(LayoutKind.Sequential)]
internal struct ifaddrmsg
{
    public byte ifa_family;
    public byte ifa_prefixlen;
    public byte ifa_flags;
    public byte ifa_scope;
    public uint ifa_index;
}

/// <summary>The header of every nfnetlink message (&lt;linux/netfilter/nfnetlink.h&gt;); res_id is big-endian.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct nfgenmsg
{
    public byte nfgen_family;
    public byte version;
    public ushort res_id;
}
