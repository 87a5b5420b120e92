namespace TunnelRouter.Tests.Support;

/// <summary>Wiring between a test's own namespaces: veth pairs with addresses, no DAD delay.</summary>
public static class Links
{
    /// <summary>A veth pair from <paramref name="a"/> to <paramref name="b"/>, both ends up, with the given
    /// addresses ("5.5.5.2/24", "fd00:5::2/64"); IPv6 addresses skip DAD so they are usable at once.</summary>
    public static void Veth(NetNs a, string aDev, IEnumerable<string> aAddrs, NetNs b, string bDev, IEnumerable<string> bAddrs)
    {
        a.Ip("link", "add", aDev, "type", "veth", "peer", "name", bDev, "netns", b.Name);
        foreach (var (ns, dev, addrs) in new[] { (a, aDev, aAddrs), (b, bDev, bAddrs) })
        {
            foreach (var addr in addrs)
                ns.Ip(addr.Contains(':') ? ["-6", "addr", "add", addr, "dev", dev, "nodad"] : ["addr", "add", addr, "dev", dev]);
            // The link-local address comes from addrconf a moment after "up" (and its local route with it):
            // without DAD it is usable at once, and waiting for its route keeps before/after dumps equal.
            ns.Exec("/usr/sbin/sysctl", ["-qw", $"net.ipv6.conf.{dev}.accept_dad=0"]).ShouldSucceed();
            ns.Ip("link", "set", dev, "up");
        }
        foreach (var (ns, dev) in new[] { (a, aDev), (b, bDev) })
        {
            Eventually.True(() => ns.Ip("-6", "route", "show", "table", "local", "dev", dev).Contains("fe80::"),
                () => $"{dev} in {ns.Name} has no link-local route after 60 s", 60_000);
        }
    }

    /// <summary>Runs nft inside the namespace with the script on stdin.</summary>
    public static RunResult Nft(this NetNs ns, string script) => ns.Exec("/usr/sbin/nft", ["-f", "-"], stdin: script);

    public static string NftList(this NetNs ns, params string[] args) => ns.Exec("/usr/sbin/nft", ["list", .. args]).ShouldSucceed().Stdout;

    public static string Sysctl(this NetNs ns, string key) =>
        ns.Exec("/usr/bin/cat", ["/proc/sys/" + key.Replace('.', '/')]).ShouldSucceed().Stdout.Trim();
}
