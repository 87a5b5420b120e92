using System.Diagnostics;

namespace TunnelRouter.Tests.Support;

/// <summary>The two kernels a guest scenario can run in.</summary>
public enum GuestBed
{
    /// <summary>User-Mode Linux (Debian's user-mode-linux, 6.1): boots in ~3 s and runs near host speed, but
    /// panics before init on CPUs whose XSAVE area it cannot handle (Intel with AVX-512/AMX).</summary>
    Uml,

    /// <summary>QEMU with software emulation (TCG) running Debian's own 6.1 kernel: boots on every x86-64
    /// machine of this kind, ~5 s to init, 50–100× slower than the host once running.</summary>
    Qemu,
}

/// <summary>
/// A guest kernel for what this host's kernel lacks (GRE, ip6gre, ...). It runs on the host's root
/// filesystem, read-only (UML: hostfs; QEMU: virtio-9p under an overlay in guest memory), with
/// tests/guest/guest-init.sh as PID 1 (tmpfs over everything it writes), which runs a scenario script and
/// powers off. The scenario reports "@@ KEY VALUE" lines on the console; nothing the guest does can change
/// the host's files or network. The bed is chosen once per test run: TUNNEL_ROUTER_TEST_GUEST=uml or qemu
/// forces one; otherwise a probe boot of UML decides (UML where it boots, as it is far faster, else QEMU).
/// Scenarios that need a module of Debian's kernel (OpenVPN's ovpn-dco-v2: <see cref="RunWithDco"/>) always run in
/// QEMU. A guest that cannot boot is an error, never a skip.
/// </summary>
public static class GuestKernel
{
    static readonly Lazy<(GuestBed Bed, string Why)> Chosen = new(Choose);
    static readonly Lazy<QemuKernel> Qemu = new(QemuKernel.Prepare);
    static readonly Lazy<QemuKernel> Dco = new(() => Qemu.Value.WithDco());

    public static GuestBed Bed => Chosen.Value.Bed;

    /// <summary>Why this bed was chosen (for the test output).</summary>
    public static string Why => Chosen.Value.Why;

    /// <summary>How long a guest may say nothing on its console before it counts as hung. A scenario takes as long as
    /// what it waits for: every wait in tests/guest has its own ceiling on the guest's clock (at most 90 s, after which
    /// it reports the state it waited on and goes on), and every step says something; so the host gives up only on a
    /// guest silent for much longer than any such wait, never on a slow one (emulated, on a loaded machine).</summary>
    public static readonly TimeSpan Silence = TimeSpan.FromMinutes(10);

    /// <summary>Runs SCENARIO (a shell script in tests/guest) in the chosen guest, with WORKDIR (the test's
    /// policies) visible as $TR_WORK, until it powers off (or stays silent for <see cref="Silence"/>).</summary>
    public static GuestRun Run(string scenario, string workDir)
    {
        var (init, env) = Scenario(scenario, workDir);
        return Bed == GuestBed.Uml
            ? Boot(GuestBed.Uml, UmlCommand(init, env), Silence)
            : Boot(GuestBed.Qemu, Qemu.Value.Command(init, env), Silence);
    }

    /// <summary>Runs SCENARIO in the QEMU guest, whatever bed the other scenarios use, with OpenVPN's data channel
    /// offload module (ovpn-dco-v2) in its module tree: built by scripts/guest-dco.sh from Debian's
    /// openvpn-dco-dkms against the headers of exactly the guest kernel's release. UML's kernel is not Debian's
    /// and has no such module.</summary>
    public static GuestRun RunWithDco(string scenario, string workDir)
    {
        var (init, env) = Scenario(scenario, workDir);
        return Boot(GuestBed.Qemu, Dco.Value.Command(init, env), Silence);
    }

    /// <summary>Why the DCO scenarios run in QEMU (for the test output).</summary>
    public const string DcoWhy = "QEMU (TCG) always for DCO: the module is built for Debian's kernel";

