using System.Net;
using System.Net.Sockets;
using TunnelRouter.Config;
using TunnelRouter.Core;

namespace TunnelRouter.Policy;

/// <summary>
/// A prefix file of the policy's PrefixLists: one prefix a line (IPv4 and IPv6 mixed, a bare address is a
/// host route), blank lines and "#" comments ignored; each prefix becomes the entry's Route. A bad line is an
/// error naming file:line. Duplicate and overlapping prefixes are fine (the kernel routes the longest match).
/// </summary>
public static class PrefixFile
{
    /// <summary>The largest prefix file read: a million IPv4 prefixes are about 17 MB.</summary>
    public const long MaxBytes = 256L << 20;

    /// <summary>Opens a prefix file after the policy file's own ownership and mode checks, read once from the
    /// descriptor that was checked: whoever can write the list decides where the traffic to its prefixes goes.</summary>
    public static TextReader Open(string path)
    {
        var file = StrictModes.Open(path, MaxBytes, "the prefix file") ?? throw new FileNotFoundException("it does not exist", path);
        return new FileReader(file.Stream(MaxBytes), file.WorldReadable);
    }

    /// <summary>The longest line read: a prefix with a comment fits many times over. Anything longer (a 200 MB file of
    /// one line) is refused at this length, not gathered into one string.</summary>
    public const int MaxLineChars = 4096;

    /// <summary>A prefix file as read from its descriptor; <see cref="WorldReadable"/> false: its errors quote no line.</summary>
    sealed class FileReader(Stream stream, bool worldReadable)
        : StreamReader(stream, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: false, bufferSize: 1 << 16)
    {
        public bool WorldReadable { get; } = worldReadable;
    }

    /// <param name="into">where the routes go (packed), or null for a list of their own.</param>
    internal static PrefixListRoutes Parse(string field, PrefixListOptions o, PolicyTables tables, byte protocol, Func<string, TextReader> open,
        PackedRoutes? into = null)
    {
        if (string.IsNullOrEmpty(o.File)) throw new InputException($"{field}.File", "is not set; expected the path of a file of prefixes, one a line");
        if (!Path.IsPathFullyQualified(o.File)) throw new InputException($"{field}.File", $"'{Net.Printable(o.File)}' is not an absolute path");
        if (string.IsNullOrWhiteSpace(o.Route))
            throw new InputException($"{field}.Route", "is not set; expected the route each prefix becomes, e.g. \"via 10.8.0.1 dev tun0 table vpn\"");
        if (o.Route.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries) is [var first, ..] && first is "-4" or "-6" or "inet" or "inet6" or "to")
            throw new InputException($"{field}.Route", "takes no family and no destination: the file gives them, prefix by prefix");

        // The route once per family, with a stand-in destination; each prefix then takes its place.
        var v4 = Template($"{field}.Route", "-4 default " + o.Route, tables, protocol);
        var v6 = Template($"{field}.Route", "-6 default " + o.Route, tables, protocol);
        if (v4.Route is null && v6.Route is null) throw v4.Error!;
        var table = (v4.Route ?? v6.Route)!.Table;

