using System.Runtime.InteropServices;
using System.Text;
using TunnelRouter.Host;
using TunnelRouter.Kernel;

namespace TunnelRouter.Cli;

/// <summary>
/// <c>tunnel-router demo</c>: the eduVPN source-routing how-to (a VPN server whose clients leave through a NAT
/// router, not through the server's own default route) built in throwaway network namespaces, shown step by
/// step with this very binary run inside them, then removed — on success, on failure and on Ctrl-C.
/// The host's routing is never touched: every link is created inside a lab namespace, every command runs
/// with <c>ip -n</c> or <c>ip netns exec</c>, and the lab's iproute2 names and lock live in a temporary directory.
/// </summary>
public sealed class DemoCommand
{
    // The addresses of seed 003; the internet host is a documentation address (RFC 5737 / RFC 3849).
    const string Pool4 = "10.10.10.0/24", Gateway4 = "10.10.10.1", Pool6 = "fd00:4242:4242:4242::/64", Gateway6 = "fd00:4242:4242:4242::1";
    const string ServerLan = "192.168.178.2", LanRouter = "192.168.178.1";
    const string ServerUplink4 = "192.168.1.100", Nat4 = "192.168.1.1", ServerUplink6 = "fd00:1010:1010:1010::100", Nat6 = "fd00:1010:1010:1010::1";
    const string NatWan4 = "198.51.100.1", Internet4 = "198.51.100.10", NatWan6 = "2001:db8:100::1", Internet6 = "2001:db8:100::10";

    readonly Context _ctx;
    readonly TextWriter _out;
    readonly string _self;
    readonly string _ip;
    readonly string _prefix;
    readonly List<string> _namespaces = [];
    readonly CancellationTokenSource _cancel = new();
    string? _dir;
    readonly ProcessRunner _runner = new();

    DemoCommand(Context ctx, string self)
    {
        _ctx = ctx;
        _out = ctx.Out;
        _self = self;
        _ip = Tools.Ip;
        _prefix = $"trdemo-{Environment.ProcessId}";
    }

    string Vpn => _prefix + "-vpn";
    string Nat => _prefix + "-nat";
    string Internet => _prefix + "-internet";
    string Lan => _prefix + "-lan";
    string Policy => Path.Combine(_dir!, "tunnel-router.json");

    public static int Run(Context ctx)
    {
        // Helpers the demo runs inside its namespaces (this binary, by ip netns exec): they need the namespace's
        // own /proc/sys and sockets, which a process outside cannot reach.
        var extra = ctx.Args.Extra;
        if (extra is ["--lab-ping-from", var from, "--lab-ping-to", var to]) return DemoPing.Run(ctx.Out, from, to);
        if (extra is ["--lab-forwarding"]) return EnableForwarding();
        if (extra.Count > 0) throw new InputException(extra[0], "unknown option for demo (it takes none)");

        Capabilities.RequireNetAdmin();
        var self = Environment.ProcessPath ?? throw new EnvironmentException("cannot tell where this binary is (no /proc/self/exe)");
        return new DemoCommand(ctx, self).Run();
    }

