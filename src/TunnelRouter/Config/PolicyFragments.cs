using System.Text.Json;

namespace TunnelRouter.Config;

/// <summary>
/// Drop-in fragments: <c>conf.d/*.json</c> beside the policy file, merged onto it in lexical (ordinal) order of their
/// names, as Ansible or Salt drop one file per site or tunnel. Lists are appended (a fragment's <c>Routes</c> come after
/// the policy's), objects are merged key by key, and a value set in two files is an error naming both. Every fragment is
/// checked and read as the policy file is (<see cref="StrictModes"/>).
/// </summary>
/// <remarks>
/// Merged here, into one document, rather than as more configuration providers: the last good policy
/// (<see cref="Host.LastGoodPolicy"/>) is that one document, and the key/value providers would lose a list's order
/// and the "set twice" check. Where each value came from is kept (<see cref="FragmentMap"/>), so errors, <c>plan -v</c>
/// and <c>plan --json</c> name the fragment and its own index of a line. Without fragments nothing is merged.
/// </remarks>
public static class PolicyFragments
{
    public const string DirectoryName = "conf.d";

    static readonly JsonDocumentOptions Options = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };

    /// <summary>The fragments beside <paramref name="policyPath"/>, in the order they are merged; none when there is no
    /// conf.d. The directory is checked as every directory on the way to the policy is (nobody else may write it).</summary>
    public static IReadOnlyList<string> Find(string policyPath)
    {
        var dir = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(policyPath)) ?? "/", DirectoryName);
        if (!Directory.Exists(dir)) return [];
        StrictModes.CheckDirectoryOf(Path.Combine(dir, "fragment.json"), "the fragment directory");
        // Hidden names are editors' and config managers' temporary files; a fragment is NAME.json.
        return Directory.EnumerateFiles(dir)
            .Where(f => Path.GetFileName(f) is var n && n.EndsWith(".json", StringComparison.Ordinal) && !n.StartsWith('.'))
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>The policy with its fragments merged onto it, as one JSON document, and where each value came from.
    /// Null when the policy itself is not JSON (its own error is reported as before).</summary>
    public static (byte[] Merged, FragmentMap Map)? Merge(string policyPath, byte[] policy, IReadOnlyList<(string Path, byte[] Bytes, bool WorldReadable)> fragments)
    {
        JsonDocument main;
        try { main = JsonDocument.Parse(Bom(policy), Options); }
        catch (JsonException) { return null; }
        using (main)
        {
            if (main.RootElement.ValueKind != JsonValueKind.Object) return null;
            var map = new FragmentMap(policyPath);
            var root = Node.Of(main.RootElement, policyPath);
            var docs = new List<JsonDocument>();
            try
            {
                foreach (var (path, bytes, readable) in fragments)
                {
                    JsonDocument doc;
                    try { doc = JsonDocument.Parse(Bom(bytes), Options); }
                    catch (JsonException e)
                    {
                        throw new InputException(path, PolicyJson.Problem(bytes, quote: readable) ?? FrameworkMessages.Of(e));
                    }
                    docs.Add(doc);
                    if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InputException(path, "a fragment is a JSON object: { ... }");
                    if (PolicyJson.Problem(bytes, quote: readable) is { } twice) throw new InputException(path, twice);
                    root.MergeObject(doc.RootElement, path, "", map);
                }
                var stream = new MemoryStream();
                using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true })) root.Write(w);
                return (stream.ToArray(), map);
            }
            finally
            {
                foreach (var d in docs) d.Dispose();
            }
        }
    }

    static ReadOnlyMemory<byte> Bom(byte[] bytes) =>
        bytes.AsSpan().StartsWith("\uFEFF"u8) ? bytes.AsMemory(3) : bytes;

    /// <summary>A merged value: an object (keys in their first file's spelling and order), a list (each item with its
    /// file), or a single value.</summary>
    sealed class Node
    {
        public required string File { get; init; }
        public JsonElement Value { get; init; }
        public List<(string Name, Node Node)>? Members { get; init; }
        public List<(JsonElement Item, string File)>? Items { get; init; }

        public static Node Of(JsonElement e, string file) => e.ValueKind switch
        {
            JsonValueKind.Object => new Node { File = file, Members = e.EnumerateObject().Select(p => (p.Name, Of(p.Value, file))).ToList() },
            JsonValueKind.Array => new Node { File = file, Items = e.EnumerateArray().Select(i => (i, file)).ToList() },
            _ => new Node { File = file, Value = e },
        };

        public void MergeObject(JsonElement e, string file, string key, FragmentMap map)
        {
            foreach (var p in e.EnumerateObject())
            {
                var k = key.Length == 0 ? p.Name : key + ":" + p.Name;
                var i = Members!.FindIndex(m => m.Name.Equals(p.Name, StringComparison.OrdinalIgnoreCase));
                if (i < 0)
                {
                    Members.Add((p.Name, Of(p.Value, file)));
                    map.Set(k, file);
                    if (p.Value.ValueKind == JsonValueKind.Array) map.Append(k, 0, p.Value.GetArrayLength(), file);
                    continue;
                }
                var had = Members[i].Node;
                if (had.Members is not null && p.Value.ValueKind == JsonValueKind.Object) had.MergeObject(p.Value, file, k, map);
                else if (had.Items is not null && p.Value.ValueKind == JsonValueKind.Array)
                {
                    if (!map.HasList(k)) map.Append(k, 0, had.Items.Count, had.File);
                    var start = had.Items.Count;
                    had.Items.AddRange(p.Value.EnumerateArray().Select(item => (item, file)));
                    map.Append(k, start, had.Items.Count - start, file);
                }
                else
                    throw new InputException($"{file}: {ConfigOrigins.PolicyPath(k)}",
                        $"is set in {had.File} too; a value may be set in one file only (lists are appended, objects merged)");
            }
        }

        public void Write(Utf8JsonWriter w)
        {
            if (Members is not null)
            {
                w.WriteStartObject();
                foreach (var (name, node) in Members)
                {
                    w.WritePropertyName(name);
                    node.Write(w);
                }
                w.WriteEndObject();
            }
            else if (Items is not null)
            {
                w.WriteStartArray();
                foreach (var (item, _) in Items) item.WriteTo(w);
                w.WriteEndArray();
            }
            else Value.WriteTo(w);
        }
    }
}

