using TunnelRouter.Tests.Support;
using Xunit;

namespace TunnelRouter.Tests.Integration;

/// <summary>install.sh staged under a directory of the test's own (--destdir), with the binary under test
/// (--binary): what it installs, what it never overwrites, and that --uninstall takes back only its own.</summary>
public class InstallSpecs : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("tunnel-router-install-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    string At(string path) => _root + path;

    RunResult Install(params string[] args) =>
        Sh.Run("/bin/bash", [Repo.File("install.sh"), "--destdir", _root, "--binary", Prerequisites.Binary, .. args],
            new Dictionary<string, string> { ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin" }).ShouldSucceed();

    static UnixFileMode Mode(string path) => File.GetUnixFileMode(path);

    const UnixFileMode Rw_r__r__ = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
    const UnixFileMode Rwxr_xr_x = Rw_r__r__ | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    [Fact]
    public void A_plain_install_puts_the_binary_hooks_unit_and_a_root_only_writable_policy_in_place()
    {
        Install();

        Assert.Equal(File.ReadAllBytes(Prerequisites.Binary), File.ReadAllBytes(At("/usr/local/sbin/tunnel-router")));
        Assert.Equal(Rwxr_xr_x, Mode(At("/usr/local/sbin/tunnel-router")));
        Assert.Equal(File.ReadAllText(Repo.File("hooks", "up")), File.ReadAllText(At("/usr/local/share/tunnel-router/hooks/up")));
        Assert.Equal(Rwxr_xr_x, Mode(At("/usr/local/share/tunnel-router/hooks/down")));
        Assert.Equal(Rw_r__r__, Mode(At("/etc/tunnel-router/tunnel-router.json")));
        Assert.Equal(Rwxr_xr_x, Mode(At("/etc/tunnel-router")));
        Assert.True(File.Exists(At("/etc/systemd/system/tunnel-router.service")));
        Assert.Equal(File.ReadAllText(Repo.File("contrib", "systemd", "tunnel-router-watch.service")),
            File.ReadAllText(At("/etc/systemd/system/tunnel-router-watch.service")));
        Assert.False(File.Exists(At("/etc/openvpn/up")), "/etc/openvpn/up is only installed with --openvpn-hook");
    }

    [Fact]
    public void The_installed_policy_is_accepted_by_the_binary_and_changes_nothing()
    {
        Install();
        using var ns = new NetNs();

        var plan = TunnelRouterProcess.Run(ns, ["plan", "--config", At("/etc/tunnel-router/tunnel-router.json")]);

        Assert.Equal(0, plan.ExitCode);
        Assert.Equal("", plan.Stdout.Trim());
    }

    [Fact]
    public void The_openvpn_hook_is_installed_when_asked_but_never_over_an_existing_file()
    {
        Directory.CreateDirectory(At("/etc/openvpn"));
        File.WriteAllText(At("/etc/openvpn/up"), "#!/bin/sh\n# the admin's own\n");

        var run = Install("--openvpn-hook");

        Assert.Equal("#!/bin/sh\n# the admin's own\n", File.ReadAllText(At("/etc/openvpn/up")));
        Assert.Contains("kept /etc/openvpn/up", run.Stdout);

        File.Delete(At("/etc/openvpn/up"));
        Install("--openvpn-hook");
        Assert.Equal(File.ReadAllText(Repo.File("hooks", "up")), File.ReadAllText(At("/etc/openvpn/up")));
    }

    [Fact]
    public void An_existing_policy_is_never_replaced()
    {
        Directory.CreateDirectory(At("/etc/tunnel-router"));
        File.WriteAllText(At("/etc/tunnel-router/tunnel-router.json"), "{ \"Table\": \"mine\" }\n");

        Install();

        Assert.Equal("{ \"Table\": \"mine\" }\n", File.ReadAllText(At("/etc/tunnel-router/tunnel-router.json")));
    }

    [Fact]
    public void Uninstall_removes_what_install_put_there_and_keeps_what_the_admin_changed_or_owned()
    {
        Directory.CreateDirectory(At("/etc/openvpn"));
        File.WriteAllText(At("/etc/openvpn/server.conf"), "dev tun0\n");
        Install("--openvpn-hook");
        File.AppendAllText(At("/etc/tunnel-router/tunnel-router.json"), "\n");

        var run = Sh.Run("/bin/bash", [Repo.File("install.sh"), "--destdir", _root, "--uninstall"]).ShouldSucceed();

        var left = Directory.EnumerateFileSystemEntries(_root, "*", SearchOption.AllDirectories)
            .Where(File.Exists).Select(p => p[_root.Length..]).Order().ToList();
        Assert.Equal(["/etc/openvpn/server.conf", "/etc/tunnel-router/tunnel-router.json"], left);
        Assert.False(Directory.Exists(At("/usr/local/share/tunnel-router")));
        Assert.Contains("kept /etc/tunnel-router/tunnel-router.json (changed since it was installed)", run.Stdout);
    }

    [Fact]
    public void A_prefix_install_writes_only_the_binary()
    {
        var prefix = Path.Combine(_root, "opt");

        Sh.Run("/bin/bash", [Repo.File("install.sh"), "--prefix", prefix, "--binary", Prerequisites.Binary]).ShouldSucceed();

        var files = Directory.EnumerateFiles(_root, "*", SearchOption.AllDirectories).Select(p => p[_root.Length..]).ToList();
        Assert.Equal(["/opt/sbin/tunnel-router"], files);
    }
}
