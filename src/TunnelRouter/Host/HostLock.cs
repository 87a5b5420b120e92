using System.Diagnostics;
using System.Runtime.InteropServices;
using TunnelRouter.Interop;

namespace TunnelRouter.Host;

/// <summary>
/// One host-wide lock (flock on a file under /run) that serialises every TunnelRouter process that reads
/// and changes the kernel: eduVPN starts up to 64 OpenVPN processes whose hooks fire at once. flock is
/// released by the kernel when the process dies, so a killed run never leaves the host locked.
/// </summary>
public sealed class HostLock : IDisposable
{
    int _fd;

    HostLock(int fd) => _fd = fd;

    public static HostLock Acquire(string path, TimeSpan timeout) => Take(path, timeout)!;

    /// <summary>The lock if nobody holds it, else null: for what runs once per host (watch).</summary>
    public static HostLock? TryAcquire(string path) => Take(path, null);

    static HostLock? Take(string path, TimeSpan? timeout)
    {
        // 0755 from mkdir itself, whatever the umask (OpenVPN may run hooks with umask 0): never 0777 for a moment.
        SafeDirectory.Ensure(Path.GetDirectoryName(Path.GetFullPath(path))!, SafeDirectory.Mode755, "the lock file");
        // 0600: nobody but root may hold (and so block) the lock. O_NONBLOCK: a FIFO put at its name must not
        // block the open.
        var fd = Libc.open(path, Libc.O_RDWR | Libc.O_CREAT | Libc.O_CLOEXEC | Libc.O_NOFOLLOW | Libc.O_NONBLOCK | Libc.O_NOCTTY, 0b110_000_000);
        if (fd < 0)
            throw new EnvironmentException($"cannot open lock file {path}: {Marshal.GetLastPInvokeErrorMessage()}");
        try { CheckLockFile(path, fd); }
        catch { Libc.close(fd); throw; }

        var clock = Stopwatch.StartNew();
        var pause = 1;
        while (Libc.flock(fd, Libc.LOCK_EX | Libc.LOCK_NB) != 0)
        {
            if (timeout is null)
            {
                Libc.close(fd);
                return null;
            }
            if (clock.Elapsed > timeout)
            {
                Libc.close(fd);
                throw new EnvironmentException($"another tunnel-router held {path} for more than {timeout.Value.TotalSeconds:0} s; is one stuck?");
            }
            Thread.Sleep(pause);
            pause = Math.Min(pause * 2, 20);
        }
        return new HostLock(fd);
    }

    /// <summary>A regular file of root's; a lock left wider than 0600 is narrowed, so that nobody else can
    /// hold it and stall every hook until the timeout (fatal to OpenVPN).</summary>
    static void CheckLockFile(string path, int fd)
    {
        if (Stat.OfDescriptor(fd) is not { } st)
            throw new EnvironmentException($"cannot stat lock file {path}: {Marshal.GetLastPInvokeErrorMessage()}");
        if (!st.IsRegular)
            throw new EnvironmentException($"lock file {path} is not a regular file; refusing it (remove it)");
        if (st.Uid != Libc.geteuid())
            throw new EnvironmentException($"lock file {path} is owned by uid {st.Uid}, not root; refusing it (remove it)");
        if ((st.Permissions & ~0b110_000_000u) != 0 && Libc.fchmod(fd, 0b110_000_000) != 0)
            throw new EnvironmentException($"cannot chmod 600 lock file {path}: {Marshal.GetLastPInvokeErrorMessage()}");
    }

    public void Dispose()
    {
        if (_fd <= 0) return;
        Libc.flock(_fd, Libc.LOCK_UN);
        Libc.close(_fd);
        _fd = 0;
    }
}
