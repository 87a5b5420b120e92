using System.Runtime.InteropServices;
using TunnelRouter.Interop;

namespace TunnelRouter.Kernel.Netlink;

/// <summary>What a batch of rtnetlink notifications means to watch.</summary>
/// <param name="Touched">an event touched owned state or a device something may wait for.</param>
/// <param name="Lost">the socket overflowed (ENOBUFS): events were lost, so everything must be read again.</param>
/// <param name="Urgent">a kill switch or a rule into a closed table was deleted: restored without the debounce.</param>
/// <param name="Down">the indexes of links reported administratively down (the kernel drops their routes without a word
/// of each), or null: what watch puts back on them was not deleted by anyone.</param>
public readonly record struct EventBatch(int Count, bool Touched, bool Lost, bool Urgent = false, IReadOnlyList<int>? Down = null);

/// <summary>
/// A NETLINK_ROUTE socket subscribed to the multicast groups of links, addresses, IPv4 and IPv6 routes and IPv4
/// and IPv6 rules (tailscale watches IPv4 rules only). Equivalent to: ip monitor link address route rule.
/// Route notifications are filtered by protocol: a gateway with 10,000 foreign routes churning only wakes watch
/// for routes of its own.
/// </summary>
public sealed unsafe class NetlinkEvents : IDisposable
{
    // RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE, RTMGRP_IPV4_RULE, RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE, and
    // RTNLGRP_IPV6_RULE (19), which has no RTMGRP_ constant: group n is bit n-1.
    const uint Groups = 0x1 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | (1u << (19 - 1));

    readonly LibcNetlinkTransport _socket;
    readonly HashSet<byte> _protocols;
    readonly byte[] _buffer = new byte[64 * 1024];

    NetlinkEvents(LibcNetlinkTransport socket, IEnumerable<byte> protocols)
    {
        _socket = socket;
        _protocols = [.. protocols];
    }

    /// <param name="protocols">the route protocols whose routes are ours (apply's and the hook's).</param>
    public static NetlinkEvents Open(IEnumerable<byte> protocols)
    {
        var events = new NetlinkEvents(LibcNetlinkTransport.Subscribe(Groups), protocols);
        // A flush of 10,000 routes is 10,000 notifications at once: room for them, so that few are lost.
        events._socket.GrowReceiveBuffer(8 << 20);
        return events;
    }

    /// <summary>The socket's port id: a process with CAP_NET_ADMIN could aim datagrams at it (they are dropped).</summary>
    internal uint PortId => _socket.PortId;

    /// <summary>The closed tables (FailClosed's): the deletion of a rule into one is <see cref="EventBatch.Urgent"/>.</summary>
    public IReadOnlySet<uint> Closed { get; set; } = new HashSet<uint>();

    /// <summary>Waits up to <paramref name="timeoutMs"/> for notifications and reads every one queued, without blocking further.</summary>
    public EventBatch Read(int timeoutMs)
    {
        var pfd = new pollfd { fd = _socket.Fd, events = Libc.POLLIN };
        var ready = Libc.poll(&pfd, 1, timeoutMs);
        if (ready <= 0) return default;
        int count = 0;
        bool touched = false, urgent = false;
        List<int>? down = null;
        var drained = _socket.Drain(_buffer, (in nlmsghdr h, ReadOnlySpan<byte> payload) =>
        {
            count++;
            if (Touches(h.nlmsg_type, payload, _protocols)) touched = true;
            if (!urgent && Urgent(h.nlmsg_type, payload, _protocols, Closed)) urgent = true;
            if (WentDown(h.nlmsg_type, payload) is { } index) (down ??= []).Add(index);
        });
        if (drained.Errno != 0) throw NetlinkException.Of("recvmsg(netlink events)", drained.Errno);
        // Lost, or cut short (larger than the buffer): what was said is unknown, so everything is read again.
        return new EventBatch(count, touched, drained.Lost || drained.CutShort, urgent, down);
    }

    /// <summary>The index of a link a notification says is not up (RTM_NEWLINK without IFF_UP), else null.</summary>
    internal static int? WentDown(ushort type, ReadOnlySpan<byte> payload)
    {
        if (type != Nl.RTM_NEWLINK || payload.Length < sizeof(ifinfomsg)) return null;
        var m = MemoryMarshal.Read<ifinfomsg>(payload);
        return (m.ifi_flags & Nl.IFF_UP) == 0 ? m.ifi_index : null;
    }

    /// <summary>Links and addresses always (a device appears or goes, an uplink gets its address); rules always
    /// (they are few, and a flush takes the kernel's own too); routes only of our protocols.</summary>
    internal static bool Touches(ushort type, ReadOnlySpan<byte> payload, IReadOnlySet<byte> protocols) => type switch
    {
        Nl.RTM_NEWLINK or Nl.RTM_DELLINK or Nl.RTM_NEWADDR or Nl.RTM_DELADDR or Nl.RTM_NEWRULE or Nl.RTM_DELRULE => true,
        Nl.RTM_NEWROUTE or Nl.RTM_DELROUTE => payload.Length >= sizeof(rtmsg) && protocols.Contains(MemoryMarshal.Read<rtmsg>(payload).rtm_protocol),
        _ => false,
    };

    /// <summary>
    /// A deletion that opens a fail-closed table: an owned unreachable default (a kill switch), or a rule that looked up
    /// a closed table (its selector; any owner: a pool rule too). Not worth the debounce: each millisecond of it is a
    /// millisecond of traffic refused (the rule gone: sent by main).
    /// </summary>
    internal static bool Urgent(ushort type, ReadOnlySpan<byte> payload, IReadOnlySet<byte> protocols, IReadOnlySet<uint> closed)
    {
        switch (type)
        {
            case Nl.RTM_DELROUTE when payload.Length >= sizeof(rtmsg):
            {
                var m = MemoryMarshal.Read<rtmsg>(payload);
                return m.rtm_type == RtnUnreachable && m.rtm_dst_len == 0 && protocols.Contains(m.rtm_protocol);
            }
            case Nl.RTM_DELRULE when closed.Count > 0 && payload.Length >= sizeof(fib_rule_hdr):
            {
                var h = MemoryMarshal.Read<fib_rule_hdr>(payload);
                if (h.action != (byte)Core.RuleAction.Lookup) return false;
                uint table = h.table;
                var attrs = NetlinkReader.AttributesAfter(payload, sizeof(fib_rule_hdr));
                while (NetlinkReader.NextAttribute(ref attrs, out var t, out var value))
                    if (t == Nl.FRA_TABLE) table = NetlinkReader.U32(value);
                return closed.Contains(table);
            }
            default:
                return false;
        }
    }

    /// <summary>RTN_UNREACHABLE: the kernel's type of an unreachable route.</summary>
    const byte RtnUnreachable = 7;

    public void Dispose() => _socket.Dispose();
}
