namespace TunnelRouter.Kernel.Netlink;

/// <summary>Datagrams to and from the kernel's rtnetlink. <see cref="LibcNetlinkTransport"/> is the real
/// socket; specs hand <see cref="NetlinkSocket"/> a scripted one to feed it what a kernel (or an impostor)
/// might send.</summary>
internal interface INetlinkTransport : IDisposable
{
    void Send(ReadOnlySpan<byte> data);

    /// <summary>One datagram into <paramref name="buffer"/>; returns its full length (larger than the buffer
    /// when it was cut short) and the sender's port id (0: the kernel).</summary>
    int Receive(Span<byte> buffer, out uint senderPid);

    /// <summary>Best effort: a larger receive buffer for big batches and dumps.</summary>
    bool GrowReceiveBuffer(int bytes);
}
