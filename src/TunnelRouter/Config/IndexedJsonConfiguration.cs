using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Json;

namespace TunnelRouter.Config;

/// <summary>
/// The JSON file provider with its child keys indexed once. The stock provider answers every
/// GetChildren by scanning and sorting all its keys: a policy of 10,000 routes was sorted again for each
/// section the binder and the key check visit (~45 ms of a 150 ms apply). Same file format, same keys, same
/// order (ConfigurationKeyComparer); only the lookup is cheaper.
/// Parsed from bytes already read (and checked) by <see cref="StrictModes"/>, never from the file's name again.
/// </summary>
sealed class IndexedJsonConfigurationSource : JsonConfigurationSource
{
    public required byte[] Content { get; init; }

    public override IConfigurationProvider Build(IConfigurationBuilder builder) => new IndexedJsonConfigurationProvider(this);
}

/// <remarks>
/// The policy's two long lists, top-level Rules and Routes (10,000s of lines), are kept out of the key/value
/// data: as 100,000 keys "Routes:0" ... they cost more to load, index, check and bind (~700 ms and 150 MB at
/// 100,000 routes) than everything else apply does. They are read here straight into <see cref="Lines"/>,
/// and <see cref="ConfigLoader"/> puts them into the options after binding. A list of anything but strings
/// stays in the data, where the schema check names what is wrong with it.
/// </remarks>
sealed class IndexedJsonConfigurationProvider(IndexedJsonConfigurationSource source) : JsonConfigurationProvider(source)
{
    public static readonly string[] LineLists = ["Rules", "Routes"];

    Dictionary<string, List<string>>? _children;

    /// <summary>The lines of Rules and Routes, by the section's name as <see cref="LineLists"/> spells it.</summary>
    public Dictionary<string, List<string>> Lines { get; } = new(StringComparer.OrdinalIgnoreCase);

    public override void Load()
    {
        // As the file provider reports a parse error: wrapped once, the parser's message inside.
        try { Load(new MemoryStream(source.Content, writable: false)); }
        catch (FormatException e) { throw new InvalidDataException(e.Message, e); }
        _children = null;
    }

    /// <summary>What the stock JSON parser makes of the file (same keys, same values, same errors), with the
    /// two long lists set aside.</summary>
    public override void Load(Stream stream)
    {
        var data = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        Lines.Clear();
        System.Text.Json.JsonDocument doc;
        try
        {
            doc = System.Text.Json.JsonDocument.Parse(stream, new System.Text.Json.JsonDocumentOptions
            {
                CommentHandling = System.Text.Json.JsonCommentHandling.Skip, AllowTrailingCommas = true,
            });
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new FormatException(e.Message, e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != System.Text.Json.JsonValueKind.Object)
                throw new FormatException("the policy file must be a JSON object: { ... }");
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                var list = Array.Find(LineLists, n => n.Equals(property.Name, StringComparison.OrdinalIgnoreCase));
                if (list is not null && !Lines.ContainsKey(list) && TryLines(property.Value, out var lines))
                {
                    Lines[list] = lines;
                    continue;
                }
                Visit(property.Value, property.Name, data);
            }
        }
        Data = data;
    }

    static bool TryLines(System.Text.Json.JsonElement value, out List<string> lines)
    {
        lines = [];
        if (value.ValueKind != System.Text.Json.JsonValueKind.Array) return false;
        lines.Capacity = value.GetArrayLength();
        foreach (var item in value.EnumerateArray())
        {
            if (item.ValueKind != System.Text.Json.JsonValueKind.String) return false;
            lines.Add(item.GetString()!);
        }
        return lines.Count > 0;
    }

    static void Visit(System.Text.Json.JsonElement value, string path, Dictionary<string, string?> data)
    {
        switch (value.ValueKind)
        {
            case System.Text.Json.JsonValueKind.Object:
                var any = false;
                foreach (var p in value.EnumerateObject())
                {
                    any = true;
                    Visit(p.Value, path + ConfigurationPath.KeyDelimiter + p.Name, data);
                }
                if (!any) data[path] = null;
                break;
            case System.Text.Json.JsonValueKind.Array:
                var i = 0;
                foreach (var item in value.EnumerateArray()) Visit(item, path + ConfigurationPath.KeyDelimiter + i++, data);
                if (i == 0) data[path] = null;
                break;
            default:
                if (data.ContainsKey(path)) throw new FormatException($"the key '{path}' is given twice");
                data[path] = value.ToString();
                break;
        }
    }

    public override IEnumerable<string> GetChildKeys(IEnumerable<string> earlierKeys, string? parentPath)
    {
        _children ??= Index();
        var mine = _children.TryGetValue(parentPath ?? "", out var list) ? list : [];
        if (earlierKeys is ICollection<string> { Count: 0 } || !earlierKeys.Any()) return mine;
        var merged = new List<string>(mine);
        merged.AddRange(earlierKeys);
        merged.Sort(ConfigurationKeyComparer.Instance.Compare);
        return merged;
    }

    Dictionary<string, List<string>> Index()
    {
        var sets = new Dictionary<string, HashSet<string>>(StringComparer.OrdinalIgnoreCase);
        foreach (var key in Data.Keys)
        {
            var start = 0;
            while (true)
            {
                var colon = key.IndexOf(ConfigurationPath.KeyDelimiter, start, StringComparison.Ordinal);
                var parent = start == 0 ? "" : key[..(start - 1)];
                var child = colon < 0 ? key[start..] : key[start..colon];
                if (!sets.TryGetValue(parent, out var set)) sets[parent] = set = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
                set.Add(child);
                if (colon < 0) break;
                start = colon + 1;
            }
        }
        var index = new Dictionary<string, List<string>>(sets.Count, StringComparer.OrdinalIgnoreCase);
        foreach (var (parent, set) in sets)
        {
            var children = new List<string>(set);
            // Array elements ("0", "1", ...) in numeric order, which is what the comparer gives them, without it.
            if (children.TrueForAll(c => int.TryParse(c, out _)))
                children.Sort((a, b) => int.Parse(a).CompareTo(int.Parse(b)));
            else
                children.Sort(ConfigurationKeyComparer.Instance.Compare);
            index[parent] = children;
        }
        return index;
    }
}
