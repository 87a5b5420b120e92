using Xunit;

namespace TunnelRouter.Tests.Package;

/// <summary>
/// A spec that needs the arm64 cross toolchain and qemu-user (scripts/deps.sh test installs both). Where either is
/// missing it is skipped with one line naming what is missing, except under CI (CI=true), where it runs and fails with
/// that line: CI cannot pass without the arm64 build.
/// </summary>
public sealed class Arm64FactAttribute : FactAttribute
{
    public static readonly (string Path, string Package)[] Tools =
    [
        ("/usr/bin/qemu-aarch64-static", "qemu-user-static"),
        ("/usr/bin/clang", "clang"),
        ("/usr/bin/ld.lld", "lld"),
        ("/usr/aarch64-linux-gnu/lib/libc.so.6", "libc6-dev-arm64-cross"),
        ("/usr/bin/aarch64-linux-gnu-objcopy", "binutils-aarch64-linux-gnu"),
    ];

    /// <summary>One line naming what is missing, or null.</summary>
    public static string? Missing()
    {
        var missing = Tools.Where(t => !File.Exists(t.Path)).Select(t => $"{t.Path} ({t.Package})").ToList();
        return missing.Count == 0 ? null : $"arm64: missing {string.Join(", ", missing)}; scripts/deps.sh test installs them";
    }

    public Arm64FactAttribute()
    {
        if (Missing() is { } line && Environment.GetEnvironmentVariable("CI") != "true") Skip = line;
    }
}
