namespace TunnelRouter.Tests.Support;

/// <summary>The source checkout the tests run from: scripts and contrib files are tested as shipped.</summary>
public static class Repo
{
    public static string Root { get; } = Find();

    public static string File(params string[] parts) => Path.Combine([Root, .. parts]);

    static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (System.IO.File.Exists(Path.Combine(dir.FullName, "install.sh")) && Directory.Exists(Path.Combine(dir.FullName, "src")))
                return dir.FullName;
        throw new InvalidOperationException($"no checkout (install.sh, src/) above {AppContext.BaseDirectory}");
    }

    /// <summary>A copy of a shipped script with the installed binary's path replaced by the binary under test.</summary>
    public static string CopyWithBinary(string relativePath, string directory, bool executable = true)
    {
        var text = System.IO.File.ReadAllText(File(relativePath.Split('/')))
            .Replace("/usr/local/sbin/tunnel-router", Prerequisites.Binary);
        var target = Path.Combine(directory, Path.GetFileName(relativePath));
        System.IO.File.WriteAllText(target, text);
        var mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        if (executable) mode |= UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
        System.IO.File.SetUnixFileMode(target, mode);
        return target;
    }
}