        var routes = into ?? new PackedRoutes();
        var start = routes.Count;
        RouteTail? v4Tail = v4.Route is null ? null : routes.Tail(new RouteTail(v4.Route)), v6Tail = v6.Route is null ? null : routes.Tail(new RouteTail(v6.Route));
        var name = Path.GetFileName(o.File);
        TextReader reader;
        try { reader = open(o.File); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InputException($"{field}.File", $"'{o.File}' cannot be read: {e.Message}");
        }
        // A file not everyone may read (plan 'PrefixLists:0:File=/etc/shadow') is named by line, never quoted.
        var quote = reader is not FileReader { WorldReadable: false };
        string Shown(ReadOnlySpan<char> text) => quote ? $"'{Net.Printable(text.ToString())}'" : "the line";
        var number = 0;
        using (reader)
        try
        {
            foreach (var line in Lines(reader, MaxLineChars))
            {
                number++;
                var text = line.Span;
                var hash = text.IndexOf('#');
                if (hash >= 0) text = text[..hash];
                text = text.Trim();
                if (text.IsEmpty) continue;
                if (!TryParsePrefix(text, out var address, out var isV6, out var length))
                    throw new InputException($"{o.File}:{number}",
                        $"{Shown(text)} is not a prefix; expected one IPv4 or IPv6 prefix a line, without host bits (e.g. 10.0.0.0/8, 2001:db8::/32)");
                var (template, error) = isV6 ? v6 : v4;
                if (template is null)
                    throw new InputException($"{o.File}:{number}", $"{Shown(text)} cannot take {field}.Route: {error!.Message}");
                routes.Add(new PackedRoute(new PackedRouteKey(address, isV6, length, template.Table, template.Metric), (isV6 ? v6Tail : v4Tail)!));
            }
        }
        catch (InvalidDataException)
        {
            throw new InputException($"{o.File}:{number + 1}", $"the line is longer than {MaxLineChars} characters; expected one prefix a line");
        }
        catch (Host.FileRefusedException e)
        {
            throw new InputException($"{field}.File", $"'{o.File}' {e.Message}");
        }
        return new PrefixListRoutes(field, name, table, routes.Range(start, routes.Count - start));
    }

    /// <summary>
    /// The lines of <paramref name="reader"/> as TextReader.ReadLine splits them (at "\n", "\r\n" or "\r"), each a
    /// slice of one buffer that the next line reuses: a million lines are read without a string each.
    /// </summary>
    /// <param name="maxLine">the longest line taken: a longer one is an <see cref="InvalidDataException"/>, read no further.</param>
    internal static IEnumerable<ReadOnlyMemory<char>> Lines(TextReader reader, int maxLine = int.MaxValue)
    {
        var buffer = new char[1 << 16];
        var filled = 0;
        var ended = false;
        while (true)
        {
            if (!ended)
            {
                if (filled == buffer.Length) Array.Resize(ref buffer, buffer.Length * 2); // a line longer than the buffer
                var read = reader.Read(buffer, filled, buffer.Length - filled);
                if (read == 0) ended = true;
                filled += read;
            }
            var at = 0;
            while (at < filled)
            {
                var end = buffer.AsSpan(at, filled - at).IndexOfAny('\r', '\n');
                if ((end < 0 ? filled - at : end) > maxLine) throw new InvalidDataException($"a line longer than {maxLine} characters");
                // A line that goes on past the buffer, or a "\r" whose "\n" may be the next read's first char.
                if (!ended && (end < 0 || at + end == filled - 1 && buffer[at + end] == '\r')) break;
                if (end < 0)
                {
                    yield return buffer.AsMemory(at, filled - at);
                    at = filled;
                    break;
                }
                yield return buffer.AsMemory(at, end);
                at += end + (buffer[at + end] == '\r' && at + end + 1 < filled && buffer[at + end + 1] == '\n' ? 2 : 1);
            }
            if (ended && at >= filled) yield break;
            buffer.AsSpan(at, filled - at).CopyTo(buffer);
            filled -= at;
        }
    }

    static (Route? Route, InputException? Error) Template(string field, string line, PolicyTables tables, byte protocol)
    {
        try { return (PolicyLine.ParseRoute(field, line, tables.ForLines(field), protocol), null); }
        catch (InputException e) { return (null, e); }
    }

    /// <summary>"10.0.0.0/8", "2001:db8::/32", or an address alone (a host route); false for host bits set or
    /// anything but the dotted quad and IPv6 text (no "10/8", no zone).</summary>
    public static bool TryParsePrefix(ReadOnlySpan<char> text, out IPNetwork prefix)
    {
        prefix = default;
        if (!TryParsePrefix(text, out var address, out var v6, out var length)) return false;
        prefix = new PackedRouteKey(address, v6, length, 0, 0).Destination;
        return true;
    }

    /// <summary>The same as a number (an IPv4 address in the low 32 bits), with no object made.</summary>
    internal static bool TryParsePrefix(ReadOnlySpan<char> text, out UInt128 address, out bool v6, out int length)
    {
        length = 0;
        var slash = text.IndexOf('/');
        if (!Net.TryParseAddressBits(slash < 0 ? text : text[..slash], out address, out v6)) return false;
        var max = v6 ? 128 : 32;
        length = max;
        if (slash >= 0)
        {
            var bits = text[(slash + 1)..];
            if (bits.Length is 0 or > 3 || !int.TryParse(bits, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out length)
                || length > max)
                return false;
        }
        // No host bits: the address is its own network.
        return (address & PackedRouteKey.HostBits(v6, length)) == 0;
    }
}
