using TunnelRouter.Core;
using TunnelRouter.Host;
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
        byte[]? bytes;
        try { bytes = SafeFile.Read(PathOf(device), MaxRecordBytes); }
        catch (FileRefusedException) { return null; }
        return bytes is not null && TunnelRecord.Parse(device, System.Text.Encoding.UTF8.GetString(bytes)) is { } record && record.InNamespace(netns) ? record : null;
    }

    /// <summary>Records what up installed; atomically, so a crash leaves the old record or the new one.</summary>
    public void Write(TunnelRecord record)
    {
        SafeDirectory.Ensure(_dir, SafeDirectory.Mode700, "the tunnel records");
        OwnedFile.Replace(PathOf(record.Device), (record.NetNs == 0 ? record with { NetNs = netns } : record).Format(),
            UnixFileMode.UserRead | UnixFileMode.UserWrite, durable: false);
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
}