    int Run()
    {
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Interrupt);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Interrupt);
        using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, Interrupt);
        try
        {
            RemoveStaleLabs();
            _dir = Directory.CreateTempSubdirectory("tunnel-router-demo-").FullName;
            Intro();
            BuildLab();
            Show();
            return App.Ok;
        }
        catch (OperationCanceledException)
        {
            _out.WriteLine();
            _out.WriteLine("interrupted.");
            return 130;
        }
        finally
        {
            Cleanup();
        }
    }

    void Interrupt(PosixSignalContext signal)
    {
        // Keep the process alive: the lab must be removed first. The step in progress is stopped.
        signal.Cancel = true;
        _cancel.Cancel();
    }

    void Intro()
    {
        _out.WriteLine($"""
            tunnel-router demo: source routing for a VPN server, in throwaway network namespaces ({_prefix}-*).
            Your host's routing is not touched; everything is removed at the end, also on Ctrl-C.

                   VPN clients {Pool4}, {Pool6}
                          │ tun0  {Gateway4}
                 ┌────────┴─────────┐ eth0 {ServerLan}     main table: default via {LanRouter}
                 │    VPN server    ├──────────────────────► (the server's own uplink)
                 └────────┬─────────┘
                          │ eth1 {ServerUplink4}            table vpn: default via {Nat4}
                 ┌────────┴─────────┐ {NatWan4}        ┌───────────────┐
                 │    NAT router    ├───────────────────────►│ internet host │ {Internet4}
                 └──────────────────┘ {Nat4}             └───────────────┘

            The clients' traffic must leave through the NAT router, the server's own through its default route.
            """);
    }

    void BuildLab()
    {
        Step("Building the lab: 4 namespaces, veth links, addresses, forwarding");
        foreach (var ns in new[] { Vpn, Nat, Internet, Lan })
        {
            Ip("netns", "add", ns);
            _namespaces.Add(ns);
            Ip("-n", ns, "link", "set", "lo", "up");
        }
        Link(Vpn, "eth0", [ServerLan + "/24"], Lan, "eth0", [LanRouter + "/24"]);
        Link(Vpn, "eth1", [ServerUplink4 + "/24", ServerUplink6 + "/64"], Nat, "lan", [Nat4 + "/24", Nat6 + "/64"]);
        Link(Nat, "wan", [NatWan4 + "/24", NatWan6 + "/64"], Internet, "eth0", [Internet4 + "/24", Internet6 + "/64"]);
        Ip("-n", Vpn, "route", "add", "default", "via", LanRouter);
        // The NAT router knows the way back to the pools (the how-to's static routes); the internet host only
        // knows its router. Plain routing instead of masquerading keeps the demo free of nftables.
        Ip("-n", Nat, "route", "add", Pool4, "via", ServerUplink4);
        Ip("-n", Nat, "-6", "route", "add", Pool6, "via", ServerUplink6);
        Ip("-n", Internet, "route", "add", "default", "via", NatWan4);
        Ip("-n", Internet, "-6", "route", "add", "default", "via", NatWan6);
        foreach (var ns in new[] { Vpn, Nat }) Exec(ns, _self, ["demo", "--lab-forwarding"], show: false);

        // What OpenVPN would have done before running its up hook: tun0 exists, with its addresses.
        Ip("-n", Vpn, "tuntap", "add", "dev", "tun0", "mode", "tun");
        Ip("-n", Vpn, "addr", "add", Gateway4 + "/24", "dev", "tun0");
        Ip("-n", Vpn, "addr", "add", Gateway6 + "/64", "dev", "tun0", "nodad");
        Ip("-n", Vpn, "link", "set", "tun0", "up");

        // 0644 whatever the umask: StrictModes refuses a policy others may write, and the demo's apply would too.
        using (var f = new FileStream(Policy, new FileStreamOptions
               {
                   Mode = FileMode.CreateNew, Access = FileAccess.Write,
                   UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
               }))
            File.SetUnixFileMode(f.SafeFileHandle, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        File.WriteAllText(Policy, $$"""
            {
              "Rules": [],
              "Routes": [ "default via {{Nat4}} table vpn", "default via {{Nat6}} table vpn" ],
              "PoolRules": true,
              "Iproute2Dir": "{{Path.Combine(_dir!, "iproute2")}}",
              "LockFile": "{{Path.Combine(_dir!, "lock")}}"
            }
            """);
        _out.WriteLine($"  done: {string.Join(", ", _namespaces)}");
    }

    void Link(string a, string aDev, string[] aAddrs, string b, string bDev, string[] bAddrs)
    {
        // Both ends are created inside the lab namespaces: no interface ever appears in the host's.
        Ip("link", "add", aDev, "netns", a, "type", "veth", "peer", "name", bDev, "netns", b);
        foreach (var (ns, dev, addrs) in new[] { (a, aDev, aAddrs), (b, bDev, bAddrs) })
        {
            foreach (var addr in addrs)
                if (addr.Contains(':')) Ip("-n", ns, "addr", "add", addr, "dev", dev, "nodad");
                else Ip("-n", ns, "addr", "add", addr, "dev", dev);
            Ip("-n", ns, "link", "set", dev, "up");
        }
    }

    void Show()
    {
        Step($"1. The policy ({Policy})");
        _out.WriteLine("  Routes: the vpn table's default routes via the NAT router (the how-to's 'route-eth1').");
        _out.WriteLine("  PoolRules: the OpenVPN hook adds 'from <pool> lookup vpn' for each tunnel (the how-to's 'rule-eth1').");
        _out.WriteLine("  Iproute2Dir, LockFile: the lab's own, so the host's /etc/iproute2 is not written.");
        Indent(File.ReadAllText(Policy));

        Step("2. tunnel-router plan        (what apply would change; exit code 2 = changes pending)");
        Tool(["plan"], okExit: 2);

        Step("3. tunnel-router apply       (as the systemd unit runs it at boot)");
        Tool(["apply"]);

        Step($"4. OpenVPN brings tun0 up and runs its --up hook: tunnel-router tun0 1500 0 {Gateway4} 255.255.255.0 init");
        Exec(Vpn, _self, ["--config", Policy, "tun0", "1500", "0", Gateway4, "255.255.255.0", "init"], env: OpenVpnEnvironment("up"));

        Step("5. tunnel-router status");
        Tool(["status"]);

        Step("6. Where packets go now (ip route get, in the VPN server)");
        Flow("a client to the internet   ", "198.51.100.10", "from", "10.10.10.2", "iif", "tun0");
        Flow("a client to another client ", "10.10.10.3", "from", "10.10.10.2", "iif", "tun0");
        Flow("the tun gateway's answer   ", "10.10.10.2", "from", Gateway4);
        Flow("a client to the internet v6", Internet6, "from", "fd00:4242:4242:4242::1000", "iif", "tun0");
        Flow("the server's own traffic   ", Internet4);

        Step("7. Pings from the VPN server to the internet host");
        _out.WriteLine($"  from the pool address {Gateway4}: the policy path, through the NAT router");
        Exec(Vpn, _self, Ping(Gateway4, Internet4));
        Exec(Vpn, _self, Ping(Gateway6, Internet6));
        _out.WriteLine($"  from the server's own address {ServerLan}: the main table, whose uplink has no way there");
        Exec(Vpn, _self, Ping(ServerLan, Internet4), okExit: 1);

        Step("8. OpenVPN stops and runs its --down hook; then tunnel-router flush (the unit's stop)");
        Exec(Vpn, _self, ["--config", Policy, "tun0", "1500", "0", Gateway4, "255.255.255.0", "init"], env: OpenVpnEnvironment("down"));
        Tool(["flush"]);

        Step("9. tunnel-router status");
        Tool(["status"]);
    }

    static string[] Ping(string from, string to) => ["demo", "--lab-ping-from", from, "--lab-ping-to", to];

    Dictionary<string, string> OpenVpnEnvironment(string scriptType) => new()
    {
        // What OpenVPN gives a hook: its own variables and nothing inherited (no PATH).
        ["script_type"] = scriptType, ["script_context"] = "init", ["dev"] = "tun0", ["dev_type"] = "tun", ["tun_mtu"] = "1500",
        ["ifconfig_local"] = Gateway4, ["ifconfig_netmask"] = "255.255.255.0",
        ["ifconfig_ipv6_local"] = Gateway6, ["ifconfig_ipv6_netbits"] = "64",
    };

    void Flow(string what, params string[] selector)
    {
        _cancel.Token.ThrowIfCancellationRequested();
        var family = selector[0].Contains(':') ? "-6" : "-4";
        var r = Run(_ip, ["-n", Vpn, family, "route", "get", .. selector], null);
        // The lab's table names live in its own iproute2 directory, which ip here does not read.
        var line = (r.ExitCode == 0 ? r.StandardOutput : r.StandardError).Split('\n')[0].Trim()
            .Replace(" table 200", " table vpn (200)");
        foreach (var noise in new[] { " uid 0", " proto 147", " metric 1024", " iif tun0", " pref medium" }) line = line.Replace(noise, "");
        _out.WriteLine($"  {what}  ip route get {string.Join(' ', selector)}");
        _out.WriteLine($"  {"",27}  → {line}");
    }

    void Tool(string[] args, int okExit = 0) => Exec(Vpn, _self, [.. args, "--config", Policy], okExit: okExit);

    void Step(string title)
    {
        _cancel.Token.ThrowIfCancellationRequested();
        _out.WriteLine();
        _out.WriteLine($"== {title}");
    }

    void Indent(string text)
    {
        if (string.IsNullOrWhiteSpace(text)) return;
        foreach (var line in text.TrimEnd().Split('\n')) _out.WriteLine("  " + line.TrimEnd());
    }

    /// <summary>Runs a program in a lab namespace and shows what it printed; an unexpected exit code ends the demo.</summary>
    void Exec(string ns, string file, string[] args, Dictionary<string, string>? env = null, int okExit = 0, bool show = true)
    {
        _cancel.Token.ThrowIfCancellationRequested();
        var r = Run(_ip, ["netns", "exec", ns, file, .. args], env ?? new Dictionary<string, string>());
        if (show) Indent(r.StandardOutput + r.StandardError);
        if (r.ExitCode != 0 && r.ExitCode != okExit)
            throw new EnvironmentException($"demo: '{Path.GetFileName(file)} {string.Join(' ', args)}' failed (exit {r.ExitCode}): {(r.StandardError + r.StandardOutput).Trim()}");
    }

    void Ip(params string[] args)
    {
        _cancel.Token.ThrowIfCancellationRequested();
        var r = Run(_ip, args, null);
        if (r.ExitCode != 0) throw new EnvironmentException($"demo: ip {string.Join(' ', args)}: {r.StandardError.Trim()}");
    }

    /// <summary>A step of the demo: Ctrl-C kills it (and ends the demo), except for the clean-up steps.</summary>
    ProcessResult Run(string file, IReadOnlyList<string> args, Dictionary<string, string>? env, bool cancellable = true)
    {
        var result = _runner.Run(file, args, check: false, environment: env, cancellation: cancellable ? _cancel.Token : default);
        if (cancellable) _cancel.Token.ThrowIfCancellationRequested();
        return result;
    }

    /// <summary>Labs of demos that were killed (SIGKILL leaves no chance to clean up): their process is gone.</summary>
    void RemoveStaleLabs()
    {
        if (!Directory.Exists("/run/netns")) return;
        foreach (var path in Directory.GetFiles("/run/netns", "trdemo-*"))
        {
            var parts = Path.GetFileName(path).Split('-');
            if (parts.Length < 3 || !int.TryParse(parts[1], out var pid) || Directory.Exists($"/proc/{pid}")) continue;
            Run(_ip, ["netns", "del", Path.GetFileName(path)], null, cancellable: false);
        }
    }

    void Cleanup()
    {
        foreach (var ns in Enumerable.Reverse(_namespaces))
        {
            var r = Run(_ip, ["netns", "del", ns], null, cancellable: false);
            if (r.ExitCode != 0) _ctx.Log.Warning("demo: could not remove namespace {Ns}: {Error}", ns, r.StandardError.Trim());
        }
        if (_namespaces.Count > 0) _out.WriteLine($"\nremoved the lab ({_namespaces.Count} namespaces); the host was not changed.");
        if (_dir is not null) try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    static int EnableForwarding()
    {
        File.WriteAllText("/proc/sys/net/ipv4/ip_forward", "1");
        File.WriteAllText("/proc/sys/net/ipv6/conf/all/forwarding", "1");
        return App.Ok;
    }
}
