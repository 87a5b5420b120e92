namespace TunnelRouter.Kernel;

/// <summary>The kernel refused a netlink request or a netlink syscall failed; <see cref="KernelException.Errno"/> says why.</summary>
public sealed class NetlinkException(string message, Exception? inner = null) : KernelException(message, inner)
{
    /// <summary>strerror(3) text, as iproute2 prints it after "RTNETLINK answers:".</summary>
    public static string Describe(int errno) => System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno);
}
