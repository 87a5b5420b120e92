namespace TunnelRouter.Kernel.Netlink;

/// <summary>The kernel refused a netlink request, a netlink syscall failed, or what came back was not a
/// well-formed answer; <see cref="KernelException.Errno"/> says why.</summary>
public sealed class NetlinkException(string message, Exception? inner = null) : KernelException(message, inner)
{
    /// <summary>strerror(3) text, as iproute2 prints it after "RTNETLINK answers:".</summary>
    public static string Describe(int errno) => System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno);

    public static NetlinkException Of(string what, int errno, string? kernelText = null) =>
        new($"{what}: {Describe(errno)}{(string.IsNullOrEmpty(kernelText) ? "" : $" ({kernelText})")}") { Errno = errno };

    /// <summary>A message or attribute too short for what its type says it holds.</summary>
    public static NetlinkException Malformed(string what) =>
        new($"netlink: malformed answer from the kernel: {what}") { Errno = TunnelRouter.Errno.EBADMSG };
}
