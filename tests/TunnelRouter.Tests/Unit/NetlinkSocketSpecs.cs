using TunnelRouter.Kernel.Netlink;
using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.ScriptedNetlinkTransport;

namespace TunnelRouter.Tests.Unit;

/// <summary>What the netlink layer believes of what arrives: only the kernel, each ack once, nothing short.</summary>
public class NetlinkSocketSpecs
{
    static NetlinkWriter Requests(NetlinkSocket socket, int count, out uint first)
    {
        var w = new NetlinkWriter();
        first = socket.ReserveSequences(count);
        for (var i = 0; i < count; i++)
        {
            w.BeginMessage(Nl.RTM_NEWRULE, Nl.NLM_F_REQUEST | Nl.NLM_F_ACK, first + (uint)i);
            w.EndMessage();
        }
        return w;
    }

    [Fact]
    public void A_datagram_from_another_process_is_dropped_and_the_kernels_answer_counts()
    {
        var transport = new ScriptedNetlinkTransport();
        using var socket = new NetlinkSocket(transport, firstSequence: 1000);
        var requests = Requests(socket, 1, out var seq);
        // A local process forges "done" for our request; the kernel then says it failed.
        transport.Then(4242, Ack(seq)).Then(0, Ack(seq, errno: 17));

        var errnos = new int[1];
        socket.Exchange(requests, seq, errnos);

        Assert.Equal(17, errnos[0]);
        Assert.Equal(0, transport.Unread);
    }

    [Fact]
    public void A_duplicate_ack_does_not_count_for_a_request_still_waiting()
    {
        var transport = new ScriptedNetlinkTransport();
        using var socket = new NetlinkSocket(transport, firstSequence: 1000);
        var requests = Requests(socket, 2, out var first);
        transport.Then(0, Ack(first), Ack(first, errno: 3)).Then(0, Ack(first + 1, errno: 17));

        var errnos = new int[2];
        socket.Exchange(requests, first, errnos);

        Assert.Equal([0, 17], errnos);
        Assert.Equal(0, transport.Unread);
    }

    [Fact]
    public void Sequence_numbers_start_at_a_random_value()
    {
        var starts = Enumerable.Range(0, 4).Select(_ => new NetlinkSocket(new ScriptedNetlinkTransport()).PeekSequence).ToHashSet();

        // Four sockets starting at one value would be a fixed start (1 in 2^96 by chance).
        Assert.True(starts.Count > 1, $"every socket started at {starts.First()}");
    }

    [Fact]
    public void An_attribute_shorter_than_its_type_needs_is_a_netlink_error()
    {
        // An RTA_DST of 3 bytes: neither IPv4 nor IPv6.
        var payload = new byte[12 + 8];
        payload[0] = Nl.AF_INET;
        payload[1] = 24;
        payload[7] = 1; // RTN_UNICAST
        BitConverter.TryWriteBytes(payload.AsSpan(12), (ushort)7);
        BitConverter.TryWriteBytes(payload.AsSpan(14), Nl.RTA_DST);

        var e = Assert.Throws<NetlinkException>(() => NetlinkRoutes.Parse(payload, new InterfaceNames()));

        Assert.Equal(TunnelRouter.Errno.EBADMSG, e.Errno);
        Assert.Contains("3 bytes", e.Message);
    }

    [Fact]
    public void A_header_shorter_than_its_struct_is_a_netlink_error()
    {
        var e = Assert.Throws<NetlinkException>(() => NetlinkRules.Parse(new byte[5]));

        Assert.Contains("fib_rule_hdr is 5 bytes", e.Message);
    }

    [Fact]
    public void An_interrupted_dump_is_read_again_and_only_the_last_attempt_is_kept()
    {
        var transport = new ScriptedNetlinkTransport();
        using var socket = new NetlinkSocket(transport, firstSequence: 1000);
        var seen = new List<int>();
        transport
            .Then(0, Message(Nl.RTM_NEWRULE, 1001, [1], Nl.NLM_F_MULTI | Nl.NLM_F_DUMP_INTR), Done(1001))
            .Then(0, Message(Nl.RTM_NEWRULE, 1002, [2]), Done(1002));

        socket.Dump(new NetlinkWriter(), "the rules", (w, seq) => { w.BeginMessage(Nl.RTM_GETRULE, Nl.NLM_F_DUMP, seq); w.EndMessage(); },
            (in nlmsghdr h, ReadOnlySpan<byte> payload) => seen.Add(payload[0]), seen.Clear);

        Assert.Equal([2], seen);
        Assert.Equal(2, transport.Sent.Count);
    }
}
