using System.Diagnostics;
using System.Runtime.InteropServices;
using TunnelRouter.Interop;

namespace TunnelRouter.Kernel;

/// <summary>
/// One host-wide lock (flock on a file under /run) that serialises every TunnelRouter process that reads
/// and changes the kernel: eduVPN starts up to 64 OpenVPN processes whose hooks fire at once. flock is
/// released by the kernel when the process dies, so a killed run never leaves the host locked.
/// </summary>
public sealed class HostLock : IDisposable
{
    int _fd;

    HostLock(int fd) => _fd = fd;

    public static HostLock Acquire(string path, TimeSpan timeout)
    {
        var dir = Path.GetDirectoryName(path);
        if (!string.IsNullOrEmpty(dir) && !Directory.Exists(dir))
        {
            try
            {
                Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                                               | UnixFileMode.GroupRead | UnixFileMode.GroupExecute
                                               | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new EnvironmentException($"cannot create the lock file's directory {dir}: {FrameworkMessages.Reason(e)}");
            }
        }
        // 0600: nobody but root may hold (and so block) the lock.
        var fd = Libc.open(path, Libc.O_RDWR | Libc.O_CREAT | Libc.O_CLOEXEC | Libc.O_NOFOLLOW, 0b110_000_000);
        if (fd < 0)
            throw new EnvironmentException($"cannot open lock file {path}: {Marshal.GetLastPInvokeErrorMessage()}");

        var clock = Stopwatch.StartNew();
        var pause = 1;
        while (Libc.flock(fd, Libc.LOCK_EX | Libc.LOCK_NB) != 0)
        {
            if (clock.Elapsed > timeout)
            {
                Libc.close(fd);
                throw new EnvironmentException($"another tunnel-router held {path} for more than {timeout.TotalSeconds:0} s; is one stuck?");
            }
            Thread.Sleep(pause);
            pause = Math.Min(pause * 2, 20);
        }
        return new HostLock(fd);
    }

    public void Dispose()
    {
        if (_fd <= 0) return;
        Libc.flock(_fd, Libc.LOCK_UN);
        Libc.close(_fd);
        _fd = 0;
    }
}
