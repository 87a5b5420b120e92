using System.Diagnostics;

namespace TunnelRouter.Tests.Support;

/// <summary>
/// A User-Mode Linux guest (Debian's user-mode-linux: a 6.1 kernel with ip_gre, ip6_gre and veth as
/// modules) for what this host's kernel lacks. It boots the host's root filesystem read-only over hostfs,
/// runs tests/uml/guest-init.sh as PID 1 (tmpfs over everything it writes, modules loaded), which runs a
/// scenario script and powers off. The scenario reports "@@ KEY VALUE" lines on the console; nothing the
/// guest does can change the host's files or network. A guest that cannot boot is an error, never a skip.
/// </summary>
public static class UmlGuest
{
    public static UmlRun Run(string scenario, string workDir, TimeSpan timeout)
    {
        Prerequisites.RequireKernelTests();
        var kernel = FindKernel();
        var init = Path.Combine(RepoRoot, "tests", "uml", "guest-init.sh");
        if (!File.Exists(init)) throw new InvalidOperationException($"{init} is missing");
        var umlDir = Directory.CreateTempSubdirectory("tunnel-router-uml-").FullName;
        try
        {
            var psi = new ProcessStartInfo(kernel)
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var a in new[]
                     {
                         "mem=256M", "root=/dev/root", "rootfstype=hostfs", "rootflags=/", "ro", $"init={init}",
                         // Console output only: with con0=fd:0 an input at end of file (a closed pipe) hangs up
                         // the console, and SIGHUP ends the scenario half-way.
                         "con=null", "con0=null,fd:1", "quiet", $"uml_dir={umlDir}",
                         // Unknown key=value words of the kernel command line reach init as its environment.
                         $"TR_SCENARIO={scenario}", $"TR_BIN={Prerequisites.Binary}", $"TR_WORK={workDir}",
                     })
                psi.ArgumentList.Add(a);
            psi.Environment["TMPDIR"] = umlDir;

            var clock = Stopwatch.StartNew();
            using var p = Process.Start(psi)!;
            p.StandardInput.Close();
            TimeSpan? ready = null;
            var lines = new List<string>();
            var stderr = p.StandardError.ReadToEndAsync();
            var reader = Task.Run(() =>
            {
                while (p.StandardOutput.ReadLine() is { } line)
                {
                    line = line.TrimEnd('\r');
                    lock (lines) lines.Add(line);
                    if (ready is null && line.StartsWith("@@ ready", StringComparison.Ordinal)) ready = clock.Elapsed;
                }
            });
            if (!p.WaitForExit(timeout))
            {
                try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                reader.Wait(TimeSpan.FromSeconds(5));
                throw new TimeoutException($"the UML guest did not finish in {timeout.TotalSeconds:0} s; console:\n{Tail(lines)}");
            }
            reader.Wait(TimeSpan.FromSeconds(10));
            var run = new UmlRun(lines, ready, clock.Elapsed);
            if (ready is null)
                throw new InvalidOperationException(
                    $"the UML guest ({kernel}) did not boot (exit {p.ExitCode}); console:\n{Tail(lines)}\nstderr: {stderr.Result}");
            if (run.Has("fatal"))
                throw new InvalidOperationException($"the UML guest failed to set up: {string.Join("; ", run.All("fatal"))}");
            if (!run.Has("end"))
                throw new InvalidOperationException($"the UML guest stopped before the scenario ended; console:\n{Tail(lines)}");
            return run;
        }
        finally
        {
            try { Directory.Delete(umlDir, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>linux.uml of Debian's user-mode-linux package (dpkg -L), else where that package puts it.</summary>
    static string FindKernel()
    {
        try
        {
            var listed = Sh.Run("/usr/bin/dpkg", ["-L", "user-mode-linux"]);
            var path = listed.Stdout.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.EndsWith("/linux.uml", StringComparison.Ordinal));
            if (path is not null && File.Exists(path)) return path;
        }
        catch (System.ComponentModel.Win32Exception) { }
        if (File.Exists("/usr/bin/linux.uml")) return "/usr/bin/linux.uml";
        throw new InvalidOperationException("linux.uml not found: the UML tests need Debian's user-mode-linux and kmod packages (./test.sh installs them)");
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
}

/// <summary>What a guest reported: "@@ KEY VALUE" lines by key (a key may repeat: one line of output each).</summary>
public sealed class UmlRun
{
    readonly Dictionary<string, List<string>> _results = new(StringComparer.Ordinal);

    public UmlRun(IReadOnlyList<string> console, TimeSpan? ready, TimeSpan wall)
    {
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

    public IReadOnlyList<string> Console { get; }

    /// <summary>From starting linux.uml to init's "ready" (modules loaded).</summary>
    public TimeSpan? Ready { get; }

    /// <summary>From starting linux.uml to its exit.</summary>
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
