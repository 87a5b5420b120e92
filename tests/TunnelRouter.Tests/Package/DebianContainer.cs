using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using TunnelRouter.Tests.Support;

namespace TunnelRouter.Tests.Package;

/// <summary>
/// A clean Debian 12 root booted with its own systemd (systemd-nspawn) in a network namespace of the test's, so that
/// the package's maintainer scripts meet a real systemd and the routing they might change is the namespace's. The root
/// is made once by mmdebstrap from the Debian mirror this machine's apt uses (read at run time) and kept as a tarball
/// under artifacts/; each container unpacks a fresh copy and removes it at the end.
/// </summary>
public sealed class DebianContainer : IDisposable
{
    /// <summary>What the root holds beyond Debian's required packages: an init to boot, and the package's dependencies
    /// (iproute2; nftables recommended), so that dpkg -i needs no network.</summary>
    static readonly string[] Include = ["systemd", "systemd-sysv", "dbus", "iproute2", "nftables"];

    readonly Process _nspawn;
    readonly StringBuilder _console = new();

    public string Root { get; }
    public int Pid1 { get; }

    /// <summary>How long making (or finding) the root, unpacking it and booting took.</summary>
    public string Timing { get; }

    public DebianContainer(NetNs ns)
    {
        var clock = Stopwatch.StartNew();
        var tarball = Tarball(out var made);
        var tarballTime = clock.Elapsed;
        Root = Directory.CreateTempSubdirectory("tunnel-router-debian-").FullName;
        Sh.Run("/usr/bin/tar", ["-xf", tarball, "-C", Root], timeoutMs: 300_000).ShouldSucceed();
        var unpackTime = clock.Elapsed - tarballTime;
        var psi = new ProcessStartInfo("/usr/bin/systemd-nspawn")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        // The host has no system bus (--register=no, --keep-unit); the container's network is the test's namespace, in
        // which it may change routing (CAP_NET_ADMIN: nspawn grants it only with a network of its own making).
        foreach (var a in (string[])["-q", "-D", Root, "-b", $"--network-namespace-path=/run/netns/{ns.Name}", "--capability=CAP_NET_ADMIN",
                     "--register=no", "--keep-unit", "--console=pipe"])
            psi.ArgumentList.Add(a);
        _nspawn = Process.Start(psi)!;
        _nspawn.OutputDataReceived += (_, e) => { lock (_console) _console.AppendLine(e.Data); };
        _nspawn.ErrorDataReceived += (_, e) => { lock (_console) _console.AppendLine(e.Data); };
        _nspawn.BeginOutputReadLine();
        _nspawn.BeginErrorReadLine();
        try
        {
            Pid1 = WaitForBoot();
        }
        catch
        {
            Dispose();
            throw;
        }
        Timing = $"clean Debian 12 root: {(made ? "made by mmdebstrap" : "cached tarball")} {tarballTime.TotalSeconds:0.0} s, " +
                 $"unpacked {unpackTime.TotalSeconds:0.0} s, booted {(clock.Elapsed - tarballTime - unpackTime).TotalSeconds:0.0} s";
    }

