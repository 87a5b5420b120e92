namespace TunnelRouter;

/// <summary>The errno values TunnelRouter tells apart, with their C names, and iproute2's messages mapped back to them.</summary>
public static class Errno
{
    public const int EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EAGAIN = 11, ENOMEM = 12, EACCES = 13,
        EBUSY = 16, EEXIST = 17, ENODEV = 19, EINVAL = 22, ENETUNREACH = 101, ENOBUFS = 105,
        EADDRNOTAVAIL = 99, EOPNOTSUPP = 95, EAFNOSUPPORT = 97, EBADMSG = 74;

    /// <summary>Maps the messages iproute2 prints ("RTNETLINK answers: File exists") back to errno.</summary>
    public static int FromMessage(string text) => text switch
    {
        _ when text.Contains("File exists") => EEXIST,
        _ when text.Contains("No such process") => ESRCH,
        // iproute2 prints the kernel's extended ack instead of strerror when there is one.
        _ when text.Contains("FIB table does not exist") => ESRCH,
        _ when text.Contains("ddress not found") => EADDRNOTAVAIL,
        _ when text.Contains("No such file or directory") => ENOENT,
        _ when text.Contains("No such device") || text.Contains("Cannot find device") => ENODEV,
        _ when text.Contains("Operation not permitted") => EPERM,
        _ when text.Contains("Permission denied") => EACCES,
        _ when text.Contains("Device or resource busy") => EBUSY,
        _ when text.Contains("Resource temporarily unavailable") => EAGAIN,
        _ when text.Contains("No buffer space available") => ENOBUFS,
        _ when text.Contains("Network is unreachable") || text.Contains("Nexthop has invalid gateway") => ENETUNREACH,
        _ when text.Contains("Invalid argument") => EINVAL,
        _ when text.Contains("Cannot assign requested address") => EADDRNOTAVAIL,
        _ when text.Contains("Operation not supported") => EOPNOTSUPP,
        _ when text.Contains("Address family not supported") => EAFNOSUPPORT,
        _ => 0,
    };
}