    static (string Init, string[] Env) Scenario(string scenario, string workDir)
    {
        Prerequisites.RequireKernelTests();
        var init = Path.Combine(RepoRoot, "tests", "guest", "guest-init.sh");
        if (!File.Exists(init)) throw new InvalidOperationException($"{init} is missing");
        return (init, [$"TR_SCENARIO={scenario}", $"TR_BIN={Prerequisites.Binary}", $"TR_WORK={workDir}"]);
    }

    static (GuestBed, string) Choose()
    {
        var forced = Environment.GetEnvironmentVariable("TUNNEL_ROUTER_TEST_GUEST");
        switch (forced)
        {
            case "uml": return (GuestBed.Uml, "forced by TUNNEL_ROUTER_TEST_GUEST=uml");
            case "qemu": return (GuestBed.Qemu, "forced by TUNNEL_ROUTER_TEST_GUEST=qemu");
            case null or "" or "auto": break;
            default: throw new InvalidOperationException($"TUNNEL_ROUTER_TEST_GUEST='{forced}': expected uml, qemu or auto");
        }
        // The probe boots UML with an init that only says it runs: a CPU UML cannot handle panics in ~2 s; a boot that
        // hangs silently for a minute counts as not booting.
        var probe = Path.Combine(RepoRoot, "tests", "guest", "probe-init.sh");
        try
        {
            var run = Boot(GuestBed.Uml, UmlCommand(probe, []), TimeSpan.FromSeconds(60), requireEnd: false);
            return (GuestBed.Uml, $"a probe boot of User-Mode Linux reached init in {run.Ready!.Value.TotalSeconds:0.0} s");
        }
        catch (GuestBootException e)
        {
            return (GuestBed.Qemu, $"User-Mode Linux does not boot on this machine ({e.Reason}); using QEMU (TCG)");
        }
    }

    static (string File, string[] Args, string TempDir) UmlCommand(string init, string[] env)
    {
        var umlDir = Directory.CreateTempSubdirectory("tunnel-router-uml-").FullName;
        return (FindUml(), [
            "mem=256M", "root=/dev/root", "rootfstype=hostfs", "rootflags=/", "ro", $"init={init}",
            // Console output only: with con0=fd:0 an input at end of file (a closed pipe) hangs up the console,
            // and SIGHUP ends the scenario half-way.
            "con=null", "con0=null,fd:1", "quiet", $"uml_dir={umlDir}",
            // Unknown key=value words of the kernel command line reach init as its environment.
            "TR_BED=uml", .. env,
        ], umlDir);
    }

