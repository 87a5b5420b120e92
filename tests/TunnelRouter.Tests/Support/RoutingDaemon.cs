using System.Diagnostics;

namespace TunnelRouter.Tests.Support;

/// <summary>
/// A real routing daemon from Debian's packages (bird2, frr) running in a test namespace, in the foreground
/// as this test's child, with its configuration, control sockets and pid files in a directory of its own:
/// never the host's /etc/bird, /etc/frr or /run. Disposing stops it.
/// </summary>
public abstract class RoutingDaemon : IDisposable
{
    readonly List<Process> _processes = [];

    protected RoutingDaemon(NetNs ns, string prefix)
    {
        Prerequisites.RequireKernelTests();
        Ns = ns;
        Dir = Directory.CreateTempSubdirectory(prefix).FullName;
        // FRR's daemons drop to the frr user: they must reach and write their own directory.
        File.SetUnixFileMode(Dir, (UnixFileMode)0x1FF);
    }

    public NetNs Ns { get; }

    public string Dir { get; }

    protected void Spawn(string file, params string[] args)
    {
        if (!File.Exists(file)) throw new InvalidOperationException($"{file} is missing: ./test.sh installs bird2 and frr");
        var psi = new ProcessStartInfo("/usr/sbin/ip") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])["netns", "exec", Ns.Name, file, .. args]) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        _processes.Add(p);
    }

    /// <summary>Stops every process of the daemon (SIGTERM: a daemon's own clean shutdown) and waits.</summary>
    public void Stop()
    {
        foreach (var p in _processes)
        {
            if (!p.HasExited) Sh.Run("/usr/bin/kill", ["-TERM", p.Id.ToString()]);
            if (!p.WaitForExit(10_000)) p.Kill(entireProcessTree: true);
            p.Dispose();
        }
        _processes.Clear();
    }

    /// <summary>Waits until CONDITION holds, or fails with what the daemon last said.</summary>
    public void WaitFor(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"{what} did not happen in {(timeout ?? TimeSpan.FromSeconds(30)).TotalSeconds:0} s; {Describe()}");
            Thread.Sleep(100);
        }
    }

    protected abstract string Describe();

    public void Dispose()
    {
        Stop();
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}

/// <summary>BIRD 2 (bird -f -c CONF -s SOCKET).</summary>
public sealed class Bird : RoutingDaemon
{
    /// <param name="start">false: write the configuration later (it may name files in <see cref="RoutingDaemon.Dir"/>), then <see cref="Start"/>.</param>
    public Bird(NetNs ns, string config, bool start = true) : base(ns, "tunnel-router-bird-")
    {
        Config = Path.Combine(Dir, "bird.conf");
        File.WriteAllText(Config, config);
        if (start) Start();
    }

    public string Config { get; }

    public string Socket => Path.Combine(Dir, "bird.ctl");

    public void Start()
    {
        Spawn("/usr/sbin/bird", "-f", "-c", Config, "-s", Socket, "-P", Path.Combine(Dir, "bird.pid"));
        WaitFor(() => File.Exists(Socket) && Birdc("show", "status").Contains("Daemon is up"), "BIRD's start");
    }

    public void Restart()
    {
        Stop();
        File.Delete(Socket);
        Start();
    }

    public string Birdc(params string[] command) => Sh.Run("/usr/sbin/birdc", ["-s", Socket, .. command]).Stdout;

    protected override string Describe() => $"birdc show protocols all:\n{Birdc("show", "protocols", "all")}";
}

/// <summary>FRR's zebra and ospfd (the frr package's binaries in /usr/lib/frr), as the frr user.</summary>
public sealed class Frr : RoutingDaemon
{
    public Frr(NetNs ns, string config) : base(ns, "tunnel-router-frr-")
    {
        Config = Path.Combine(Dir, "frr.conf");
        File.WriteAllText(Config, config);
        File.SetUnixFileMode(Config, (UnixFileMode)0x1A4);
        var zserv = Path.Combine(Dir, "zserv.api");
        string[] common = ["-f", Config, "-z", zserv, "--vty_socket", Dir, "-u", "frr", "-g", "frr"];
        Spawn("/usr/lib/frr/zebra", [.. common, "-i", Path.Combine(Dir, "zebra.pid")]);
        WaitFor(() => File.Exists(zserv), "zebra's start");
        Spawn("/usr/lib/frr/ospfd", [.. common, "-i", Path.Combine(Dir, "ospfd.pid")]);
        WaitFor(() => File.Exists(Path.Combine(Dir, "ospfd.vty")), "ospfd's start");
    }

    public string Config { get; }

    public string Vtysh(string command) => Sh.Run("/usr/bin/vtysh", ["--vty_socket", Dir, "-c", command]).Stdout;

    protected override string Describe() => $"show ip ospf neighbor:\n{Vtysh("show ip ospf neighbor")}";
}
