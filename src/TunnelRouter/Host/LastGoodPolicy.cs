namespace TunnelRouter.Host;

/// <summary>
/// The policy file's text as the last successful apply, up or watch loaded it: <c>last-good.json</c> in the run directory
/// (the lock's: /run/tunnel-router), root's, 0600, replaced atomically and only when it changed. A broken policy never
/// takes a tunnel down (docs/lifecycle.md): the hook and watch run on this copy, and say so, when the policy file does not
/// load. /run is emptied at boot: a broken policy at boot has no last good one, and the hook fails as before.
/// </summary>
public sealed class LastGoodPolicy(string runDir)
{
    public const string FileName = "last-good.json";

    public string Path { get; } = System.IO.Path.Combine(runDir, FileName);

    public static LastGoodPolicy ForLock(string lockFile) => new(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(lockFile))!);

    public bool Exists => File.Exists(Path);

    /// <summary>Keeps <paramref name="text"/> as the last good policy; nothing is written when it is that already.</summary>
    public void Save(string text)
    {
        if (OwnedFile.Holds(Path, text)) return;
        OwnedFile.Replace(Path, text, (UnixFileMode)0b110_000_000, durable: false);
    }
}