    /// <summary>Boots the guest and reads its console until it exits; one silent for <paramref name="silence"/> is killed.</summary>
    static GuestRun Boot(GuestBed bed, (string File, string[] Args, string TempDir) command, TimeSpan silence, bool requireEnd = true)
    {
        try
        {
            var psi = new ProcessStartInfo(command.File)
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var a in command.Args) psi.ArgumentList.Add(a);
            psi.Environment["TMPDIR"] = command.TempDir;

            var clock = Stopwatch.StartNew();
            using var p = Process.Start(psi)!;
            p.StandardInput.Close();
            TimeSpan? ready = null;
            long heard = 0; // ms of the clock at the last console line
            var lines = new List<string>();
            var stderr = p.StandardError.ReadToEndAsync();
            var reader = Task.Run(() =>
            {
                while (p.StandardOutput.ReadLine() is { } line)
                {
                    // The firmware's and kernel's terminal escapes can precede the first report on its line.
                    var at = line.IndexOf("@@ ", StringComparison.Ordinal);
                    line = (at > 0 ? line[at..] : line).TrimEnd('\r');
                    lock (lines) lines.Add(line);
                    Volatile.Write(ref heard, clock.ElapsedMilliseconds);
                    if (ready is null && line.StartsWith("@@ ready", StringComparison.Ordinal)) ready = clock.Elapsed;
                }
            });
            while (!p.WaitForExit(TimeSpan.FromSeconds(1)))
            {
                if (clock.ElapsedMilliseconds - Volatile.Read(ref heard) < silence.TotalMilliseconds) continue;
                try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                reader.Wait(TimeSpan.FromSeconds(5));
                throw new TimeoutException($"the {bed} guest said nothing for {silence.TotalSeconds:0} s ({clock.Elapsed.TotalSeconds:0} s after it started); console:\n{Tail(lines)}");
            }
            reader.Wait(TimeSpan.FromSeconds(10));
            var run = new GuestRun(bed, lines, ready, clock.Elapsed);
            if (ready is null)
                throw new GuestBootException(bed, FirstPanic(lines) ?? $"exit {p.ExitCode}",
                    $"console:\n{Tail(lines)}\nstderr: {stderr.Result}");
            if (run.Has("fatal"))
                throw new InvalidOperationException($"the {bed} guest failed to set up: {string.Join("; ", run.All("fatal"))}");
            if (requireEnd && !run.Has("end"))
                throw new InvalidOperationException($"the {bed} guest stopped before the scenario ended; console:\n{Tail(lines)}");
            return run;
        }
        finally
        {
            try { Directory.Delete(command.TempDir, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>The line that says why a guest died before init: UML names the failed call with its errno
    /// ("userspace - ptrace set fp regs failed, errno = 14") just before "Kernel panic".</summary>
    static string? FirstPanic(List<string> lines)
    {
        lock (lines)
            return (lines.FirstOrDefault(l => l.Contains("errno", StringComparison.Ordinal))
                    ?? lines.FirstOrDefault(l => l.Contains("Kernel panic", StringComparison.Ordinal)))?.Trim();
    }

    /// <summary>linux.uml of Debian's user-mode-linux package (dpkg -L), else where that package puts it.</summary>
    static string FindUml()
    {
        try
        {
            var listed = Sh.Run("/usr/bin/dpkg", ["-L", "user-mode-linux"]);
            var path = listed.Stdout.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.EndsWith("/linux.uml", StringComparison.Ordinal));
            if (path is not null && File.Exists(path)) return path;
        }
        catch (System.ComponentModel.Win32Exception) { }
        if (File.Exists("/usr/bin/linux.uml")) return "/usr/bin/linux.uml";
        throw new InvalidOperationException("linux.uml not found: the guest tests need Debian's user-mode-linux and kmod packages (./test.sh installs them)");
    }

    /// <summary>The checkout this test assembly was built from (where TunnelRouter.slnx is).</summary>
    public static string RepoRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "TunnelRouter.slnx"))) return dir.FullName;
            throw new InvalidOperationException($"no TunnelRouter.slnx above {AppContext.BaseDirectory}");
        }
    }

    static string Tail(List<string> lines)
    {
        lock (lines) return string.Join('\n', lines.TakeLast(40));
    }

    /// <summary>Debian's kernel (scripts/guest-kernel.sh) and an initramfs made for it at test time
    /// (tests/guest/qemu-initramfs.sh), once per test run.</summary>
    sealed class QemuKernel
    {
        QemuKernel(string dir, string initramfs) => (Dir, Initramfs) = (dir, initramfs);

        string Dir { get; }
        string Initramfs { get; }

        public static QemuKernel Prepare()
        {
            var cache = Environment.GetEnvironmentVariable("TUNNEL_ROUTER_GUEST_KERNEL_CACHE") is { Length: > 0 } c
                ? c
                : Path.Combine(RepoRoot, "artifacts", "guest-kernel");
            var fetched = Sh.Run("/usr/bin/bash", [Path.Combine(RepoRoot, "scripts", "guest-kernel.sh"), cache]);
            if (fetched.ExitCode != 0)
                throw new InvalidOperationException($"the QEMU guest's kernel could not be prepared: {fetched.Stderr.Trim()}");
            var dir = fetched.Stdout.Trim();
            var initramfs = Path.Combine(Directory.CreateTempSubdirectory("tunnel-router-qemu-").FullName, "initramfs.cpio");
            var built = Sh.Run("/bin/sh", [Path.Combine(RepoRoot, "tests", "guest", "qemu-initramfs.sh"), dir, initramfs]);
            if (built.ExitCode != 0)
                throw new InvalidOperationException($"the QEMU guest's initramfs could not be built: {built.Stderr.Trim()}");
            return new QemuKernel(dir, initramfs);
        }

        /// <summary>The same kernel with ovpn-dco-v2 added to its module tree (scripts/guest-dco.sh, once per
        /// kernel release; the module is loaded in the guest only, by modprobe).</summary>
        public QemuKernel WithDco()
        {
            // Compiling the module takes a minute or two on a loaded machine.
            var built = Sh.Run("/usr/bin/bash", [Path.Combine(RepoRoot, "scripts", "guest-dco.sh"), Dir], timeoutMs: 900_000);
            if (built.ExitCode != 0)
                throw new InvalidOperationException($"OpenVPN's DCO module could not be built for the QEMU guest's kernel: {built.Stderr.Trim()}");
            return this;
        }

        public (string, string[], string) Command(string init, string[] env)
        {
            var release = Path.GetFileName(Directory.GetDirectories(Path.Combine(Dir, "lib", "modules")).Single());
            var temp = Directory.CreateTempSubdirectory("tunnel-router-qemu-run-").FullName;
            return ("/usr/bin/qemu-system-x86_64", [
                // Nested KVM does not work on these machines; TCG emulates a CPU with the features the
                // published binary may use (-cpu max).
                "-accel", "tcg", "-cpu", "max", "-m", "512", "-smp", "1",
                "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
                "-kernel", Path.Combine(Dir, "vmlinuz"), "-initrd", Initramfs,
                "-virtfs", "local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap",
                "-append", string.Join(' ', [
                    "console=ttyS0", "panic=-1", "quiet", "TR_BED=qemu", $"TR_INIT={init}",
                    $"TR_MODULES={Path.Combine(Dir, "lib", "modules", release)}", .. env]),
            ], temp);
        }
    }
}

