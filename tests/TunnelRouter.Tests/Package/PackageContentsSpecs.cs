using TunnelRouter.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace TunnelRouter.Tests.Package;

/// <summary>What scripts/package.sh puts in each package, and what lintian says of it.</summary>
[Collection("package")]
public class PackageContentsSpecs(PackageBuilds builds, ITestOutputHelper output)
{
    static readonly string[] Expected =
    [
        "./usr/sbin/tunnel-router",
        "./usr/lib/systemd/system/tunnel-router.service",
        "./usr/lib/systemd/system/tunnel-router-watch.service",
        "./usr/lib/NetworkManager/dispatcher.d/90-tunnel-router",
        "./usr/share/tunnel-router/hooks/up",
        "./usr/share/tunnel-router/hooks/down",
        "./etc/tunnel-router/tunnel-router.json",
        "./usr/share/man/man8/tunnel-router.8.gz",
        "./usr/share/man/man5/tunnel-router.json.5.gz",
        "./usr/share/bash-completion/completions/tunnel-router",
        "./usr/share/zsh/vendor-completions/_tunnel-router",
        "./usr/share/doc/tunnel-router/copyright",
        "./usr/share/doc/tunnel-router/changelog.gz",
        "./usr/share/doc/tunnel-router/README.Debian",
        "./usr/share/lintian/overrides/tunnel-router",
    ];

    void Holds_everything_where_Debian_puts_it(string arch)
    {
        var deb = builds.Deb(arch);
        var list = Sh.Run("/usr/bin/dpkg-deb", ["-c", deb]).ShouldSucceed().Stdout;
        var info = Sh.Run("/usr/bin/dpkg-deb", ["-I", deb]).ShouldSucceed().Stdout;
        output.WriteLine($"{Path.GetFileName(deb)}\n{info}\n{list}");
        var paths = list.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[5]).ToList();

        foreach (var path in Expected) Assert.Contains(path, paths);
        foreach (var example in Directory.GetFiles(Repo.File("contrib", "examples"), "*.json"))
            Assert.Contains($"./usr/share/doc/tunnel-router/examples/{Path.GetFileName(example)}", paths);
        Assert.Contains($" Version: {builds.Version}\n", info);
        Assert.Contains($" Architecture: {arch}\n", info);
        Assert.Equal("/etc/tunnel-router/tunnel-router.json", DebControlFile(deb, "conffiles").Trim());
        // Every script and unit calls the binary where the package puts it.
        var dir = Directory.CreateTempSubdirectory("tunnel-router-deb-").FullName;
        try
        {
            Sh.Run("/usr/bin/dpkg-deb", ["-x", deb, dir]).ShouldSucceed();
            foreach (var text in new[] { "usr/lib/systemd/system/tunnel-router.service", "usr/lib/systemd/system/tunnel-router-watch.service",
                         "usr/lib/NetworkManager/dispatcher.d/90-tunnel-router", "usr/share/tunnel-router/hooks/up", "usr/share/tunnel-router/hooks/down" })
            {
                var content = File.ReadAllText(Path.Combine(dir, text));
                Assert.DoesNotContain("/usr/local", content);
                Assert.Contains("/usr/sbin/tunnel-router", content);
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    static string DebControlFile(string deb, string name) =>
        Sh.Run("/usr/bin/dpkg-deb", ["-I", deb, name]).ShouldSucceed().Stdout;

    void Lintian_says_nothing_but_the_justified_overrides(string arch)
    {
        var deb = builds.Deb(arch);
        var run = Sh.Run("/usr/bin/lintian", ["-I", "--show-overrides", "--no-tag-display-limit", deb], timeoutMs: 300_000);
        output.WriteLine($"$ lintian -I --show-overrides {Path.GetFileName(deb)} -> exit {run.ExitCode}\n{run.Stdout}");

        var tags = run.Stdout.Split('\n').Where(l => l.Length > 2 && l[1] == ':' && l[0] is 'E' or 'W' or 'I' or 'X' or 'P').ToList();
        Assert.True(run.ExitCode == 0 && tags.Count == 0, $"lintian (exit {run.ExitCode}):\n{string.Join("\n", tags)}\n{run.Stderr}");
    }

    [Fact]
    public void The_amd64_package_holds_the_binary_units_man_pages_completions_examples_policy_and_shims_where_Debian_puts_them() =>
        Holds_everything_where_Debian_puts_it("amd64");

    [Arm64Fact]
    public void The_arm64_package_holds_the_same_files() => Holds_everything_where_Debian_puts_it("arm64");

    [Fact]
    public void Lintian_reports_nothing_on_the_amd64_package_beyond_its_justified_overrides() => Lintian_says_nothing_but_the_justified_overrides("amd64");

    [Arm64Fact]
    public void Lintian_reports_nothing_on_the_arm64_package_beyond_its_justified_overrides() => Lintian_says_nothing_but_the_justified_overrides("arm64");

    [Fact]
    public void Package_sh_without_scripts_docs_sh_fails_with_one_line()
    {
        var copy = Directory.CreateTempSubdirectory("tunnel-router-package-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(copy, "scripts"));
            File.Copy(Repo.File("scripts", "package.sh"), Path.Combine(copy, "scripts", "package.sh"));

            var run = Sh.Run("/bin/bash", [Path.Combine(copy, "scripts", "package.sh"), "amd64"]);

            Assert.Equal(1, run.ExitCode);
            Assert.Equal("package.sh: scripts/docs.sh is missing (it generates the man pages and completions)", run.Stderr.Trim());
        }
        finally { Directory.Delete(copy, true); }
    }
}
