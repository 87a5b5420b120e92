using TunnelRouter.Core;

namespace TunnelRouter.Kernel;

/// <summary>
/// Sysctls through /proc/sys, as sysctl(8) does it. net.* settings belong to the network namespace of
/// the process that opens the file, so under <c>ip netns exec</c> these are the namespace's own.
/// Keys reaching here were validated by <see cref="Sysctl.ValidateKey"/>.
/// </summary>
public sealed class Sysctls(string root = "/proc/sys")
{
    string PathOf(string key) => Path.Combine(root, Sysctl.RelativePath(key));

    /// <summary>Null when the kernel has no such setting (or no such interface). Equivalent to: sysctl -n KEY</summary>
    public string? Read(string key)
    {
        try { return File.ReadAllText(PathOf(key)).TrimEnd('\n'); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { return null; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KernelException($"sysctl -n {key}: {e.Message}") { Errno = Errno.FromMessage(e.Message) };
        }
    }

    /// <summary>Equivalent to: sysctl -w KEY=VALUE</summary>
    public void Write(string key, string value)
    {
        try
        {
            // FileMode.Open: a sysctl that does not exist is an error, never a new file.
            using var f = new FileStream(PathOf(key), FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1);
            var bytes = System.Text.Encoding.ASCII.GetBytes(Sysctl.Normalize(value) + "\n");
            f.Write(bytes);
            f.Flush();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KernelException($"sysctl -w {key}={Sysctl.Normalize(value)}: {e.Message}") { Errno = Errno.FromMessage(e.Message) };
        }
    }
}

/// <summary>Reads a sysctl of the current network namespace by its /proc/sys path (net/ipv4/ip_forward), for the
/// diagnostics (doctor, explain): null when it does not exist or cannot be read, never an error. The reads and
/// writes an apply depends on go through <see cref="Sysctls"/>, which fail loudly.</summary>
public static class ProcSys
{
    public static string? Read(string path)
    {
        try { return File.ReadAllText("/proc/sys/" + path).Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }
}

/// <summary>Applies <see cref="SetSysctl"/> by writing /proc/sys.</summary>
public sealed class SysctlHandler(Sysctls sysctls) : IChangeHandler
{
    public bool Handles(Change change) => change is SetSysctl;

    public void Apply(Change change)
    {
        var set = (SetSysctl)change;
        sysctls.Write(set.Key, set.New);
    }
}