/// <summary>A guest that never reached its init: the reason is the first line that says why.</summary>
public sealed class GuestBootException(GuestBed bed, string reason, string detail)
    : InvalidOperationException($"the {bed} guest did not boot ({reason}); {detail}")
{
    public string Reason { get; } = reason;
}

/// <summary>What a guest reported: "@@ KEY VALUE" lines by key (a key may repeat: one line of output each).</summary>
public sealed class GuestRun
{
    readonly Dictionary<string, List<string>> _results = new(StringComparer.Ordinal);

    public GuestRun(GuestBed bed, IReadOnlyList<string> console, TimeSpan? ready, TimeSpan wall)
    {
        Bed = bed;
        Console = console;
        Ready = ready;
        Wall = wall;
        foreach (var line in console)
        {
            if (!line.StartsWith("@@ ", StringComparison.Ordinal)) continue;
            var rest = line[3..];
            var space = rest.IndexOf(' ');
            var key = space < 0 ? rest : rest[..space];
            var value = space < 0 ? "" : rest[(space + 1)..];
            if (!_results.TryGetValue(key, out var list)) _results[key] = list = [];
            list.Add(value);
        }
    }

    public GuestBed Bed { get; }

    public IReadOnlyList<string> Console { get; }

    /// <summary>From starting the guest to init's "ready" (modules loaded).</summary>
    public TimeSpan? Ready { get; }

    /// <summary>From starting the guest to its exit.</summary>
    public TimeSpan Wall { get; }

    public bool Has(string key) => _results.ContainsKey(key);

    public IReadOnlyList<string> All(string key) => _results.TryGetValue(key, out var v) ? v : [];

    /// <summary>The single value of KEY; fails the test when the guest did not report it.</summary>
    public string One(string key) => _results.TryGetValue(key, out var v) && v.Count > 0
        ? v[0]
        : throw new Xunit.Sdk.XunitException($"the guest reported no '{key}'; it reported: {string.Join(", ", _results.Keys)}");

    /// <summary>The output lines of a "run KEY ..." step, joined.</summary>
    public string Out(string key) => string.Join('\n', All(key + ".out"));

    public int Rc(string key) => int.Parse(One(key + ".rc"));
}
