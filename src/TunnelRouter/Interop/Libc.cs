using System.Runtime.InteropServices;

namespace TunnelRouter.Interop;

/// <summary>The few libc calls TunnelRouter needs. C names kept; errno turned into exceptions by callers.</summary>
internal static partial class Libc
{
    public const int O_RDONLY = 0x0, O_WRONLY = 0x1, O_RDWR = 0x2, O_CREAT = 0x40, O_NOCTTY = 0x100, O_APPEND = 0x400,
        O_NONBLOCK = 0x800, O_DIRECTORY = 0x10000, O_NOFOLLOW = 0x20000, O_CLOEXEC = 0x80000;
    public const int ENOENT = 2, ELOOP = 40;
    public const int LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags, uint mode);

    [LibraryImport("libc", EntryPoint = "mkdir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mkdir(string path, uint mode);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    public static partial int flock(int fd, int operation);

    [LibraryImport("libc", EntryPoint = "fchmod", SetLastError = true)]
    public static partial int fchmod(int fd, uint mode);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    public static partial int fsync(int fd);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    public static partial int fcntl(int fd, int cmd, int arg);

    public const int F_GETFL = 3, F_SETFL = 4;

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport("libc", EntryPoint = "if_nametoindex", StringMarshalling = StringMarshalling.Utf8)]
    public static partial uint if_nametoindex(string name);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    public static partial uint geteuid();

    public const int SIGSTOP = 19;

    [LibraryImport("libc", EntryPoint = "getpid")]
    public static partial int getpid();

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int kill(int pid, int sig);

    /// <summary>0 when the interface does not exist in this network namespace.</summary>
    public static uint InterfaceIndex(string name) => if_nametoindex(name);
}
