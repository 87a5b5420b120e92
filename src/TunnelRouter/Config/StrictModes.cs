namespace TunnelRouter.Config;

/// <summary>
/// sshd's StrictModes for the policy file: whoever can write the policy, or replace it by writing a
/// directory above it, decides where root's traffic goes. The file and every directory up to / must be
/// owned by root (or by the user running tunnel-router) and writable by nobody else. One exception: a
/// root-owned directory with the sticky bit (/tmp), where nobody can rename or remove what another user
/// owns, so the entries below it stay ours.
/// </summary>
public static class StrictModes
{
    const uint GroupWrite = 0b000_010_000, OtherWrite = 0b000_000_010, Sticky = 0b001_000_000_000, Directory = 0x4000;

    public static void Check(string path)
    {
        var real = Interop.Stat.RealPath(path) ?? throw new InputException(path, "cannot be resolved");
        var euid = Interop.Libc.geteuid();
        for (var p = real; p is not null; p = Path.GetDirectoryName(p))
        {
            if (Interop.Stat.Of(p) is not var (uid, mode)) throw new InputException(path, $"cannot stat {p}");
            var what = p == real ? "the policy file" : $"its directory {p}";
            var name = p == real ? p : path;
            if (uid != 0 && uid != euid)
                throw new InputException(name, $"{what} is owned by uid {uid}, not root; refusing it (chown root {p})");
            var sticky = (mode & Directory) != 0 && (mode & Sticky) != 0 && uid == 0;
            if ((mode & (GroupWrite | OtherWrite)) != 0 && !sticky)
                throw new InputException(name, $"{what} is writable by group or others (mode {Convert.ToString(mode & 0xfff, 8)}); refusing it (chmod go-w {p})");
        }
    }
}
