namespace TunnelRouter.Tests.Support;

/// <summary>
/// Multi-namespace topologies for the seed scenarios: veth pairs between namespaces the test owns, and the
/// few per-namespace settings a router needs. Every address lives inside those namespaces.
/// </summary>
public static class Topology
{
    /// <summary>A veth pair: <paramref name="devA"/> in <paramref name="a"/>, <paramref name="devB"/> in
    /// <paramref name="b"/>, both up, each with the addresses given (IPv6 without duplicate address detection,
    /// so it is usable at once).</summary>
    public static void Link(NetNs a, string devA, IEnumerable<string> addressesA, NetNs b, string devB, IEnumerable<string> addressesB)
    {
        // Created inside a, the peer moved to b: no name is ever created in the host's namespace.
        a.Ip("link", "add", devA, "type", "veth", "peer", "name", devB, "netns", b.Name);
        foreach (var cidr in addressesA) a.AddAddress(devA, cidr);
        foreach (var cidr in addressesB) b.AddAddress(devB, cidr);
        a.Ip("link", "set", devA, "up");
        b.Ip("link", "set", devB, "up");
    }

    public static void AddAddress(this NetNs ns, string dev, string cidr)
    {
        if (cidr.Contains(':')) ns.Ip("-6", "addr", "add", cidr, "dev", dev, "nodad");
        else ns.Ip("addr", "add", cidr, "dev", dev);
    }

    /// <summary>Turns the namespace into a router (IPv4 and IPv6 forwarding) with reverse-path filtering off,
    /// so that what the tests observe is routing, not the filter.</summary>
    public static void Forwarding(this NetNs ns)
    {
        ns.SetSysctls("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0");
    }

    public static void SetSysctls(this NetNs ns, params string[] settings)
    {
        foreach (var s in settings) ns.Exec("/usr/sbin/sysctl", ["-qw", s]).ShouldSucceed();
    }

    /// <summary>One ping with a short deadline; the result says whether a reply came back.</summary>
    public static RunResult Ping(this NetNs ns, string address, params string[] options) =>
        ns.Exec("/usr/bin/ping", [.. (address.Contains(':') ? new[] { "-6" } : ["-4"]), "-n", "-c", "1", "-W", "2", .. options, address]);

    /// <summary><c>ip route get</c> as one line: which device, gateway and source a packet would take.</summary>
    public static string RouteGet(this NetNs ns, params string[] args) =>
        ns.Ip([.. (args[0].Contains(':') ? new[] { "-6" } : ["-4"]), "route", "get", .. args]).Split('\n')[0].Trim();

    /// <summary>An example policy from contrib/examples, copied where the binary's permission check accepts it.</summary>
    public static string Example(NetNs ns, string name)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !Directory.Exists(Path.Combine(dir.FullName, "contrib", "examples"))) dir = dir.Parent;
        if (dir is null) throw new InvalidOperationException($"contrib/examples not found above {AppContext.BaseDirectory}");
        return Policy(ns, File.ReadAllText(Path.Combine(dir.FullName, "contrib", "examples", name)));
    }

    /// <summary>A policy file in the namespace's state directory (mode 0600, as the binary demands of root's policy).</summary>
    public static string Policy(NetNs ns, string json, string name = "policy.json")
    {
        var path = Path.Combine(ns.StateDir, name);
        File.WriteAllText(path, json);
        // As install.sh ships a policy: root's, readable by everyone, so errors quote its words (a file not everyone may
        // read gets errors that never do: TrustBoundaryRound2Specs).
        File.SetUnixFileMode(path, (UnixFileMode)0b110_100_100);
        return path;
    }
}
