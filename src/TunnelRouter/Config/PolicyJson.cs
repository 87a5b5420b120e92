using System.Text;
using System.Text.Json;

namespace TunnelRouter.Config;

/// <summary>
/// Says where and why a policy file is not JSON the configuration reader takes, in words: line, column, what
/// was expected and what was found. This build carries the framework's messages as resource keys (a syntax
/// error reads "Error_JSONParseError"), and even the framework's own words name neither the line nor what
/// would have been right. Run only after the reader refused a file, with the reader's own options.
/// </summary>
public static class PolicyJson
{
    static readonly JsonReaderOptions Options = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };

    const string AValue = "a value (\"text\", a number, true, false, null, [ ... ] or { ... })";

    /// <summary>"line 3, column 3: expected ',' or ']', found '"Routes"'", or null when the reader takes the file.</summary>
    /// <param name="quote">false for a file not everyone may read: the place and what was expected, never what is
    /// there (a plan -c /etc/shadow must not print a line of it).</param>
    public static string? Problem(ReadOnlySpan<byte> json, bool quote = true)
    {
        if (json.StartsWith("\uFEFF"u8)) json = json[3..];
        var reader = new Utf8JsonReader(json, Options);
        var containers = new Stack<HashSet<string>?>(); // the keys of an object, null for an array
        var last = JsonTokenType.None;
        var end = 0;
        try
        {
            while (reader.Read())
            {
                var start = (int)reader.TokenStartIndex;
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject:
                        containers.Push(new HashSet<string>(StringComparer.OrdinalIgnoreCase));
                        break;
                    case JsonTokenType.EndObject or JsonTokenType.EndArray:
                        containers.Pop();
                        break;
                    case JsonTokenType.PropertyName:
                        var name = reader.GetString()!;
                        // Configuration keys are case-insensitive: "Table" and "table" are the same key.
                        if (!containers.Peek()!.Add(name)) return At(json, start, quote ? $"the key '{Core.Net.Printable(name)}' appears twice in one object" : "a key appears twice in one object");
                        break;
                    case JsonTokenType.StartArray when containers.Count > 0:
                        containers.Push(null);
                        break;
                    default:
                        if (containers.Count == 0) return At(json, start, "a policy is a JSON object: expected '{'");
                        break;
                }
                last = reader.TokenType;
                end = (int)reader.BytesConsumed;
            }
        }
        catch (JsonException)
        {
            return Expected(json, end, last, containers.Count == 0 ? null : containers.Peek() is not null, quote);
        }
        return null;
    }

    /// <summary>What may follow the last good token, checked against what does.</summary>
    static string Expected(ReadOnlySpan<byte> json, int from, JsonTokenType last, bool? inObject, bool quote)
    {
        var (i, unclosed) = SkipBlank(json, from);
        if (unclosed) return At(json, i, "a comment is never closed: expected '*/'");
        var key = last == JsonTokenType.StartObject;
        var expected = last switch
        {
            JsonTokenType.None => "'{'",
            JsonTokenType.StartObject => "a key in double quotes or '}'",
            JsonTokenType.PropertyName => AValue,
            JsonTokenType.StartArray => AValue + " or ']'",
            _ => inObject switch { true => "',' or '}'", false => "',' or ']'", null => "the end of the file" },
        };
        // After a value, a comma moves on to the next key or element.
        if (inObject is not null && last is not (JsonTokenType.None or JsonTokenType.StartObject or JsonTokenType.StartArray
                or JsonTokenType.PropertyName) && i < json.Length && json[i] == ',')
        {
            (i, unclosed) = SkipBlank(json, i + 1);
            if (unclosed) return At(json, i, "a comment is never closed: expected '*/'");
            key = inObject == true;
            expected = key ? "a key in double quotes or '}'" : AValue + " or ']'";
        }
        if (i < json.Length && json[i] == '"')
        {
            var (close, bad) = StringEnd(json, i);
            if (bad >= 0)
                return At(json, bad, bad < json.Length && json[bad] == '\\'
                    ? "a string has an invalid escape: expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX"
                    : "a string is not closed on its line: expected '\"'");
            // A key that is complete needs its ':'.
            if (key)
            {
                (i, unclosed) = SkipBlank(json, close + 1);
                if (unclosed) return At(json, i, "a comment is never closed: expected '*/'");
                expected = "':' after the key";
            }
        }
        return At(json, i, quote ? $"expected {expected}, found {Found(json, i)}" : $"expected {expected}");
    }

    static (int Position, bool UnclosedComment) SkipBlank(ReadOnlySpan<byte> json, int i)
    {
        while (i < json.Length)
        {
            if (json[i] is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n') i++;
            else if (json[i..].StartsWith("//"u8)) { var nl = json[i..].IndexOf((byte)'\n'); i = nl < 0 ? json.Length : i + nl + 1; }
            else if (json[i..].StartsWith("/*"u8))
            {
                var close = json[(i + 2)..].IndexOf("*/"u8);
                if (close < 0) return (i, true);
                i += close + 4;
            }
            else break;
        }
        return (i, false);
    }

    /// <summary>The closing quote of the string at <paramref name="open"/>, or where it goes wrong.</summary>
    static (int Close, int Bad) StringEnd(ReadOnlySpan<byte> json, int open)
    {
        for (var i = open + 1; i < json.Length; i++)
        {
            var b = json[i];
            if (b == '"') return (i, -1);
            if (b < 0x20) return (-1, i);
            if (b != '\\') continue;
            if (i + 1 >= json.Length) return (-1, json.Length);
            if (json[i + 1] is (byte)'"' or (byte)'\\' or (byte)'/' or (byte)'b' or (byte)'f' or (byte)'n' or (byte)'r' or (byte)'t') i++;
            else if (json[i + 1] == 'u' && i + 5 < json.Length && IsHex(json.Slice(i + 2, 4))) i += 5;
            else return (-1, i);
        }
        return (-1, json.Length);
    }

    static bool IsHex(ReadOnlySpan<byte> digits)
    {
        foreach (var d in digits) if (!char.IsAsciiHexDigit((char)d)) return false;
        return true;
    }

    /// <summary>The token at <paramref name="i"/> as it is written: a word, a short string, or one character.</summary>
    static string Found(ReadOnlySpan<byte> json, int i)
    {
        if (i >= json.Length) return "the end of the file";
        var rest = json[i..];
        var length = 1;
        if (rest[0] == '"' && StringEnd(json, i) is (var close, -1) && close - i < 40) length = close - i + 1;
        else if (IsWord(rest[0])) while (length < rest.Length && length < 40 && IsWord(rest[length])) length++;
        else while (length < rest.Length && (rest[length] & 0xC0) == 0x80) length++; // the whole of a UTF-8 character
        return $"'{Core.Net.Printable(Encoding.UTF8.GetString(rest[..length]))}'";
    }

    static bool IsWord(byte b) => char.IsAsciiLetterOrDigit((char)b) || b is (byte)'-' or (byte)'+' or (byte)'.' or (byte)'_';

    /// <summary>"line L, column C: message", both counted from 1, the column in characters.</summary>
    static string At(ReadOnlySpan<byte> json, int position, string message)
    {
        position = Math.Min(position, json.Length);
        var before = json[..position];
        var line = before.Count((byte)'\n') + 1;
        var lineStart = before.LastIndexOf((byte)'\n') + 1;
        var column = 1;
        foreach (var b in before[lineStart..]) if ((b & 0xC0) != 0x80) column++;
        return $"line {line}, column {column}: {message}";
    }
}
