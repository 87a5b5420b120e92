using System.Runtime.InteropServices;

namespace TunnelRouter.Interop;

/// <summary>socket(2), bind(2), send(2), recvmsg(2), setsockopt(2), getsockname(2) for the netlink socket. C names kept;
/// Kernel/Netlink turns their errno into exceptions.</summary>
internal static unsafe partial class Libc
{
    public const int AF_NETLINK = 16;
    public const int SOCK_RAW = 3, SOCK_CLOEXEC = 0x80000;
    public const int SOL_SOCKET = 1, SO_SNDBUF = 7, SO_RCVBUF = 8, SO_SNDBUFFORCE = 32, SO_RCVBUFFORCE = 33;
    public const int MSG_TRUNC = 0x20;

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    public static partial int socket(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "bind", SetLastError = true)]
    public static partial int bind(int sockfd, void* addr, uint addrlen);

    [LibraryImport("libc", EntryPoint = "send", SetLastError = true)]
    public static partial nint send(int sockfd, void* buf, nuint len, int flags);

    [LibraryImport("libc", EntryPoint = "recvmsg", SetLastError = true)]
    public static partial nint recvmsg(int sockfd, msghdr* msg, int flags);

    [LibraryImport("libc", EntryPoint = "setsockopt", SetLastError = true)]
    public static partial int setsockopt(int sockfd, int level, int optname, void* optval, uint optlen);

    [LibraryImport("libc", EntryPoint = "getsockname", SetLastError = true)]
    public static partial int getsockname(int sockfd, void* addr, uint* addrlen);

    public const int MSG_DONTWAIT = 0x40;

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    public static partial int poll(pollfd* fds, nuint nfds, int timeout);

    public const short POLLIN = 0x1;

    [LibraryImport("libc", EntryPoint = "if_indextoname", SetLastError = true)]
    public static partial byte* if_indextoname(uint ifindex, byte* ifname);

    public const int IF_NAMESIZE = 16;

    /// <summary>null when no interface has that index (any more).</summary>
    public static string? InterfaceName(uint index)
    {
        var buffer = stackalloc byte[IF_NAMESIZE];
        return if_indextoname(index, buffer) == null ? null : Marshal.PtrToStringUTF8((nint)buffer);
    }
}

#pragma warning disable IDE1006, CS8981 // C names

[StructLayout(LayoutKind.Sequential)]
internal struct pollfd
{
    public int fd;
    public short events;
    public short revents;
}

[StructLayout(LayoutKind.Sequential)]
internal struct sockaddr_nl
{
    public ushort nl_family;
    public ushort nl_pad;
    public uint nl_pid;
    public uint nl_groups;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct iovec
{
    public void* iov_base;
    public nuint iov_len;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct msghdr
{
    public void* msg_name;
    public uint msg_namelen;
    public iovec* msg_iov;
    public nuint msg_iovlen;
    public void* msg_control;
    public nuint msg_controllen;
    public int msg_flags;
}
