using System.Text;
using System.Text.Json;

namespace TunnelRouter.Kernel;

/// <summary>
/// What <c>ip -j</c> prints, parsed. iproute2 writes the kernel's strings (a link's name, its alias) byte for byte, so
/// a link root named <c>e\033[31m</c> makes output no JSON reader takes (a control character inside a string): those
/// are escaped first. Kernel strings are data: a name never crashes a command, and is printed escaped where shown.
/// </summary>
static class IpJson
{
    public static JsonDocument Parse(string json) => JsonDocument.Parse(Escaped(json));

    /// <summary>Control characters inside strings as \u00XX; outside strings they are whitespace (or the reader's
    /// error, as before). Unchanged, and not copied, when there are none.</summary>
    internal static string Escaped(string json)
    {
        var span = json.AsSpan();
        var any = false;
        foreach (var c in span)
            if (c < ' ' && c is not ('\n' or '\r' or '\t')) { any = true; break; }
        if (!any && !HasControlInString(span)) return json;
        var text = new StringBuilder(json.Length + 16);
        bool inString = false, escaped = false;
        foreach (var c in span)
        {
            if (inString && c < ' ') { text.Append("\\u00").Append(((int)c).ToString("x2", System.Globalization.CultureInfo.InvariantCulture)); escaped = false; continue; }
            text.Append(c);
            if (escaped) escaped = false;
            else if (inString && c == '\\') escaped = true;
            else if (c == '"') inString = !inString;
        }
        return text.ToString();
    }

    /// <summary>A tab or line break inside a string (ip prints an alias as given).</summary>
    static bool HasControlInString(ReadOnlySpan<char> json)
    {
        bool inString = false, escaped = false;
        foreach (var c in json)
        {
            if (escaped) { escaped = false; continue; }
            if (inString && c < ' ') return true;
            if (inString && c == '\\') escaped = true;
            else if (c == '"') inString = !inString;
        }
        return false;
    }
}
