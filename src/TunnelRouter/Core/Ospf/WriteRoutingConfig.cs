using System.Text;

namespace TunnelRouter.Core;

/// <summary>
/// Replaces the routing daemon's file that tunnel-router owns and tells the daemon to read it again (BIRD:
/// <c>birdc configure</c>; FRR: <c>vtysh -f</c>, after taking back what the old file had and the new one
/// lacks). Its inverse writes the old text back and reloads again, which is how a failed apply undoes it.
/// <see cref="New"/> null: the file keeps only its header (what flush leaves: an admin's bird.conf that
/// includes it still loads).
/// </summary>
public sealed record WriteRoutingConfig(RoutingDaemonKind Daemon, string Path, string? Control, string? Old, string? New) : Change
{
    public override Change Inverse() => this with { Old = New, New = Old };

    /// <summary>The text the file gets: the new configuration, or the empty one for flush.</summary>
    public string Text => New ?? Empty(Daemon);

    /// <summary>A file with nothing in it but what says whose it is.</summary>
    public static string Empty(RoutingDaemonKind daemon) => daemon == RoutingDaemonKind.Bird
        ? "# Written by tunnel-router: nothing is configured here now.\n"
        : "! Written by tunnel-router: nothing is configured here now.\n";

    /// <summary>The reload command a person would type.</summary>
    public string Reload => Daemon == RoutingDaemonKind.Bird
        ? $"birdc{(Control is null ? "" : $" -s {Control}")} configure"
        : $"vtysh{(Control is null ? "" : $" --vty_socket {Control}")} -f {Path}";

    /// <summary>The file's diff (lines taken out with "-", put in with "+") and the reload.</summary>
    public override string Display(TableNames tables, ProtocolNames protocols)
    {
        var b = new StringBuilder($"write {Path}");
        foreach (var line in LineDiff.Of(Old ?? "", Text)) b.Append('\n').Append(line);
        b.Append('\n').Append(Reload);
        return b.ToString();
    }
}

/// <summary>A line diff small enough for configuration files: the longest common subsequence, and every
/// other line of the old text as "-LINE", of the new as "+LINE", in file order.</summary>
public static class LineDiff
{
    public static IEnumerable<string> Of(string oldText, string newText)
    {
        var a = Lines(oldText);
        var b = Lines(newText);
        var lcs = new int[a.Length + 1, b.Length + 1];
        for (var i = a.Length - 1; i >= 0; i--)
            for (var j = b.Length - 1; j >= 0; j--)
                lcs[i, j] = a[i] == b[j] ? lcs[i + 1, j + 1] + 1 : Math.Max(lcs[i + 1, j], lcs[i, j + 1]);
        int x = 0, y = 0;
        while (x < a.Length || y < b.Length)
        {
            if (x < a.Length && y < b.Length && a[x] == b[y]) { x++; y++; }
            else if (y < b.Length && (x == a.Length || lcs[x, y + 1] > lcs[x + 1, y])) yield return "+" + b[y++];
            else yield return "-" + a[x++];
        }
    }

    static string[] Lines(string text) => text.Length == 0 ? [] : text.TrimEnd('\n').Split('\n');
}
