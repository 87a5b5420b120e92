using System.Runtime.InteropServices;

namespace TunnelRouter.Interop;

/// <summary>Owner and mode of a file: .NET has the mode but not the owner. statx, because its struct has
/// one layout on every architecture (struct stat does not).</summary>
internal static partial class Stat
{
    const int AT_FDCWD = -100;
    const uint STATX_MODE = 0x2, STATX_UID = 0x8;

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "realpath", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint realpath(string path, nint resolved);

    [LibraryImport("libc", EntryPoint = "free")]
    private static partial void free(nint pointer);

    /// <summary>Follows symlinks. Null when the path cannot be stat'ed.</summary>
    public static unsafe (uint Uid, uint Mode)? Of(string path)
    {
        // struct statx is 256 bytes: stx_uid at offset 20, stx_mode (u16) at 28.
        var buffer = stackalloc byte[256];
        if (statx(AT_FDCWD, path, 0, STATX_MODE | STATX_UID, buffer) != 0) return null;
        return (*(uint*)(buffer + 20), *(ushort*)(buffer + 28));
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