    /// <summary>A command inside the container (all its namespaces), with a plain root shell's environment.</summary>
    public RunResult Run(params string[] args) =>
        Sh.Run("/usr/bin/nsenter", ["-t", Pid1.ToString(), "-a", .. args],
            new Dictionary<string, string> { ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin", ["LC_ALL"] = "C", ["DEBIAN_FRONTEND"] = "noninteractive" },
            timeoutMs: 180_000);

    /// <summary>A command in the same root by chroot (not in the container), in <paramref name="ns"/>'s network namespace and a
    /// mount namespace of its own with /proc, /sys, /dev and an empty /run, the root a mount point of its own (ip netns needs
    /// one to make its mounts slaves of): for what nspawn's read-only /proc/sys forbids.</summary>
    public RunResult Chroot(NetNs ns, params string[] args) =>
        Sh.Run("/usr/bin/nsenter", [$"--net=/run/netns/{ns.Name}", "/usr/bin/unshare", "-m", "--propagation", "private", "/bin/sh", "-c",
                "mount --bind \"$0\" \"$0\" && mount -t proc proc \"$0/proc\" && mount -t sysfs sysfs \"$0/sys\" && mount --rbind /dev \"$0/dev\" && " +
                "mount -t tmpfs tmpfs \"$0/run\" && exec chroot \"$0\" \"$@\"", Root, .. args],
            new Dictionary<string, string> { ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin", ["LC_ALL"] = "C" }, timeoutMs: 180_000);

    /// <summary>Copies a file from the host into the container's /root.</summary>
    public string Copy(string hostPath)
    {
        var inside = "/root/" + Path.GetFileName(hostPath);
        File.Copy(hostPath, Root + inside, overwrite: true);
        return inside;
    }

    /// <summary>Every path of the root's file system a package could leave behind, relative to the root: the volatile
    /// places (logs, dpkg's and systemd's own state, caches, the files the test copied in, /run and its /var/run link, which
    /// leads out of the root to the host's) left out.</summary>
    public SortedSet<string> Files()
    {
        string[] volatilePrefixes = ["/var/log/", "/var/lib/dpkg/", "/var/cache/", "/var/lib/systemd/catalog/", "/var/lib/systemd/random-seed",
            "/var/lib/systemd/timers/", "/var/lib/apt/", "/root/", "/tmp/", "/var/tmp/", "/run/", "/var/run/", "/proc/", "/sys/", "/dev/"];
        var set = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var path in Directory.EnumerateFileSystemEntries(Root, "*", new EnumerationOptions
                 { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = true }))
        {
            var rel = path[Root.Length..];
            if (!volatilePrefixes.Any(p => (rel + "/").StartsWith(p, StringComparison.Ordinal))) set.Add(rel);
        }
        return set;
    }

    int WaitForBoot()
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        int pid = 0;
        while (DateTime.UtcNow < deadline)
        {
            if (_nspawn.HasExited) throw new InvalidOperationException($"systemd-nspawn exited with {_nspawn.ExitCode}: {Console()}");
            if (pid == 0)
            {
                var children = $"/proc/{_nspawn.Id}/task/{_nspawn.Id}/children";
                var first = File.Exists(children) ? File.ReadAllText(children).Split(' ', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() : null;
                if (first is not null) pid = int.Parse(first);
            }
            else
            {
                var state = Sh.Run("/usr/bin/nsenter", ["-t", pid.ToString(), "-a", "/usr/bin/systemctl", "is-system-running"],
                    new Dictionary<string, string> { ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin" }).Stdout.Trim();
                if (state is "running" or "degraded") return pid;
            }
            Thread.Sleep(200);
        }
        throw new TimeoutException($"the Debian container did not finish booting in 90 s: {Console()}");
    }

    string Console()
    {
        lock (_console) return _console.ToString();
    }

    /// <summary>The root tarball under artifacts/, named by what it holds and where it came from; made when missing.</summary>
    static string Tarball(out bool made)
    {
        var mirror = Mirror();
        var key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join(",", Include) + " " + mirror)))[..12].ToLowerInvariant();
        var dir = Repo.File("artifacts", "debian-root");
        Directory.CreateDirectory(dir);
        var tarball = Path.Combine(dir, $"bookworm-{key}.tar");
        made = !File.Exists(tarball);
        if (!made) return tarball;
        var partial = tarball + ".partial.tar";
        var run = Sh.Run("/usr/bin/mmdebstrap", ["--quiet", "--variant=apt", $"--include={string.Join(",", Include)}", "bookworm", partial, mirror],
            timeoutMs: 15 * 60_000);
        if (run.ExitCode != 0)
            throw new InvalidOperationException($"mmdebstrap bookworm from {mirror}: exit {run.ExitCode}: {run.Stderr.Trim()}");
        File.Move(partial, tarball, overwrite: true);
        return tarball;
    }

    /// <summary>The Debian mirror apt on this machine uses for bookworm (deb822 .sources or one-line .list files).</summary>
    static string Mirror()
    {
        var sources = Directory.Exists("/etc/apt/sources.list.d") ? Directory.GetFiles("/etc/apt/sources.list.d") : [];
        foreach (var file in sources.Where(f => f.EndsWith(".sources", StringComparison.Ordinal)).Order())
            foreach (var stanza in File.ReadAllText(file).Split("\n\n"))
            {
                var fields = stanza.Split('\n').Where(l => l.Contains(':') && !l.StartsWith('#'))
                    .ToDictionary(l => l[..l.IndexOf(':')].Trim(), l => l[(l.IndexOf(':') + 1)..].Trim(), StringComparer.OrdinalIgnoreCase);
                if (fields.TryGetValue("Suites", out var suites) && suites.Split(' ').Contains("bookworm")
                    && fields.TryGetValue("URIs", out var uris) && (!fields.TryGetValue("Enabled", out var on) || on != "no"))
                    return uris.Split(' ')[0];
            }
        foreach (var file in sources.Where(f => f.EndsWith(".list", StringComparison.Ordinal)).Prepend("/etc/apt/sources.list").Where(File.Exists))
            foreach (var line in File.ReadLines(file))
            {
                var words = System.Text.RegularExpressions.Regex.Replace(line, @"\[[^\]]*\]", "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (words is ["deb", var uri, "bookworm", ..]) return uri;
            }
        throw new InvalidOperationException("no Debian bookworm mirror in /etc/apt/sources.list(.d): the clean root is made from it");
    }

    public void Dispose()
    {
        // SIGTERM: nspawn asks the container's systemd to power off.
        if (!_nspawn.HasExited)
        {
            Sh.Run("/bin/kill", ["-TERM", _nspawn.Id.ToString()]);
            if (!_nspawn.WaitForExit(30_000)) _nspawn.Kill(true);
        }
        _nspawn.WaitForExit();
        _nspawn.Dispose();
        Sh.Run("/bin/rm", ["-rf", "--one-file-system", Root], timeoutMs: 120_000);
    }
}
