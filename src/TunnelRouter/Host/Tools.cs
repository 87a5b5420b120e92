namespace TunnelRouter.Host;

/// <summary>Absolute paths of the external tools, found once. OpenVPN gives hooks no PATH.</summary>
public static class Tools
{
    public static string Find(string name, params string[] candidates)
    {
        foreach (var c in candidates)
            if (File.Exists(c)) return c;
        throw new EnvironmentException($"{name} not found (looked in {string.Join(", ", candidates)}); install it (Debian: apt-get install {PackageOf(name)})");
    }

    static string PackageOf(string name) => name switch { "ip" => "iproute2", "nft" => "nftables", "birdc" => "bird2", "vtysh" => "frr", _ => name };

    public static string Ip => _ip ??= Find("ip", "/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip");
    public static string Nft => _nft ??= Find("nft", "/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft");

    public static string Birdc => _birdc ??= Find("birdc", "/usr/sbin/birdc", "/usr/bin/birdc", "/sbin/birdc");
    public static string Vtysh => _vtysh ??= Find("vtysh", "/usr/bin/vtysh", "/usr/sbin/vtysh", "/bin/vtysh");

    static string? _ip, _nft, _birdc, _vtysh;
}
