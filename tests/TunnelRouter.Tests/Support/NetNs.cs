namespace TunnelRouter.Tests.Support;

/// <summary>
/// A network namespace of the test's own, removed on dispose: kernel tests never touch the host's
/// routing. Each namespace also gets its own iproute2 name directory and lock file, so the host's
/// /etc/iproute2 is never written either.
/// </summary>
public sealed class NetNs : IDisposable
{
    public NetNs(string? name = null)
    {
        Prerequisites.RequireKernelTests();
        Name = name ?? $"trt-{Guid.NewGuid().ToString("N")[..10]}";
        Sh.Ip("netns", "add", Name);
        Ip("link", "set", "lo", "up");
        // IPv6 addresses usable at once: with duplicate address detection the kernel adds their local routes
        // a second later, in the middle of whatever a test compares.
        Sh.Run("/usr/sbin/ip", ["netns", "exec", Name, "/usr/sbin/sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0"]).ShouldSucceed();
        StateDir = Directory.CreateTempSubdirectory("tunnel-router-test-").FullName;
    }

    public string Name { get; }

    /// <summary>Holds this namespace's rt_tables.d / rt_protos.d drop-ins and the lock file.</summary>
    public string StateDir { get; }

    public string Ip(params string[] args) => Sh.Ip(["-n", Name, .. args]);

    /// <summary>The namespace's inode, as the binary inside it reads /proc/self/ns/net.</summary>
    public ulong Inode => TunnelRouter.Interop.Stat.Follow($"/run/netns/{Name}")?.Inode
                          ?? throw new InvalidOperationException($"/run/netns/{Name} cannot be read");

    /// <summary>Where the hook in this namespace records <paramref name="device"/>: the run directory's (the state
    /// directory's unless a lock file elsewhere is given) tunnels/NETNS/DEV.</summary>
    public string RecordPath(string device, string? runDir = null) =>
        Path.Combine(runDir ?? StateDir, "tunnels", Inode.ToString(System.Globalization.CultureInfo.InvariantCulture), device);

    public RunResult Exec(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null, string? stdin = null) =>
        Sh.Run("/usr/sbin/ip", ["netns", "exec", Name, file, .. args], env, stdin);

    /// <summary>A tun device as OpenVPN leaves it when the up hook runs: addresses set, link up.</summary>
    public void AddTun(string dev, string? v4Cidr = null, string? v6Cidr = null)
    {
        Ip("tuntap", "add", "dev", dev, "mode", "tun");
        if (v4Cidr is not null) Ip("addr", "add", v4Cidr, "dev", dev);
        if (v6Cidr is not null) Ip("-6", "addr", "add", v6Cidr, "dev", dev, "nodad");
        Ip("link", "set", dev, "up");
        // The kernel adds an IPv6 address's local route from its addrconf work queue, a moment after "link
        // set up" returns; a test that dumps the state before and after must not see it arrive in between.
        if (v6Cidr is not null) WaitForLocalRoute(System.Net.IPAddress.Parse(v6Cidr[..v6Cidr.IndexOf('/')]).ToString());
    }

    public void WaitForLocalRoute(string address)
    {
        // A ceiling for a loaded machine: addrconf's work queue runs in milliseconds when the machine is idle.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!Ip("-6", "route", "show", "table", "local").Contains($"local {address} "))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"no local route for {address} in {Name} after 60 s");
            Thread.Sleep(10);
        }
    }

    /// <summary>Everything a test may compare before and after: routes of every table, rules, links.</summary>
    public string Dump()
    {
        Settle();
        return string.Join("\n---\n",
            Ip("-4", "route", "show", "table", "all"), Ip("-6", "route", "show", "table", "all"),
            Ip("-4", "rule", "show"), Ip("-6", "rule", "show"), Ip("-o", "link", "show"));
    }

    /// <summary>Waits for the kernel's deferred link events: a link that has its carrier (LOWER_UP) but whose
    /// operational state is not up yet gets its IPv6 link-local route when linkwatch runs, up to a second later.</summary>
    public void Settle()
    {
        // linkwatch runs within a second on an idle machine; the ceiling is for a loaded one (a link that never comes up,
        // a veth whose peer is down, is not pending and does not wait).
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(20))
        {
            var pending = Ip("-o", "link", "show").Split('\n').Any(l =>
                l.Contains(",LOWER_UP", StringComparison.Ordinal) && !l.Contains(" state UP ", StringComparison.Ordinal)
                && !l.Contains(" state UNKNOWN ", StringComparison.Ordinal));
            if (!pending) return;
            Thread.Sleep(20);
        }
    }

    public void Dispose()
    {
        Sh.Run("/usr/sbin/ip", ["netns", "del", Name]);
        try { Directory.Delete(StateDir, recursive: true); } catch (IOException) { }
    }
}
