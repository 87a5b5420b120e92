using System.Runtime.InteropServices;
using TunnelRouter.Interop;

namespace TunnelRouter.Host;

/// <summary>
/// The one way root makes and trusts a directory it writes into (the lock's, the records', iproute2's drop-ins,
/// export's tree): made with its final mode by mkdir(2) itself — never 0777 first and narrowed after, which let a
/// local user create the lock in the window under umask 0 — then lstat'ed: a real directory (not a link), root's,
/// writable by nobody else. Whoever could write it could put a symlink or a FIFO at a name root is about to use.
/// </summary>
public static class SafeDirectory
{
    public const uint Mode755 = 0b111_101_101, Mode700 = 0b111_000_000;

    /// <summary>Makes <paramref name="dir"/> when it is missing (its parent must pass <see cref="Check"/> then), and
    /// checks it either way. True when it was made here (the caller may take it back).</summary>
    public static bool Ensure(string dir, uint mode, string what)
    {
        var created = false;
        if (Stat.NoFollow(dir) is null)
        {
            var parent = Path.GetDirectoryName(Path.GetFullPath(dir));
            if (!string.IsNullOrEmpty(parent) && Stat.NoFollow(parent) is null) Ensure(parent, mode, what);
            // A sticky directory of root's (/tmp) will do as the parent: nobody can rename or remove what we make in it.
            if (!string.IsNullOrEmpty(parent)) Check(parent, what, allowSticky: true);
            if (Libc.mkdir(dir, mode) == 0) created = true;
            else if (Marshal.GetLastPInvokeError() != Errno.EEXIST)
            {
                var reason = Marshal.GetLastPInvokeErrorMessage();
                throw new EnvironmentException($"cannot create {what}{(what.EndsWith('s') ? "'" : "'s")} directory {dir}: {char.ToLowerInvariant(reason[0])}{reason[1..]}");
            }
        }
        var st = Check(dir, what);
        // The umask can only have narrowed it (mkdir never widens): the parent is checked, so nobody swapped the name.
        if (created && st.Permissions != mode) File.SetUnixFileMode(dir, (UnixFileMode)mode);
        return created;
    }

    /// <summary>A real directory (lstat: not a symlink), root's, writable by group and others not at all.</summary>
    internal static FileStatus Check(string dir, string what, bool allowSticky = false)
    {
        if (Stat.NoFollow(dir) is not { } st)
            throw new EnvironmentException($"cannot stat {dir}: {Marshal.GetLastPInvokeErrorMessage()}");
        if (!st.IsDirectory)
            throw new EnvironmentException($"{dir} is {(st.IsSymlink ? "a symlink" : "not a directory")}; refusing to write {what} there");
        if (st.Uid != Libc.geteuid())
            throw new EnvironmentException($"{dir} is owned by uid {st.Uid}, not root; refusing to write {what} there (chown root {dir})");
        if ((st.Permissions & 0b000_010_010) != 0 && !(allowSticky && (st.Permissions & 0b001_000_000_000) != 0 && st.Uid == 0))
            throw new EnvironmentException($"{dir} is writable by group or others (mode {Convert.ToString(st.Permissions, 8)}); refusing to write {what} there (chmod go-w {dir})");
        return st;
    }
}
