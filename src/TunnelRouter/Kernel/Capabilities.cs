namespace TunnelRouter.Kernel;

public static class Capabilities
{
    const int CapNetAdmin = 12;

    /// <summary>Fails early, before anything changes, when this process may not change routing — the
    /// case of an OpenVPN down script run after "user nobody" dropped privileges.</summary>
    public static void RequireNetAdmin()
    {
        if (HasNetAdmin()) return;
        throw new EnvironmentException(
            "this process lacks CAP_NET_ADMIN and cannot change routing: run as root; under OpenVPN's 'user nobody' " +
            "run the down hook through the down-root plugin (plugin openvpn-plugin-down-root.so \"tunnel-router down\")");
    }

    public static bool HasNetAdmin()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("CapEff:", StringComparison.Ordinal))
                    return (ulong.Parse(line.AsSpan(7).Trim(), System.Globalization.NumberStyles.HexNumber) & (1UL << CapNetAdmin)) != 0;
        }
        catch (IOException) { }
        return Interop.Libc.geteuid() == 0;
    }
}
