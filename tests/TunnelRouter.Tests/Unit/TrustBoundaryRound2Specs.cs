using System.Net.Sockets;
using System.Runtime.InteropServices;
using TunnelRouter.Config;
using TunnelRouter.Host;
using TunnelRouter.Interop;
using TunnelRouter.Kernel;
using TunnelRouter.Kernel.Netlink;
using TunnelRouter.Policy;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>Issue 22, the pure half and the event socket: bounded work for any input, kernel names as data, and no
/// datagram but the kernel's read as an event.</summary>
public sealed class TrustBoundaryRound2Specs
{
    InputErrors ParseErrors(TunnelRouterOptions o, Func<string, TextReader>? open = null) =>
        Assert.Throws<InputErrors>(() => PolicyParser.Parse(o, Iproute2Files.Of(), "policy.json", open));

    [Fact]
    public void A_thousand_bad_rules_stop_at_twenty_errors_saying_how_many_lines_were_not_checked()
    {
        var errors = ParseErrors(new TunnelRouterOptions { Rules = [.. Enumerable.Repeat("x", 1000)] });

        Assert.Equal(InputErrors.Max + 1, errors.Errors.Count);
        Assert.Equal("policy.json: Rules: 980 more line(s) not checked: stopped after 20 errors", errors.Errors[^1].Message);
    }

    [Fact]
    public void Bad_rules_and_bad_routes_together_are_still_at_most_twenty_one_lines()
    {
        var errors = ParseErrors(new TunnelRouterOptions { Rules = [.. Enumerable.Repeat("x", 15)], Routes = [.. Enumerable.Repeat("y", 15)] });

        Assert.Equal(InputErrors.Max + 1, errors.Errors.Count);
        Assert.Equal("policy.json: Routes: 10 more line(s) not checked: stopped after 20 errors", errors.Errors[^1].Message);
    }

    [Fact]
    public void A_prefix_line_longer_than_the_cap_is_refused_at_the_cap_naming_its_line()
    {
        var o = new TunnelRouterOptions
        {
            Tables = new() { ["vpn"] = 200 },
            PrefixLists = [new PrefixListOptions { File = "/lists/one-line.txt", Route = "dev tun0 table vpn" }],
        };

        var e = Assert.Throws<InputException>(() => PolicyParser.Parse(o, Iproute2Files.Of(), "policy.json",
            _ => new StringReader("10.0.0.0/8\n" + new string('1', 1 << 20))));

        Assert.Equal("/lists/one-line.txt:2: the line is longer than 4096 characters; expected one prefix a line", e.Message);
        Assert.Throws<InvalidDataException>(() => PrefixFile.Lines(new StringReader(new string('1', 5000)), 4096).Count());
        Assert.Single(PrefixFile.Lines(new StringReader(new string('1', 4096)), 4096));
    }

    [Fact]
    public void A_link_name_with_control_characters_in_ips_json_is_a_name_not_a_crash()
    {
        // As ip -j prints it: the kernel's bytes inside the string, ESC and all.
        const string json = "[{\"ifindex\":7,\"ifname\":\"e\u001b[31m\",\"flags\":[\"BROADCAST\",\"UP\"],\"mtu\":1500,\"operstate\":\"UP\",\"link_type\":\"ether\",\"addr_info\":[]}]";

        var link = Assert.Single(IpBackend.ParseLinks(json));

        Assert.Equal("e\u001b[31m", link.Name);
        Assert.Equal(json.Replace("\u001b", "\\u001b"), IpJson.Escaped(json));
    }

    [Fact]
    public void An_event_datagram_from_another_socket_is_dropped_like_on_the_request_socket()
    {
        using var events = NetlinkEvents.Open([148]);
        // A forged "the kill switch of table 200 was deleted" (RTM_DELROUTE, unreachable default, our protocol), sent by a
        // process to the event socket's port: were it read, watch would restore at once on someone else's word.
        var message = new byte[28];
        BitConverter.TryWriteBytes(message.AsSpan(0), 28u);
        BitConverter.TryWriteBytes(message.AsSpan(4), (ushort)25);
        message[16] = (byte)AddressFamily.InterNetwork;
        message[20] = 200; // rtm_table
        message[21] = 148; // rtm_protocol
        message[23] = 7; // RTN_UNREACHABLE
        var fd = Libc.socket(Libc.AF_NETLINK, Libc.SOCK_RAW | Libc.SOCK_CLOEXEC, 0);
        Assert.True(fd >= 0, $"socket(AF_NETLINK): errno {Marshal.GetLastPInvokeError()}");
        using var forger = new SafeSocketHandle(fd, ownsHandle: true);
        // struct sockaddr_nl: nl_family, a pad, nl_pid (the event socket's port), nl_groups.
        var to = new byte[12];
        BitConverter.TryWriteBytes(to.AsSpan(0), (ushort)Libc.AF_NETLINK);
        BitConverter.TryWriteBytes(to.AsSpan(4), events.PortId);

        Assert.Equal(28, (int)sendto(fd, message, (nuint)message.Length, 0, to, (uint)to.Length));
        var batch = events.Read(500);

        Assert.Equal(default, batch);
    }

    [DllImport("libc", SetLastError = true)]
    static extern nint sendto(int sockfd, byte[] buf, nuint len, int flags, byte[] destAddr, uint addrlen);
}
