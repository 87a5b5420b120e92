using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using TunnelRouter.Interop;

namespace TunnelRouter.Host;

/// <summary>Who may own a file root reads: root's own files (what it wrote), or also the user running the tool (a
/// policy an admin tries as themselves).</summary>
public enum FileOwner { Self, RootOrSelf }

/// <summary>A file refused by <see cref="SafeFile"/>; the message ends a sentence that names the file ("is a symlink").</summary>
public sealed class FileRefusedException(string reason) : TunnelRouterException(reason);

/// <summary>
/// The one way root reads a file someone else might have prepared (the policy, prefix files, records, name drop-ins,
/// a routing daemon's configuration, OpenVPN's config): opened without following a last symlink and without blocking
/// (a FIFO at the name cannot hang the hook), the descriptor fstat'ed (a regular file, its owner, its mode, its size)
/// and read from that descriptor up to a bound, so what was checked is what is read and a file that grows while it is
/// read is refused, never read whole.
/// </summary>
public static class SafeFile
{
    /// <summary>The file opened, or null when it does not exist. Checks the owner always; the mode when
    /// <paramref name="othersMayWrite"/> is false (files root takes orders from); the size against
    /// <paramref name="maxBytes"/>. Throws <see cref="FileRefusedException"/> saying why not.</summary>
    public static OpenedFile? Open(string path, long maxBytes, FileOwner owner = FileOwner.Self, bool othersMayWrite = true)
    {
        var file = OpenUnchecked(path);
        if (file is null) return null;
        try
        {
            var st = file.Status;
            RefuseUnlessRegular(st);
            var euid = Libc.geteuid();
            if (st.Uid != euid && !(owner == FileOwner.RootOrSelf && st.Uid == 0))
                throw new FileRefusedException($"is owned by uid {st.Uid}, not {(euid == 0 ? "root" : $"root or uid {euid}")}");
            if (!othersMayWrite && (st.Permissions & 0b000_010_010) != 0)
                throw new FileRefusedException($"is writable by group or others (mode {Convert.ToString(st.Permissions, 8)})");
            RefuseIfLarger(st, maxBytes);
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Opened and fstat'ed only (the caller judges <see cref="OpenedFile.Status"/> itself); null when it does not
    /// exist. A symlink at the name is refused (ELOOP), a FIFO opens without blocking.</summary>
    internal static OpenedFile? OpenUnchecked(string path, bool followLink = false)
    {
        var fd = Libc.open(path, Libc.O_RDONLY | Libc.O_CLOEXEC | (followLink ? 0 : Libc.O_NOFOLLOW) | Libc.O_NONBLOCK | Libc.O_NOCTTY, 0);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == Libc.ENOENT) return null;
            throw new FileRefusedException(errno == Libc.ELOOP ? "is a symlink" : $"cannot be opened: {Marshal.GetLastPInvokeErrorMessage()}");
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        if (Stat.OfDescriptor(fd) is not { } st)
        {
            var reason = Marshal.GetLastPInvokeErrorMessage();
            handle.Dispose();
            throw new FileRefusedException($"cannot be stat'ed: {reason}");
        }
        return new OpenedFile(handle, st);
    }

    /// <summary>
    /// A file of the system's own configuration that a distribution may keep behind a symlink (iproute2's rt_tables and
    /// rt_protos and their drop-ins; NixOS links all of /etc): the link is followed, but what it leads to must be a regular
    /// file of root's (or this user's) no larger than <paramref name="maxBytes"/>, opened without blocking — a FIFO or
    /// /dev/zero at the name is refused, never read. Null when it does not exist.
    /// </summary>
    public static byte[]? ReadSystemFile(string path, long maxBytes)
    {
        using var file = OpenUnchecked(path, followLink: true);
        if (file is null) return null;
        var st = file.Status;
        RefuseUnlessRegular(st);
        if (st.Uid != 0 && st.Uid != Libc.geteuid()) throw new FileRefusedException($"is owned by uid {st.Uid}, not root");
        RefuseIfLarger(st, maxBytes);
        return file.ReadAll(maxBytes);
    }

    static void RefuseUnlessRegular(FileStatus st)
    {
        if (!st.IsRegular) throw new FileRefusedException(st.IsDirectory ? "is a directory" : "is not a regular file");
    }

    static void RefuseIfLarger(FileStatus st, long maxBytes)
    {
        if ((long)st.Size > maxBytes) throw new FileRefusedException($"is {st.Size} bytes, more than the {maxBytes} this tool reads");
    }

    /// <summary>The whole file as checked by <see cref="Open"/>; null when it does not exist.</summary>
    public static byte[]? Read(string path, long maxBytes, FileOwner owner = FileOwner.Self, bool othersMayWrite = true)
    {
        using var file = Open(path, maxBytes, owner, othersMayWrite);
        return file?.ReadAll(maxBytes);
    }
}

/// <summary>A file <see cref="SafeFile"/> opened: its descriptor and what fstat said of it.</summary>
public sealed class OpenedFile : IDisposable
{
    internal OpenedFile(SafeFileHandle handle, FileStatus status) => (Handle, Status) = (handle, status);

    public SafeFileHandle Handle { get; }
    internal FileStatus Status { get; }

    /// <summary>Whether anyone may read it: only then may an error quote what it holds (a line of /etc/shadow is not
    /// for whoever may run plan).</summary>
    public bool WorldReadable => (Status.Permissions & 0b000_000_100) != 0;

    /// <summary>Everything in it, at most <paramref name="maxBytes"/>: up to one byte beyond is read, so a file that grew
    /// after the fstat is refused rather than read whole.</summary>
    public byte[] ReadAll(long maxBytes)
    {
        var buffer = new byte[Math.Min((long)Status.Size, maxBytes) + 1];
        var total = 0;
        while (total < buffer.Length)
        {
            var n = RandomAccess.Read(Handle, buffer.AsSpan(total), total);
            if (n == 0) break;
            total += n;
        }
        if (total > maxBytes) throw new FileRefusedException($"grew beyond {maxBytes} bytes while it was read");
        return buffer[..total];
    }

    /// <summary>Whether it holds exactly <paramref name="text"/> (UTF-8), compared a block at a time: a policy of 100,000
    /// lines (several MB) is never read whole beside its own text.</summary>
    public bool Holds(string text)
    {
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
                var r = RandomAccess.Read(Handle, theirs.AsSpan(got, n - got), offset + got);
                if (r == 0) return false;
                got += r;
            }
            if (!mine.AsSpan(0, n).SequenceEqual(theirs.AsSpan(0, n))) return false;
            offset += n;
            if (chars.Length == 0) return RandomAccess.Read(Handle, theirs.AsSpan(0, 1), offset) == 0;
        }
    }

    /// <summary>A stream over it that refuses to go past <paramref name="maxBytes"/> (a prefix file is parsed as it
    /// is read, never held whole).</summary>
    public Stream Stream(long maxBytes) => new BoundedStream(Handle, maxBytes);

    /// <summary>The stream closes the file.</summary>

    public void Dispose() => Handle.Dispose();

    sealed class BoundedStream(SafeFileHandle handle, long max) : Stream
    {
        long _offset;

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = RandomAccess.Read(handle, buffer, _offset);
            _offset += n;
            if (_offset > max) throw new FileRefusedException($"grew beyond {max} bytes while it was read");
            return n;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) handle.Dispose();
            base.Dispose(disposing);
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _offset; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
