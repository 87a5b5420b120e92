using System.Globalization;

namespace TunnelRouter.Core;

/// <summary>
/// Number ↔ name maps in iproute2's file format ("200 vpn" per line, # comments), for routing tables
/// (rt_tables) and route protocols (rt_protos). Parsing is pure; the files are read in Kernel/.
/// </summary>
public class NameMap
{
    readonly Dictionary<uint, string> _byId = [];
    readonly Dictionary<string, uint> _byName = new(StringComparer.Ordinal);

    readonly bool _numeric;

    protected NameMap(IEnumerable<(uint Id, string Name)> builtins, bool numeric)
    {
        _numeric = numeric;
        foreach (var (id, name) in builtins) Add(id, name);
    }

    public IReadOnlyDictionary<string, uint> ByName => _byName;

    /// <summary>This map's entries into <paramref name="copy"/>, as they stand (the first name of an id stays first).</summary>
    protected T CopyInto<T>(T copy) where T : NameMap
    {
        copy._byId.Clear();
        copy._byName.Clear();
        foreach (var (id, name) in _byId) copy._byId.Add(id, name);
        foreach (var (name, id) in _byName) copy._byName.Add(name, id);
        return copy;
    }

    public void Add(uint id, string name)
    {
        _byId.TryAdd(id, name);
        _byName.TryAdd(name, id);
    }

    /// <summary>Adds the entries of one file's text. Returns names that were already defined with another id.</summary>
    public List<string> Load(string text)
    {
        var clashes = new List<string>();
        foreach (var (id, name) in Entries(text))
        {
            if (_byName.TryGetValue(name, out var existing) && existing != id) clashes.Add(name);
            Add(id, name);
        }
        return clashes;
    }

    /// <summary>The entries of one file's text, in its order: the one reader of iproute2's name files.</summary>
    public static IEnumerable<(uint Id, string Name)> Entries(string text)
    {
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            var hash = line.IndexOf('#');
            if (hash >= 0) line = line[..hash].Trim();
            if (line.Length == 0) continue;
            var parts = line.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length < 2 || !TryParseNumber(parts[0], out var id)) continue;
            yield return (id, parts[1]);
        }
    }

    public bool TryGetId(string nameOrNumber, out uint id) =>
        TryParseNumber(nameOrNumber, out id) || _byName.TryGetValue(nameOrNumber, out id);

    public bool TryGetName(uint id, out string name) => _byId.TryGetValue(id, out name!);

    public string Format(uint id) =>
        !_numeric && _byId.TryGetValue(id, out var name) ? name : id.ToString(CultureInfo.InvariantCulture);

    public static bool TryParseNumber(ReadOnlySpan<char> text, out uint value)
    {
        value = 0;
        if (text.Length == 0 || text.Length > 10) return false;
        if (text.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            return text.Length > 2 && uint.TryParse(text[2..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
        return !text.ContainsAnyExceptInRange('0', '9') && uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }
}

public sealed class TableNames : NameMap
{
    public const uint Default = 253, Main = 254, Local = 255;

    public TableNames(bool numeric = false) : base([(Default, "default"), (Main, "main"), (Local, "local")], numeric) { }

    /// <summary>A copy that can grow on its own.</summary>
    public TableNames Copy() => CopyInto(new TableNames());

    /// <summary>Prints every table as its number: the form the ip backend feeds to iproute2, which
    /// then needs none of the host's name files.</summary>
    public static readonly TableNames Numeric = new(numeric: true);
}

public sealed class ProtocolNames : NameMap
{
    public ProtocolNames(bool numeric = false)
        : base([(0, "unspec"), (1, "redirect"), (2, "kernel"), (3, "boot"), (4, "static")], numeric) { }

    /// <summary>A copy that can grow on its own.</summary>
    public ProtocolNames Copy() => CopyInto(new ProtocolNames());

    public static readonly ProtocolNames Numeric = new(numeric: true);
}
