using System.Runtime.InteropServices;
using TunnelRouter.Host;
using TunnelRouter.Interop;

namespace TunnelRouter.Config;

/// <summary>
/// sshd's StrictModes for the files root reads its orders from: whoever can write the policy, or replace it by
/// writing a directory above it, decides where root's traffic goes. The file and every directory on the way to
/// it must be owned by root (or by the user running tunnel-router) and writable by nobody else. One exception:
/// a root-owned directory with the sticky bit (/tmp), where nobody can rename or remove what another user owns,
/// so the entries below it stay ours.
/// </summary>
/// <remarks>
/// Checked and read as one: the path is walked a component at a time, every directory it passes through is
/// checked — those of the path as given and those every symlink on the way leads to — and every symlink must
/// belong to root (or us). Only directories nobody else can write are walked, so nobody can swap a name between
/// the check and the open. The file is then opened once (without following a last link), its descriptor
/// fstat'ed (a regular file, the very one the walk found, under a size cap) and parsed from that descriptor: a
/// FIFO or a device such as /dev/kmsg is refused before it is read, and it cannot block the hook.
/// </remarks>
public static class StrictModes
{
    const uint GroupWrite = 0b000_010_000, OtherWrite = 0b000_000_010, Sticky = 0b001_000_000_000;

    /// <summary>The largest policy read: 10,000 routes and rules are well under 1 MiB.</summary>
    public const long MaxPolicyBytes = 16 << 20;

    /// <summary>Symlinks followed on one path at most, as the kernel's MAXSYMLINKS.</summary>
    const int MaxLinks = 40;

    /// <summary>Checks the path and every directory on the way; null when the file does not exist.</summary>
    public static byte[]? Read(string path, long maxBytes = MaxPolicyBytes, string what = "the policy file") =>
        ReadShowing(path, maxBytes, what)?.Bytes;

    /// <summary><see cref="Read"/>, and whether anyone may read the file: only then may an error quote what it holds.</summary>
    public static (byte[] Bytes, bool WorldReadable)? ReadShowing(string path, long maxBytes = MaxPolicyBytes, string what = "the policy file")
    {
        using var file = Open(path, maxBytes, what);
        if (file is null) return null;
        try { return (file.ReadAll(maxBytes), file.WorldReadable); }
        catch (FileRefusedException e) { throw new InputException(path, $"{what} {e.Message}; refusing it"); }
    }

    /// <summary>The file checked as <see cref="Read"/> checks it and opened, for a caller that reads it as a stream
    /// (a prefix file of a million lines is parsed as it is read); null when it does not exist.</summary>
    public static OpenedFile? Open(string path, long maxBytes, string what)
    {
        if (Walk(path, what) is not var (resolved, found)) return null;
        OpenedFile? file;
        try { file = SafeFile.OpenUnchecked(resolved); }
        catch (FileRefusedException e) { throw new InputException(path, $"{what} {e.Message}; refusing it"); }
        if (file is null) throw new InputException(path, "was removed while it was being checked; refusing it");
        try
        {
            var st = file.Status;
            if (!st.SameFile(found)) throw new InputException(path, "was replaced while it was being checked; refusing it");
            CheckFile(path, st, what, resolved);
            if ((long)st.Size > maxBytes)
                throw new InputException(path, $"{what} is {st.Size} bytes, more than the {maxBytes} this tool reads; refusing it");
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Only checks (for a file opened elsewhere, such as the log): null when the path does not exist.</summary>
    public static void CheckDirectoryOf(string path, string what)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (string.IsNullOrEmpty(dir)) return;
        if (Walk(dir, what) is { } found && !found.Status.IsDirectory) throw new InputException(path, $"{dir} is not a directory");
    }

    /// <summary>Regular, owned by root or us, writable by nobody else.</summary>
    internal static void CheckFile(string name, FileStatus st, string what, string shown)
    {
        if (st.IsDirectory) throw new InputException(name, $"is a directory, not {what}");
        if (!st.IsRegular) throw new InputException(name, $"{what} is not a regular file; refusing it");
        CheckOwnerAndMode(name, st, what, shown, allowSticky: false);
    }

    static void CheckOwnerAndMode(string name, FileStatus st, string what, string shown, bool allowSticky)
    {
        var euid = Libc.geteuid();
        if (st.Uid != 0 && st.Uid != euid)
            throw new InputException(name, $"{what} is owned by uid {st.Uid}, not root; refusing it (chown root {shown})");
        var sticky = allowSticky && (st.Mode & Sticky) != 0 && st.Uid == 0;
        if ((st.Mode & (GroupWrite | OtherWrite)) != 0 && !sticky)
            throw new InputException(name, $"{what} is writable by group or others (mode {Convert.ToString(st.Permissions, 8)}); refusing it (chmod go-w {shown})");
    }

    /// <summary>Resolves <paramref name="path"/> one component at a time, checking each directory before looking
    /// into it and each symlink before following it. Null when a component does not exist.</summary>
    static (string Path, FileStatus Status)? Walk(string path, string what)
    {
        var pending = new LinkedList<string>();
        void Push(string p)
        {
            var parts = p.Split('/');
            for (var i = parts.Length - 1; i >= 0; i--) pending.AddFirst(parts[i]);
        }
        Push(path);
        var current = "/";
        if (!path.StartsWith('/'))
        {
            // A relative path goes through the working directory: its directories are on the way too.
            Push(Environment.CurrentDirectory.TrimStart('/'));
        }
        CheckDirectory(path, current);
        var links = 0;
        FileStatus status = Stat.NoFollow("/") ?? throw new InputException(path, "cannot stat /");

        while (pending.First is { } node)
        {
            pending.RemoveFirst();
            var c = node.Value;
            if (c is "" or ".") continue;
            if (c == "..")
            {
                // current is already free of links, so its parent is the lexical one, and was checked on the way.
                current = Path.GetDirectoryName(current) ?? "/";
                status = Stat.NoFollow(current)!.Value;
                continue;
            }
            var next = current == "/" ? "/" + c : current + "/" + c;
            if (status is { IsDirectory: false }) throw new InputException(path, $"{current} is not a directory");
            if (Stat.NoFollow(next) is not { } st)
            {
                if (Marshal.GetLastPInvokeError() == Libc.ENOENT) return null;
                throw new InputException(path, $"cannot stat {next}: {Marshal.GetLastPInvokeErrorMessage()}");
            }
            if (st.IsSymlink)
            {
                if (++links > MaxLinks) throw new InputException(path, "has too many levels of symbolic links");
                CheckOwner(path, st, $"the symlink {next}", next);
                var target = new FileInfo(next).LinkTarget ?? throw new InputException(path, $"cannot read the symlink {next}");
                Push(target);
                if (target.StartsWith('/')) { current = "/"; status = Stat.NoFollow("/")!.Value; }
                continue;
            }
            current = next;
            status = st;
            if (st.IsDirectory) CheckOwnerAndMode(path, st, current == path ? what : $"its directory {current}", current, allowSticky: true);
        }
        return (current, status);
    }

    static void CheckDirectory(string name, string dir)
    {
        if (Stat.NoFollow(dir) is not { } st) throw new InputException(name, $"cannot stat {dir}");
        CheckOwnerAndMode(name, st, $"its directory {dir}", dir, allowSticky: true);
    }

    static void CheckOwner(string name, FileStatus st, string what, string shown)
    {
        var euid = Libc.geteuid();
        if (st.Uid != 0 && st.Uid != euid)
            throw new InputException(name, $"{what} is owned by uid {st.Uid}, not root; refusing it (chown root {shown})");
    }
}
