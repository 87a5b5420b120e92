using TunnelRouter.Core;
using TunnelRouter.Interop;

namespace TunnelRouter.Host;

/// <summary>
/// The hook's records (<see cref="TunnelRecord"/>), one file per device in a directory per network namespace under the
/// run directory (the lock's: /run/tunnel-router/tunnels/4026531840/tun0, the namespace's inode), read and written
/// only under the host lock. /run is emptied at boot, with the kernel state the records describe. The directories
/// are root's and 0700; a record is read without following links and only when it is a regular file of root's.
/// </summary>
/// Records are per network namespace (issue 21, invariant 7): two namespaces on one host, each with its own OpenVPN
/// tun0, never overwrite, install nor forget each other's. Each record also carries the namespace it was written in
/// and the device's ifindex. A record an older version wrote directly under tunnels/ is still read where it belongs
/// to this namespace (a package upgrade under running tunnels), and is moved to the namespace's directory when the
/// hook next writes or deletes it.
public sealed class TunnelRecords(string runDir, ulong netns)
{
    readonly string _root = Path.Combine(runDir, "tunnels");
    readonly string _dir = netns == 0 ? Path.Combine(runDir, "tunnels") : Path.Combine(runDir, "tunnels", netns.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>This process's network namespace: the inode of /proc/self/ns/net (0 when it cannot be read).</summary>
    public static ulong CurrentNamespace() => Stat.Follow("/proc/self/ns/net")?.Inode ?? 0;

    const int MaxRecordBytes = 1 << 20;

    public static TunnelRecords ForLock(string lockFile) => new(Path.GetDirectoryName(Path.GetFullPath(lockFile))!, CurrentNamespace());

    /// <summary>The namespace records are written in and read for.</summary>
    public ulong Namespace => netns;

    string PathOf(string device) => Path.Combine(_dir, InterfaceName.Validate("dev", device));

    /// <summary>Where an older version kept the device's record: directly under tunnels/, for every namespace.</summary>
    string? LegacyPathOf(string device) => _dir == _root ? null : Path.Combine(_root, InterfaceName.Validate("dev", device));

    /// <summary>Null when there is no record (or one this version cannot read: then nothing is taken from it).</summary>
    public TunnelRecord? Read(string device) => ReadAt(PathOf(device), device) ?? (LegacyPathOf(device) is { } old ? ReadAt(old, device) : null);

    TunnelRecord? ReadAt(string path, string device)
    {
        byte[]? bytes;
        try { bytes = SafeFile.Read(path, MaxRecordBytes); }
        catch (FileRefusedException) { return null; }
        return bytes is not null && TunnelRecord.Parse(device, System.Text.Encoding.UTF8.GetString(bytes)) is { } record && record.InNamespace(netns) ? record : null;
    }

    /// <summary>Records what up installed; atomically, so a crash leaves the old record or the new one.</summary>
    public void Write(TunnelRecord record)
    {
        SafeDirectory.Ensure(_root, SafeDirectory.Mode700, "the tunnel records");
        if (_dir != _root) SafeDirectory.Ensure(_dir, SafeDirectory.Mode700, "the tunnel records of this network namespace");
        OwnedFile.Replace(PathOf(record.Device), (record.NetNs == 0 ? record with { NetNs = netns } : record).Format(),
            UnixFileMode.UserRead | UnixFileMode.UserWrite, durable: false);
        DeleteLegacy(record.Device);
    }

    public void Delete(string device)
    {
        if (Stat.NoFollow(_dir) is { IsDirectory: true }) File.Delete(PathOf(device));
        DeleteLegacy(device);
    }

    /// <summary>An older version's record of this namespace's device goes once this namespace has its own; one of
    /// another namespace stays for that namespace's hook.</summary>
    void DeleteLegacy(string device)
    {
        if (LegacyPathOf(device) is { } old && ReadAt(old, device) is not null) File.Delete(old);
    }

    /// <summary>Every record there is, by device: what plan, apply, status, doctor and watch add to the desired
    /// state. Files that are not records of this version (a crash's temporary file, another version's) are skipped.</summary>
    public IReadOnlyList<TunnelRecord> ReadAll()
    {
        var names = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var dir in _dir == _root ? [_dir] : new[] { _dir, _root })
            if (Stat.NoFollow(dir) is { IsDirectory: true })
                foreach (var path in Directory.EnumerateFiles(dir))
                    if (Path.GetFileName(path) is var name && InterfaceName.IsValid(name)) names.Add(name);
        var records = new List<TunnelRecord>();
        foreach (var name in names)
            if (Read(name) is { } record) records.Add(record);
        return records;
    }
}
