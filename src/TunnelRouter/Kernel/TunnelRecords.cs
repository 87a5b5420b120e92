using Microsoft.Win32.SafeHandles;
using TunnelRouter.Core;
using TunnelRouter.Interop;

namespace TunnelRouter.Kernel;

/// <summary>
/// The hook's records (<see cref="TunnelRecord"/>), one file per device under the run directory (the lock's:
/// /run/tunnel-router/tunnels/tun0), read and written only under the host lock. /run is emptied at boot,
/// with the kernel state the records describe. The directory is root's and 0700; a record is read without
/// following links and only when it is a regular file of root's.
/// </summary>
/// Records are per network namespace: each carries the namespace it was written in, and a record of another namespace
/// is not read (two namespaces on one host, each with its own OpenVPN tun0, never install nor forget each other's).
public sealed class TunnelRecords(string runDir, ulong netns)
{
    readonly string _dir = Path.Combine(runDir, "tunnels");

    /// <summary>This process's network namespace: the inode of /proc/self/ns/net (0 when it cannot be read).</summary>
    public static ulong CurrentNamespace() => Stat.Follow("/proc/self/ns/net")?.Inode ?? 0;

    const int MaxRecordBytes = 1 << 20;

    public static TunnelRecords ForLock(string lockFile) => new(Path.GetDirectoryName(Path.GetFullPath(lockFile))!, CurrentNamespace());

    /// <summary>The namespace records are written in and read for.</summary>
    public ulong Namespace => netns;

    string PathOf(string device) => Path.Combine(_dir, InterfaceName.Validate("dev", device));

    /// <summary>Null when there is no record (or one this version cannot read: then nothing is taken from it).</summary>
    public TunnelRecord? Read(string device)
    {
        var path = PathOf(device);
        var fd = Libc.open(path, Libc.O_RDONLY | Libc.O_CLOEXEC | Libc.O_NOFOLLOW | Libc.O_NONBLOCK | Libc.O_NOCTTY, 0);
        if (fd < 0) return null;
        using var handle = new SafeFileHandle(fd, ownsHandle: true);
        if (Stat.OfDescriptor(fd) is not { IsRegular: true } st || st.Uid != Libc.geteuid() || st.Size > MaxRecordBytes) return null;
        var buffer = new byte[st.Size];
        var total = 0;
        while (total < buffer.Length)
        {
            var n = RandomAccess.Read(handle, buffer.AsSpan(total), total);
            if (n == 0) break;
            total += n;
        }
        return TunnelRecord.Parse(device, System.Text.Encoding.UTF8.GetString(buffer, 0, total)) is { } record && record.InNamespace(netns) ? record : null;
    }

    /// <summary>Records what up installed; atomically, so a crash leaves the old record or the new one.</summary>
    public void Write(TunnelRecord record)
    {
        EnsureDirectory();
        var path = PathOf(record.Device);
        var tmp = $"{path}.tmp.{OwnedFile.TempSuffix()}";
        try
        {
            using (var f = new FileStream(tmp, new FileStreamOptions
                   {
                       Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None,
                       UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
                   }))
                f.Write(System.Text.Encoding.UTF8.GetBytes((record.NetNs == 0 ? record with { NetNs = netns } : record).Format()));
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            File.Delete(tmp);
            throw;
        }
    }

    public void Delete(string device) => File.Delete(PathOf(device));

    /// <summary>Every record there is, by device: what plan, apply, status, doctor and watch add to the desired
    /// state. Files that are not records of this version (a crash's temporary file, another version's) are skipped.</summary>
    public IReadOnlyList<TunnelRecord> ReadAll()
    {
        if (Stat.NoFollow(_dir) is not { IsDirectory: true }) return [];
        var records = new List<TunnelRecord>();
        foreach (var path in Directory.EnumerateFiles(_dir).Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(path);
            if (!InterfaceName.IsValid(name)) continue;
            if (Read(name) is { } record) records.Add(record);
        }
        return records;
    }

    void EnsureDirectory()
    {
        if (!Directory.Exists(_dir))
        {
            Directory.CreateDirectory(_dir);
            File.SetUnixFileMode(_dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        if (Stat.NoFollow(_dir) is not { IsDirectory: true } st || st.Uid != Libc.geteuid() || (st.Permissions & 0b000_010_010) != 0)
            throw new EnvironmentException($"{_dir} is not a directory of root's writable by root alone; refusing to record tunnels there");
    }
}
