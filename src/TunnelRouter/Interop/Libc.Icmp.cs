using System.Runtime.InteropServices;

namespace TunnelRouter.Interop;

/// <summary>sendto(2), recvfrom(2) and the constants of raw ICMP and ICMPv6 sockets bound to an uplink's address and device
/// (watch's probes). C names kept; Kernel/IcmpProbe turns their errno into exceptions.</summary>
internal static unsafe partial class Libc
{
    public const int AF_INET = 2, AF_INET6 = 10;
    public const int SOCK_NONBLOCK = 0x800;
    public const int IPPROTO_ICMP = 1, IPPROTO_ICMPV6 = 58;
    public const int SO_BINDTODEVICE = 25;

    [LibraryImport("libc", EntryPoint = "sendto", SetLastError = true)]
    public static partial nint sendto(int sockfd, void* buf, nuint len, int flags, void* dest_addr, uint addrlen);

    [LibraryImport("libc", EntryPoint = "recvfrom", SetLastError = true)]
    public static partial nint recvfrom(int sockfd, void* buf, nuint len, int flags, void* src_addr, uint* addrlen);
}

#pragma warning disable IDE1006, CS8981 // C names

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct sockaddr_in
{
    public ushort sin_family;
    public ushort sin_port;
    public fixed byte sin_addr[4];
    public fixed byte sin_zero[8];
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct sockaddr_in6
{
    public ushort sin6_family;
    public ushort sin6_port;
    public uint sin6_flowinfo;
    public fixed byte sin6_addr[16];
    public uint sin6_scope_id;
}
