using Microsoft.Extensions.Configuration;

namespace TunnelRouter.Config;

/// <summary>
/// The shape of the routing sections, checked before binding. The binder forgives too much: "Rules" written
/// as one string, a rule written as an object, or a misspelt "Gatway" in an uplink would all bind to
/// nothing, silently, and apply would then remove what the policy meant to keep.
/// </summary>
public static class PolicyShape
{
    public static readonly string[] UplinkKeys = ["Interface", "Table", "Address", "Gateway", "Priority"];

    public static void Check(IConfiguration root, string source)
    {
        foreach (var (name, example) in new[] { ("Rules", "\"from 10.10.10.0/24 lookup vpn\""), ("Routes", "\"default via 192.168.1.1 table vpn\"") })
        {
            var section = root.GetSection(name);
            if (!string.IsNullOrEmpty(section.Value))
                throw new InputException($"{source}: {name}", $"expected a list of lines, e.g. [ {example} ], not a single string");
            foreach (var item in section.GetChildren())
            {
                if (!int.TryParse(item.Key, out _))
                    throw new InputException($"{source}: {name}.{item.Key}", $"expected a list of lines, e.g. [ {example} ], not an object");
                if (item.Value is null)
                    throw new InputException($"{source}: {name}[{item.Key}]", $"expected a line as a string, e.g. {example}");
            }
        }

        var tables = root.GetSection("Tables");
        if (!string.IsNullOrEmpty(tables.Value))
            throw new InputException($"{source}: Tables", "expected an object of names and numbers, e.g. { \"vpn\": 200 }");
        foreach (var table in tables.GetChildren())
            if (table.Value is null)
                throw new InputException($"{source}: Tables.{table.Key}", "expected a table number, e.g. 200");

        var uplinks = root.GetSection("Uplinks");
        if (!string.IsNullOrEmpty(uplinks.Value))
            throw new InputException($"{source}: Uplinks", "expected a list of objects, e.g. [ { \"Interface\": \"eth0\", \"Table\": \"lan1\" } ]");
        foreach (var item in uplinks.GetChildren())
        {
            if (!int.TryParse(item.Key, out _) || item.Value is not null)
                throw new InputException($"{source}: Uplinks[{item.Key}]", "expected an object like { \"Interface\": \"eth0\", \"Table\": \"lan1\" }");
            foreach (var key in item.GetChildren())
                if (!UplinkKeys.Contains(key.Key, StringComparer.OrdinalIgnoreCase))
                    throw new InputException($"{source}: Uplinks[{item.Key}].{key.Key}", $"unknown key (known: {string.Join(", ", UplinkKeys)})");
        }
    }
}
