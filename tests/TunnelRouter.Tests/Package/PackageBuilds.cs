using System.Diagnostics;
using TunnelRouter.Tests.Support;
using Xunit;

namespace TunnelRouter.Tests.Package;

/// <summary>The package specs share one build of each package per test run (the arm64 cross build and a native-AOT
/// build cost minutes on 2 cores) and run one after the other.</summary>
[CollectionDefinition("package", DisableParallelization = true)]
public class PackageCollection : ICollectionFixture<PackageBuilds>;

/// <summary>
/// The packages as <c>scripts/package.sh</c> builds them from this tree, each built once, when a spec first asks for
/// it: the project file's version, and an older one (<see cref="PreviousVersion"/>) of the same tree to upgrade from.
/// How long each build took is kept for the specs to print.
/// </summary>
public sealed class PackageBuilds
{
    readonly Dictionary<(string Arch, string Version), Lazy<string>> _debs = [];
    readonly List<string> _timings = [];

    public string Out { get; } = Repo.File("artifacts", "deb-test");

    /// <summary>The version in the project file, which <c>tunnel-router --version</c> prints.</summary>
    public string Version { get; } = System.Text.RegularExpressions.Regex
        .Match(File.ReadAllText(Repo.File("src", "TunnelRouter", "TunnelRouter.csproj")), "<Version>(.*)</Version>").Groups[1].Value;

    /// <summary>The "previous build" an upgrade starts from: the same tree with a lower version.</summary>
    public const string PreviousVersion = "0.0.1";

    public IReadOnlyList<string> Timings { get { lock (_timings) return [.. _timings]; } }

    /// <summary>The path of tunnel-router_VERSION_ARCH.deb, built on first use.</summary>
    public string Deb(string arch, string? version = null)
    {
        version ??= Version;
        Lazy<string> lazy;
        lock (_debs)
            if (!_debs.TryGetValue((arch, version), out lazy!))
                _debs[(arch, version)] = lazy = new Lazy<string>(() => Build(arch, version));
        return lazy.Value;
    }

    string Build(string arch, string version)
    {
        if (!File.Exists(Repo.File("scripts", "docs.sh")))
            throw new InvalidOperationException("scripts/docs.sh is missing: the package's man pages and completions come from it");
        var clock = Stopwatch.StartNew();
        var run = Sh.Run("/bin/bash", [Repo.File("scripts", "package.sh"), "--out", Out, "--version", version, arch], timeoutMs: 20 * 60_000);
        if (run.ExitCode != 0)
            throw new InvalidOperationException($"scripts/package.sh --version {version} {arch}: exit {run.ExitCode}\n{run.Stderr}{run.Stdout}");
        lock (_timings) _timings.Add($"scripts/package.sh --version {version} {arch}: {clock.Elapsed.TotalSeconds:0} s");
        var deb = Path.Combine(Out, $"tunnel-router_{version}_{arch}.deb");
        Assert.True(File.Exists(deb), $"scripts/package.sh wrote no {deb}:\n{run.Stdout}");
        return deb;
    }
}
