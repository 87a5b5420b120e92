using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace TunnelRouter.Cli;

/// <summary>
/// One ICMP echo from a chosen source address, for the demo: binding the source is what makes the kernel
/// take the "from POOL lookup vpn" rule, and the ping tool (which can do it) is not on every host.
/// A raw socket, as root; IPv6 raw ICMP sockets get their checksum from the kernel.
/// </summary>
public static class DemoPing
{
    public static int Run(TextWriter output, string sourceText, string destinationText)
    {
        if (!IPAddress.TryParse(sourceText, out var source)) throw new InputException("--lab-ping-from", $"'{Core.Net.Printable(sourceText)}' is not an address");
        if (!IPAddress.TryParse(destinationText, out var destination) || destination.AddressFamily != source.AddressFamily)
            throw new InputException("--lab-ping-to", $"'{Core.Net.Printable(destinationText)}' is not an address of the source's family");
        var v6 = destination.AddressFamily == AddressFamily.InterNetworkV6;
        using var socket = new Socket(destination.AddressFamily, SocketType.Raw, v6 ? ProtocolType.IcmpV6 : ProtocolType.Icmp);
        socket.Bind(new IPEndPoint(source, 0));
        socket.ReceiveTimeout = 1000;

        var id = (ushort)Environment.ProcessId;
        var clock = Stopwatch.StartNew();
        var buffer = new byte[1500];
        // One request a second for up to three: a link that has just come up may answer its first neighbour
        // solicitation late, and the request that needed it is then lost.
        for (ushort seq = 1; seq <= Attempts; seq++)
        {
            socket.SendTo(Request(v6, id, seq), new IPEndPoint(destination, 0));
            var sent = clock.Elapsed;
            while (clock.Elapsed - sent < TimeSpan.FromSeconds(1))
            {
                EndPoint from = new IPEndPoint(v6 ? IPAddress.IPv6Any : IPAddress.Any, 0);
                int n;
                try { n = socket.ReceiveFrom(buffer, ref from); }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock) { break; }
                // An IPv4 raw socket hands over the IP header too; IPv6 only the ICMPv6 message.
                var icmp = v6 ? buffer.AsSpan(0, n) : buffer.AsSpan((buffer[0] & 0x0f) * 4, n - (buffer[0] & 0x0f) * 4);
                var reply = v6 ? (byte)129 : (byte)0;
                if (icmp.Length >= 8 && icmp[0] == reply && BinaryPrimitives.ReadUInt16BigEndian(icmp[4..]) == id
                    && ((IPEndPoint)from).Address.Equals(destination))
                {
                    output.WriteLine($"ping {destination} from {source}: reply in {(clock.Elapsed - sent).TotalMilliseconds:0.00} ms");
                    return App.Ok;
                }
            }
        }
        output.WriteLine($"ping {destination} from {source}: no reply to {Attempts} requests");
        return App.Failed;
    }

    const int Attempts = 3;

    static byte[] Request(bool v6, ushort id, ushort seq)
    {
        var request = new byte[16];
        request[0] = v6 ? (byte)128 : (byte)8; // echo request
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(4), id);
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(6), seq);
        "tunnel-r"u8.CopyTo(request.AsSpan(8));
        if (!v6) BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(2), Checksum(request));
        return request;
    }

    static ushort Checksum(ReadOnlySpan<byte> data)
    {
        uint sum = 0;
        for (var i = 0; i + 1 < data.Length; i += 2) sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
        if (data.Length % 2 == 1) sum += (uint)data[^1] << 8;
        while (sum >> 16 != 0) sum = (sum & 0xffff) + (sum >> 16);
        return (ushort)~sum;
    }
}
