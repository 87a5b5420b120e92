using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using TunnelRouter.Interop;

namespace TunnelRouter.Kernel.Netlink;

/// <summary>What the kernel says of an uplink at once, without waiting for probes: a link's carrier
/// (<paramref name="Carrier"/>), or a neighbour entry gone FAILED (<paramref name="Failed"/>, its address).</summary>
public readonly record struct UplinkSignal(int Index, bool? Carrier, IPAddress? Failed);

/// <summary>
/// A NETLINK_ROUTE socket subscribed to links and neighbours for watch's uplink tracking: a carrier lost (or the device
/// set down or deleted) and a gateway's neighbour entry going FAILED count at once. Equivalent to: ip monitor link neigh.
/// </summary>
public sealed unsafe class UplinkEvents : IDisposable
{
    const uint RTMGRP_LINK = 0x1, RTMGRP_NEIGH = 0x4;
    const ushort RTM_NEWNEIGH = 28;
    const ushort NDA_DST = 1;
    const ushort NUD_FAILED = 0x20;
    /// <summary>IFF_LOWER_UP: the carrier (the driver's "link detected").</summary>
    const uint IFF_LOWER_UP = 0x10000;

    readonly LibcNetlinkTransport _socket;
    readonly byte[] _buffer = new byte[64 * 1024];

    UplinkEvents(LibcNetlinkTransport socket) => _socket = socket;

    public static UplinkEvents Open() => new(LibcNetlinkTransport.Subscribe(RTMGRP_LINK | RTMGRP_NEIGH));

    public int Fd => _socket.Fd;

    /// <summary>Reads every queued notification without blocking; true when some were lost (the socket overflowed).</summary>
    public bool Read(List<UplinkSignal> signals) =>
        _socket.Drain(_buffer, (in nlmsghdr h, ReadOnlySpan<byte> payload) =>
        {
            if (Parse(h.nlmsg_type, payload) is { } s) signals.Add(s);
        }).Lost;

    internal static UplinkSignal? Parse(ushort type, ReadOnlySpan<byte> payload)
    {
        switch (type)
        {
            case Nl.RTM_NEWLINK or Nl.RTM_DELLINK when payload.Length >= sizeof(ifinfomsg):
            {
                var m = MemoryMarshal.Read<ifinfomsg>(payload);
                var carrier = type == Nl.RTM_NEWLINK && (m.ifi_flags & Nl.IFF_UP) != 0 && (m.ifi_flags & IFF_LOWER_UP) != 0;
                return new UplinkSignal(m.ifi_index, carrier, null);
            }
            case RTM_NEWNEIGH when payload.Length >= 12:
            {
                // struct ndmsg: family, pad, pad, ifindex, state, flags, type.
                var family = payload[0];
                var index = MemoryMarshal.Read<int>(payload[4..]);
                var state = MemoryMarshal.Read<ushort>(payload[8..]);
                if ((state & NUD_FAILED) == 0) return null;
                var attrs = NetlinkReader.AttributesAfter(payload, 12);
                while (NetlinkReader.NextAttribute(ref attrs, out var t, out var value))
                    if (t == NDA_DST && value.Length == (family == Nl.AF_INET6 ? 16 : 4))
                        return new UplinkSignal(index, null, NetlinkReader.Address(value));
                return null;
            }
            default:
                return null;
        }
    }

    public void Dispose() => _socket.Dispose();
}
