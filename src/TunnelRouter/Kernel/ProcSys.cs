namespace TunnelRouter.Kernel;

/// <summary>Reads a sysctl of the current network namespace; null when it does not exist.</summary>
public static class ProcSys
{
    public static string? Read(string path)
    {
        try { return File.ReadAllText("/proc/sys/" + path).Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }
}