/// <summary>
/// Which file set each value of a merged policy: a key a fragment brought ("Tables:vpn2"), and for a list that files
/// appended to, which of its items each file holds ("Routes" 0–9 the policy's, 10–11 conf.d/10-site.json's).
/// </summary>
public sealed class FragmentMap(string policy)
{
    readonly Dictionary<string, string> _keys = new(StringComparer.OrdinalIgnoreCase);
    readonly Dictionary<string, List<(int Start, int Count, string File)>> _lists = new(StringComparer.OrdinalIgnoreCase);

    public string Policy { get; } = policy;

    internal void Set(string key, string file) => _keys[key] = file;

    internal bool HasList(string key) => _lists.ContainsKey(key);

    internal void Append(string key, int start, int count, string file)
    {
        if (!_lists.TryGetValue(key, out var list)) _lists[key] = list = [];
        list.Add((start, count, file));
    }

    /// <summary>The file that set <paramref name="key"/> itself ("Routes:11" → the fragment holding the 12th route), or
    /// null when the key is not one a fragment set or a list's item.</summary>
    public string? FileOf(string key)
    {
        if (_keys.TryGetValue(key, out var file)) return file;
        var colon = key.LastIndexOf(':');
        if (colon > 0 && int.TryParse(key.AsSpan(colon + 1), out var i) && Item(key[..colon], i) is { } item) return item.File;
        return null;
    }

    (string File, int Local)? Item(string list, int index)
    {
        if (!_lists.TryGetValue(list, out var ranges)) return null;
        foreach (var (start, count, file) in ranges)
            if (index >= start && index < start + count) return (file, index - start);
        return null;
    }

    /// <summary>A path as the policy spells it ("Routes[11]", "Uplinks[3].Gateway") with each list index that a file
    /// appended turned into that file's own ("Routes[1]"): what the admin finds in the fragment.</summary>
    public string Localize(string path)
    {
        var result = new System.Text.StringBuilder();
        var key = new System.Text.StringBuilder();
        var i = 0;
        while (i < path.Length)
        {
            var c = path[i];
            if (c == '[' && path.IndexOf(']', i) is var end and > 0 && int.TryParse(path.AsSpan(i + 1, end - i - 1), out var n))
            {
                var local = Item(key.ToString(), n) is { } item ? item.Local : n;
                result.Append('[').Append(local).Append(']');
                key.Append(':').Append(n);
                i = end + 1;
                continue;
            }
            if (c == '.' || c == ' ' || c == ':') key.Append(':');
            else key.Append(c);
            result.Append(c);
            i++;
        }
        return result.ToString();
    }
}
