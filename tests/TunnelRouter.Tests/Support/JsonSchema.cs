using System.Text.Json;

namespace TunnelRouter.Tests.Support;

/// <summary>
/// A strict checker of the JSON Schema keywords docs/*.schema.json use: type (one or a list), enum, required,
/// properties, additionalProperties: false, items, minimum, $ref to #/$defs/NAME. A keyword it does not know is an
/// error, not ignored: a schema that grows past this checker fails its spec instead of passing unchecked.
/// </summary>
public static class JsonSchema
{
    static readonly HashSet<string> Known = ["$schema", "$id", "title", "description", "type", "enum", "required", "properties",
        "additionalProperties", "items", "minimum", "$ref", "$defs"];

    /// <summary>Every place where <paramref name="document"/> breaks the schema ("$.changes[0].line: ..."); none when it is valid.</summary>
    public static List<string> Check(string schemaPath, string document)
    {
        using var schema = JsonDocument.Parse(File.ReadAllText(schemaPath));
        using var doc = JsonDocument.Parse(document);
        var errors = new List<string>();
        Check(schema.RootElement, schema.RootElement, doc.RootElement, "$", errors);
        return errors;
    }

    static void Check(JsonElement root, JsonElement s, JsonElement v, string at, List<string> errors)
    {
        foreach (var k in s.EnumerateObject())
            if (!Known.Contains(k.Name)) throw new InvalidOperationException($"the schema uses '{k.Name}' at {at}, which this checker does not know");
        if (s.TryGetProperty("$ref", out var r))
        {
            var name = r.GetString()!;
            if (!name.StartsWith("#/$defs/", StringComparison.Ordinal)) throw new InvalidOperationException($"unsupported $ref {name}");
            Check(root, root.GetProperty("$defs").GetProperty(name["#/$defs/".Length..]), v, at, errors);
            return;
        }
        if (s.TryGetProperty("type", out var type))
        {
            var types = type.ValueKind == JsonValueKind.Array ? type.EnumerateArray().Select(t => t.GetString()!).ToList() : [type.GetString()!];
            if (!types.Any(t => Is(v, t))) { errors.Add($"{at}: {v.ValueKind} is not {string.Join(" or ", types)}"); return; }
        }
        if (s.TryGetProperty("enum", out var values) && !values.EnumerateArray().Any(e => JsonElement.DeepEquals(e, v)))
            errors.Add($"{at}: {v} is not one of {values}");
        if (s.TryGetProperty("minimum", out var min) && v.ValueKind == JsonValueKind.Number && v.GetDouble() < min.GetDouble())
            errors.Add($"{at}: {v} is less than {min}");
        if (v.ValueKind == JsonValueKind.Object)
        {
            var props = s.TryGetProperty("properties", out var p) ? p : default;
            if (s.TryGetProperty("required", out var required))
                foreach (var name in required.EnumerateArray())
                    if (!v.TryGetProperty(name.GetString()!, out _)) errors.Add($"{at}: '{name.GetString()}' is missing");
            foreach (var member in v.EnumerateObject())
            {
                if (props.ValueKind == JsonValueKind.Object && props.TryGetProperty(member.Name, out var sub)) Check(root, sub, member.Value, $"{at}.{member.Name}", errors);
                else if (s.TryGetProperty("additionalProperties", out var extra) && extra.ValueKind == JsonValueKind.False)
                    errors.Add($"{at}: '{member.Name}' is not in the schema");
            }
        }
        if (v.ValueKind == JsonValueKind.Array && s.TryGetProperty("items", out var items))
        {
            var i = 0;
            foreach (var item in v.EnumerateArray()) Check(root, items, item, $"{at}[{i++}]", errors);
        }
    }

    static bool Is(JsonElement v, string type) => type switch
    {
        "object" => v.ValueKind == JsonValueKind.Object,
        "array" => v.ValueKind == JsonValueKind.Array,
        "string" => v.ValueKind == JsonValueKind.String,
        "boolean" => v.ValueKind is JsonValueKind.True or JsonValueKind.False,
        "null" => v.ValueKind == JsonValueKind.Null,
        "integer" => v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out _),
        "number" => v.ValueKind == JsonValueKind.Number,
        _ => throw new InvalidOperationException($"unknown type {type}"),
    };
}
