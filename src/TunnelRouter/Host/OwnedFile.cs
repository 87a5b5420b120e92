using TunnelRouter.Interop;

namespace TunnelRouter.Host;

/// <summary>
/// A file root owns and rewrites outside the kernel (iproute2's name drop-ins, a routing daemon's
/// configuration): read without following links, replaced atomically, in a directory nobody else can write.
/// </summary>
public static class OwnedFile
{
    public const UnixFileMode FileMode644 = (UnixFileMode)0b110_100_100;

    /// <summary>The largest file read back by default: anything near this is not ours.</summary>
    public const int MaxBytes = 1 << 20;

    /// <summary>The file's text; null when there is none. Never through a symlink, and only a regular file of
    /// root's (one that is someone else's could be a secret root would republish 0644).</summary>
    public static string? Read(string path, int maxBytes = MaxBytes)
    {
        using var file = Open(path, maxBytes);
        return file is null ? null : System.Text.Encoding.UTF8.GetString(file.ReadAll(maxBytes));
    }

    /// <summary>Whether the file holds exactly <paramref name="text"/> (UTF-8), compared a block at a time: a policy of
    /// 100,000 lines (several MB) is never read whole beside its own text. False when there is no such file.</summary>
    public static bool Holds(string path, string text)
    {
        using var file = Open(path, long.MaxValue);
        return file is not null && file.Holds(text);
    }

    /// <summary>The file opened by <see cref="SafeFile"/>: a regular file of root's under <paramref name="maxBytes"/>;
    /// null when there is none.</summary>
    static OpenedFile? Open(string path, long maxBytes)
    {
        try { return SafeFile.Open(path, maxBytes); }
        catch (FileRefusedException e)
        {
            throw new EnvironmentException($"{path} {e.Message}; refusing to rewrite it (remove it)");
        }
    }

    /// <summary>A temporary file's suffix nobody could have prepared: 16 hex digits from the runtime's OS-seeded
    /// generator (O_EXCL does the rest). Not RandomNumberGenerator, which loads OpenSSL on the hook's path.</summary>
    public static string TempSuffix() => Random.Shared.NextInt64().ToString("X16", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Replaces <paramref name="path"/> atomically: a new file under a random name nobody could have
    /// prepared (O_EXCL: a symlink there fails the create), 0644 (or <paramref name="mode"/>) set through the handle
    /// whatever the umask, synced, renamed over the old one, and the directory synced, so a crash leaves the old file or
    /// the new one. <paramref name="durable"/> false: no syncs, for a file under /run (tmpfs, emptied by any crash that a
    /// sync would guard against). Only into a directory <see cref="SafeDirectory.Check"/> passes.</summary>
    public static void Replace(string path, string text, UnixFileMode mode = FileMode644, bool durable = true)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        SafeDirectory.Check(dir, Path.GetFileName(path));
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
}
