namespace TunnelRouter.Kernel.Netlink;

#pragma warning disable IDE1006 // C names

/// <summary>Constants of &lt;linux/netlink.h&gt;, &lt;linux/rtnetlink.h&gt;, &lt;linux/fib_rules.h&gt;,
/// &lt;linux/if_link.h&gt;, &lt;linux/if_addr.h&gt;, with their C names.</summary>
internal static class Nl
{
    public const int NETLINK_ROUTE = 0, NETLINK_NETFILTER = 12;
    public const int SOL_NETLINK = 270;
    public const int NETLINK_CAP_ACK = 10, NETLINK_EXT_ACK = 11, NETLINK_GET_STRICT_CHK = 12;

    // nlmsg_type
    public const ushort NLMSG_NOOP = 1, NLMSG_ERROR = 2, NLMSG_DONE = 3, NLMSG_OVERRUN = 4;
    public const ushort RTM_NEWLINK = 16, RTM_DELLINK = 17, RTM_GETLINK = 18, RTM_SETLINK = 19;
    public const ushort RTM_NEWADDR = 20, RTM_DELADDR = 21, RTM_GETADDR = 22;
    public const ushort RTM_NEWROUTE = 24, RTM_DELROUTE = 25, RTM_GETROUTE = 26;
    public const ushort RTM_NEWRULE = 32, RTM_DELRULE = 33, RTM_GETRULE = 34;
    public const ushort RTM_NEWNEXTHOP = 104, RTM_DELNEXTHOP = 105, RTM_GETNEXTHOP = 106;

    // nlmsg_flags
    public const ushort NLM_F_REQUEST = 0x1, NLM_F_MULTI = 0x2, NLM_F_ACK = 0x4, NLM_F_DUMP_INTR = 0x10;
    public const ushort NLM_F_ROOT = 0x100, NLM_F_MATCH = 0x200, NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
    public const ushort NLM_F_REPLACE = 0x100, NLM_F_EXCL = 0x200, NLM_F_CREATE = 0x400;
    // flags of an ack
    public const ushort NLM_F_CAPPED = 0x100, NLM_F_ACK_TLVS = 0x200;
    public const ushort NLMSGERR_ATTR_MSG = 1;

    public const byte AF_UNSPEC = 0, AF_INET = 2, AF_INET6 = 10;

    // rtm_table
    public const byte RT_TABLE_UNSPEC = 0;
    // rtm_protocol
    public const byte RTPROT_UNSPEC = 0;
    // rtm_scope
    public const byte RT_SCOPE_UNIVERSE = 0, RT_SCOPE_LINK = 253, RT_SCOPE_HOST = 254, RT_SCOPE_NOWHERE = 255;
    // rtm_type
    public const byte RTN_UNSPEC = 0, RTN_UNICAST = 1;
    // rtm_flags
    public const uint RTNH_F_ONLINK = 4, RTM_F_CLONED = 0x200;

    // route attributes (enum rtattr_type_t)
    public const ushort RTA_DST = 1, RTA_SRC = 2, RTA_IIF = 3, RTA_OIF = 4, RTA_GATEWAY = 5, RTA_PRIORITY = 6,
        RTA_PREFSRC = 7, RTA_METRICS = 8, RTA_MULTIPATH = 9, RTA_TABLE = 15, RTA_PREF = 20, RTA_NH_ID = 30;

    // nexthop attributes (linux/nexthop.h)
    public const ushort NHA_ID = 1, NHA_GROUP = 2, NHA_GROUP_TYPE = 3, NHA_BLACKHOLE = 4, NHA_OIF = 5, NHA_GATEWAY = 6;
    public const ushort RTAX_MTU = 2;

    // rule attributes
    public const ushort FRA_DST = 1, FRA_SRC = 2, FRA_IIFNAME = 3, FRA_GOTO = 4, FRA_PRIORITY = 6, FRA_FWMARK = 10,
        FRA_SUPPRESS_PREFIXLEN = 14, FRA_TABLE = 15, FRA_FWMASK = 16, FRA_OIFNAME = 17, FRA_UID_RANGE = 20,
        FRA_PROTOCOL = 21, FRA_IP_PROTO = 22, FRA_SPORT_RANGE = 23, FRA_DPORT_RANGE = 24;
    public const uint FIB_RULE_INVERT = 0x2;

    // link attributes
    public const ushort IFLA_ADDRESS = 1, IFLA_IFNAME = 3, IFLA_MTU = 4, IFLA_LINK = 5, IFLA_LINKINFO = 18, IFLA_IFALIAS = 20;
    public const ushort IFLA_INFO_KIND = 1, IFLA_INFO_DATA = 2;
    public const ushort IFLA_GRE_LINK = 1, IFLA_GRE_IFLAGS = 2, IFLA_GRE_OFLAGS = 3, IFLA_GRE_IKEY = 4, IFLA_GRE_OKEY = 5,
        IFLA_GRE_LOCAL = 6, IFLA_GRE_REMOTE = 7, IFLA_GRE_TTL = 8, IFLA_GRE_TOS = 9, IFLA_GRE_PMTUDISC = 10,
        IFLA_GRE_ENCAP_LIMIT = 11, IFLA_GRE_FLOWINFO = 12, IFLA_GRE_FLAGS = 13;
    // ip6_tnl flags (IFLA_GRE_FLAGS)
    public const uint IP6_TNL_F_USE_ORIG_TCLASS = 0x2;
    /// <summary>iproute2's default for ip6gre (IPV6_DEFAULT_TNL_ENCAP_LIMIT): the 8-byte option every packet carries.</summary>
    public const byte IPV6_DEFAULT_TNL_ENCAP_LIMIT = 4;
    public const ushort GRE_KEY = 0x2000; // big-endian on the wire, as the kernel's __be16 flags
    public const uint IFF_UP = 0x1;

    // address attributes
    public const ushort IFA_ADDRESS = 1, IFA_LOCAL = 2, IFA_LABEL = 3;

    public const int NLMSG_ALIGNTO = 4;
    public static int Align(int len) => (len + NLMSG_ALIGNTO - 1) & ~(NLMSG_ALIGNTO - 1);
}
