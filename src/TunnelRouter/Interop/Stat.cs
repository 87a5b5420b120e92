using System.Runtime.InteropServices;

namespace TunnelRouter.Interop;

/// <summary>What statx says about one file: .NET has the mode but not the owner, nor an fstat.</summary>
internal readonly record struct FileStatus(uint Uid, uint Mode, ulong Size, ulong Inode, ulong Device)
{
    const uint TypeMask = 0xF000, Regular = 0x8000, Dir = 0x4000, Link = 0xA000;

    public bool IsRegular => (Mode & TypeMask) == Regular;
    public bool IsDirectory => (Mode & TypeMask) == Dir;
    public bool IsSymlink => (Mode & TypeMask) == Link;
    public uint Permissions => Mode & 0xFFF;
    public bool SameFile(FileStatus other) => Inode == other.Inode && Device == other.Device;
}

/// <summary>Owner and mode of a file: .NET has the mode but not the owner. statx, because its struct has
/// one layout on every architecture (struct stat does not).</summary>
internal static partial class Stat
{
    const int AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100, AT_EMPTY_PATH = 0x1000;
    const uint STATX_TYPE = 0x1, STATX_MODE = 0x2, STATX_UID = 0x8, STATX_INO = 0x100, STATX_SIZE = 0x200;

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "realpath", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint realpath(string path, nint resolved);

    [LibraryImport("libc", EntryPoint = "free")]
    private static partial void free(nint pointer);

    /// <summary>Follows symlinks. Null when the path cannot be stat'ed.</summary>
    public static (uint Uid, uint Mode)? Of(string path) => Query(AT_FDCWD, path, 0) is { } s ? (s.Uid, s.Mode) : null;

    /// <summary>stat(2): follows symlinks; null when the path cannot be stat'ed (errno in Marshal.GetLastPInvokeError).</summary>
    public static FileStatus? Follow(string path) => Query(AT_FDCWD, path, 0);

    /// <summary>lstat(2): a symlink is described, not followed.</summary>
    public static FileStatus? NoFollow(string path) => Query(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW);

    /// <summary>fstat(2) of an open descriptor: the file that was opened, whatever its name points at now.</summary>
    public static FileStatus? OfDescriptor(int fd) => Query(fd, "", AT_EMPTY_PATH);

    static unsafe FileStatus? Query(int dirfd, string path, int flags)
    {
        // struct statx is 256 bytes: stx_uid at offset 20, stx_mode (u16) at 28, stx_ino at 32, stx_size at 40,
        // stx_dev_major/minor at 136/140.
        var buffer = stackalloc byte[256];
        if (statx(dirfd, path, flags, STATX_TYPE | STATX_MODE | STATX_UID | STATX_INO | STATX_SIZE, buffer) != 0) return null;
        return new FileStatus(*(uint*)(buffer + 20), *(ushort*)(buffer + 28), *(ulong*)(buffer + 40), *(ulong*)(buffer + 32),
            ((ulong)*(uint*)(buffer + 136) << 32) | *(uint*)(buffer + 140));
    }

    /// <summary>The canonical path, every symlink resolved; null when it does not exist.</summary>
    public static string? RealPath(string path)
    {
        var p = realpath(path, 0);
        if (p == 0) return null;
        try { return Marshal.PtrToStringUTF8(p); }
        finally { free(p); }
    }
}
