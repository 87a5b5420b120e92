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

sealed class IndexedJsonConfigurationProvider(IndexedJsonConfigurationSource source) : JsonConfigurationProvider(source)
{
    Dictionary<string, List<string>>? _children;

    public override void Load()
    {
        // As the file provider reports a parse error: wrapped once, the parser's message inside.
        try { Load(new MemoryStream(source.Content, writable: false)); }
        catch (FormatException e) { throw new InvalidDataException(e.Message, e); }
        _children = null;
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
