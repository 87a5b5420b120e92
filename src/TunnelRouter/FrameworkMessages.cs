using System.Text.RegularExpressions;

namespace TunnelRouter;

/// <summary>
/// A framework exception's message in words. This build strips the framework's sentences
/// (UseSystemResourceKeys): "Access to the path '/run/x' is denied." arrives as
/// "UnauthorizedAccess_IODenied_Path, /run/x". The errno's own words (strerror) survive, and so do the
/// arguments after the key; the exception's type says the rest.
/// </summary>
public static partial class FrameworkMessages
{
    /// <summary>"/run/x: permission denied": the path the framework named, and why.</summary>
    public static string Of(Exception e)
    {
        var m = ResourceKey().Match(e.Message);
        if (!m.Success) return e.Message;
        return (m.Groups[2].Success ? m.Groups[2].Value + ": " : "") + Reason(e, m);
    }

    /// <summary>Only the why, for a caller that names the path itself.</summary>
    public static string Reason(Exception e) => ResourceKey().Match(e.Message) is { Success: true } m ? Reason(e, m) : e.Message;

    static string Reason(Exception e, Match m) =>
        e switch
        {
            // The inner exception carries strerror: "Permission denied", "Operation not permitted", "Read-only file system".
            UnauthorizedAccessException { InnerException: IOException { Message: var errno } } when !ResourceKey().IsMatch(errno) => errno,
            UnauthorizedAccessException => "permission denied",
            FileNotFoundException => "no such file or directory",
            DirectoryNotFoundException => "a directory on its path does not exist",
            PathTooLongException => "the path is too long",
            IOException when m.Groups[1].Value.Contains("FileExists", StringComparison.Ordinal) => "already exists",
            IOException when m.Groups[1].Value.Contains("SharingViolation", StringComparison.Ordinal) => "in use by another process",
            _ => Words(m.Groups[1].Value),
        };

    /// <summary>"Arg_InvalidCastException" → "invalid cast exception": the last resort, still words.</summary>
    static string Words(string key)
    {
        var name = key.Contains('_') ? key[(key.IndexOf('_') + 1)..] : key;
        return CamelHump().Replace(name.Replace('_', ' '), " $1").Trim().ToLowerInvariant();
    }

    // "Key_Name" or "Key_Name, argument, ...": a resource key where the framework's sentence would be.
    [GeneratedRegex(@"^([A-Z][A-Za-z0-9]*_[A-Za-z0-9_]+)(?:, (.*))?$", RegexOptions.Singleline)]
    private static partial Regex ResourceKey();

    [GeneratedRegex("(?<=[a-z0-9])([A-Z])")]
    private static partial Regex CamelHump();
}
