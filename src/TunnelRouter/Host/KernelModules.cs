namespace TunnelRouter.Host;

/// <summary>
/// Whether the running kernel has a module's feature, checked before anything changes so that a missing
/// one is one clear line rather than "Unknown device type" half-way through an apply. A module counts as
/// present when it is loaded (/proc/modules, /sys/module) or built in (modules.builtin); otherwise it is
/// loaded with modprobe (or, for plan and --dry-run, only looked for with "modprobe -n").
/// </summary>
public sealed class KernelModules(ProcessRunner runner, string procDir = "/proc", string sysModuleDir = "/sys/module",
    string modulesDir = "/lib/modules")
{
    static readonly string[] ModprobePaths = ["/usr/sbin/modprobe", "/sbin/modprobe", "/usr/bin/modprobe", "/bin/modprobe"];

    public bool IsPresent(string module)
    {
        if (Directory.Exists(Path.Combine(sysModuleDir, module))) return true;
        var procModules = Path.Combine(procDir, "modules");
        if (File.Exists(procModules) && File.ReadLines(procModules).Any(l => l.StartsWith(module + " ", StringComparison.Ordinal)))
            return true;
        var release = Path.Combine(procDir, "sys", "kernel", "osrelease");
        if (File.Exists(release))
        {
            var builtin = Path.Combine(modulesDir, File.ReadAllText(release).Trim(), "modules.builtin");
            if (File.Exists(builtin) && File.ReadLines(builtin).Any(l => l.EndsWith("/" + module + ".ko", StringComparison.Ordinal)))
                return true;
        }
        return false;
    }

    /// <summary>Throws <see cref="EnvironmentException"/> naming the module when the kernel lacks it and
    /// modprobe cannot provide it. <paramref name="load"/> false only checks that modprobe would find it.</summary>
    public void Require(string module, string what, bool load)
    {
        if (IsPresent(module)) return;
        var modprobe = Array.Find(ModprobePaths, File.Exists);
        if (modprobe is null)
            throw new EnvironmentException(
                $"{what} needs the kernel module {module}, which is not loaded, and modprobe is not installed to load it (Debian: apt-get install kmod)");
        var result = runner.Run(modprobe, load ? ["-q", module] : ["-n", "-q", module], check: false);
        if (result.ExitCode == 0 && (!load || IsPresent(module))) return;
        // modprobe -q prints nothing; ask again without -q for its reason.
        var reason = runner.Run(modprobe, ["-n", module], check: false).StandardError.Trim().Split('\n')[0];
        throw new EnvironmentException(
            $"{what} needs the kernel module {module}: this kernel does not have it loaded or built in, and 'modprobe {module}' " +
            $"cannot load it{(reason.Length > 0 ? $" ({reason})" : "")}");
    }
}
