using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using TunnelRouter.Interop;

namespace TunnelRouter.Kernel;

/// <summary>
/// A file root owns and rewrites outside the kernel (iproute2's name drop-ins, a routing daemon's
/// configuration): read without following links, replaced atomically, in a directory nobody else can write.
/// </summary>
public static class OwnedFile
{
    const UnixFileMode FileMode644 = (UnixFileMode)0b110_100_100;

    /// <summary>The largest file read back by default: anything near this is not ours.</summary>
    public const int MaxBytes = 1 << 20;

    /// <summary>The file's text; null when there is none. Never through a symlink, and only a regular file of
    /// root's (one that is someone else's could be a secret root would republish 0644).</summary>
    public static string? Read(string path, int maxBytes = MaxBytes)
    {
        using var handle = Open(path, (ulong)maxBytes, out var size);
        if (handle is null) return null;
        var buffer = new byte[size];
        var total = 0;
        while (total < buffer.Length)
        {
            var n = RandomAccess.Read(handle, buffer.AsSpan(total), total);
            if (n == 0) break;
            total += n;
        }
        return System.Text.Encoding.UTF8.GetString(buffer, 0, total);
    }

    /// <summary>Whether the file holds exactly <paramref name="text"/> (UTF-8), compared a block at a time: a policy of
    /// 100,000 lines (several MB) is never read whole beside its own text. False when there is no such file.</summary>
    public static bool Holds(string path, string text)
    {
        using var handle = Open(path, ulong.MaxValue, out _);
        if (handle is null) return false;
        var encoder = System.Text.Encoding.UTF8.GetEncoder();
        var mine = new byte[3 * 16384];
        var theirs = new byte[mine.Length];
        var chars = text.AsSpan();
        long offset = 0;
        while (true)
        {
            var take = Math.Min(chars.Length, 16384);
            var n = encoder.GetBytes(chars[..take], mine, flush: take == chars.Length);
            chars = chars[take..];
            for (var got = 0; got < n;)
            {
                var r = RandomAccess.Read(handle, theirs.AsSpan(got, n - got), offset + got);
                if (r == 0) return false;
                got += r;
            }
            if (!mine.AsSpan(0, n).SequenceEqual(theirs.AsSpan(0, n))) return false;
            offset += n;
            if (chars.Length == 0) return RandomAccess.Read(handle, theirs.AsSpan(0, 1), offset) == 0;
        }
    }

    /// <summary>The file opened for reading, never through a symlink, and only a regular file of root's under
    /// <paramref name="maxBytes"/>; null when there is none.</summary>
    static SafeFileHandle? Open(string path, ulong maxBytes, out ulong size)
    {
        size = 0;
        var fd = Libc.open(path, Libc.O_RDONLY | Libc.O_CLOEXEC | Libc.O_NOFOLLOW | Libc.O_NONBLOCK | Libc.O_NOCTTY, 0);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == Libc.ENOENT) return null;
            throw new EnvironmentException(errno == Libc.ELOOP
                ? $"{path} is a symlink; refusing to write through it (remove it)"
                : $"cannot read {path}: {Marshal.GetLastPInvokeErrorMessage()}");
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        if (Stat.OfDescriptor(fd) is not { } st || !st.IsRegular || st.Uid != Libc.geteuid() || st.Size > maxBytes)
        {
            handle.Dispose();
            throw new EnvironmentException($"{path} is not a regular file of root's under {maxBytes >> 10} KiB; refusing to rewrite it (remove it)");
        }
        size = st.Size;
        return handle;
    }

    /// <summary>A temporary file's suffix nobody could have prepared: 16 hex digits from the runtime's OS-seeded
    /// generator (O_EXCL does the rest). Not RandomNumberGenerator, which loads OpenSSL on the hook's path.</summary>
    public static string TempSuffix() => Random.Shared.NextInt64().ToString("X16", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Replaces <paramref name="path"/> atomically: a new file under a random name nobody could have
    /// prepared (O_EXCL: a symlink there fails the create), 0644 (or <paramref name="mode"/>) set through the handle
    /// whatever the umask, synced, renamed over the old one, and the directory synced, so a crash leaves the old file or
    /// the new one. <paramref name="durable"/> false: no syncs, for a file under /run (tmpfs, emptied by any crash that a
    /// sync would guard against).</summary>
    public static void Replace(string path, string text, UnixFileMode mode = FileMode644, bool durable = true)
    {
        var dir = Path.GetDirectoryName(path)!;
        var tmp = $"{path}.tmp.{TempSuffix()}";
        try
        {
            using (var f = new FileStream(tmp, new FileStreamOptions
                   {
                       Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, UnixCreateMode = mode,
                   }))
            {
                File.SetUnixFileMode(f.SafeFileHandle, mode);
                f.Write(System.Text.Encoding.UTF8.GetBytes(text));
                f.Flush(flushToDisk: durable);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            File.Delete(tmp);
            throw;
        }
        if (durable) SyncDirectory(dir);
    }

    static void SyncDirectory(string dir)
    {
        var fd = Libc.open(dir, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
        if (fd < 0) return;
        Libc.fsync(fd);
        Libc.close(fd);
    }

    /// <summary>StrictModes for a directory root writes into: a real directory, root's, writable by nobody
    /// else (or someone else could put a symlink at the file's name and have root write, or chmod, any file).</summary>
    public static void CheckDirectory(string dir, string what)
    {
        if (Stat.NoFollow(dir) is not { } st)
            throw new EnvironmentException($"cannot stat {dir}: {Marshal.GetLastPInvokeErrorMessage()}");
        if (!st.IsDirectory)
            throw new EnvironmentException($"{dir} is not a directory (a symlink?); refusing to write {what} there");
        if (st.Uid != Libc.geteuid())
            throw new EnvironmentException($"{dir} is owned by uid {st.Uid}, not root; refusing to write {what} there (chown root {dir})");
        if ((st.Permissions & 0b000_010_010) != 0)
            throw new EnvironmentException($"{dir} is writable by group or others (mode {Convert.ToString(st.Permissions, 8)}); refusing to write {what} there (chmod go-w {dir})");
    }
}
