using Microsoft.Extensions.Configuration;

namespace TunnelRouter.Config;

/// <summary>
/// The shape of the policy, checked before binding. The binder forgives too much: an unknown key, "Rules"
/// written as one string, a rule written as an object, a misspelt "Gatway" in an uplink or "SourcePort" in a
/// mark, "TableId": { ... } — each would bind to nothing, silently, and apply would then remove what the
/// policy meant to keep or match more traffic than meant. Each is an error naming the key as the policy
/// file spells it ("Uplinks[0].Gateway").
/// </summary>
public static class ConfigSchema
{
    enum Shape { Value, Lines, Map, Entries, Object }

    sealed record Section(string Key, Shape Shape, string Example, string[]? EntryKeys = null, string[]? EntryLists = null);

    public static readonly string[] PrefixListKeys = ["File", "Route"];

    public static readonly string[] InstanceKeys = ["Dev", "Rules", "Routes"];

    public static readonly string[] UplinkKeys = ["Interface", "Table", "Address", "Gateway", "Gateway6", "Priority"];

    public static readonly string[] RoutingKeys = ["Daemon", "Protocol", "Area", "Hello", "Dead", "ConfigFile", "Control", "Interfaces", "Stubs"];

    public static readonly string[] TunnelKeys =
        ["Name", "Mode", "Local", "Remote", "Key", "IKey", "OKey", "Ttl", "Tos", "PMtuDisc", "Mtu", "Underlay", "Dev", "Addresses", "Routes"];

    /// <summary>Every top-level key. "Config" is the policy file's path itself (TUNNEL_ROUTER_CONFIG).</summary>
    static readonly Section[] Sections =
    [
        new("Config", Shape.Value, ""),
        new("Table", Shape.Value, ""), new("TableId", Shape.Value, ""), new("Protocol", Shape.Value, ""),
        new("HookProtocol", Shape.Value, ""), new("PoolRules", Shape.Value, ""), new("RoutedNetworks", Shape.Value, ""), new("PoolRulePriority", Shape.Value, ""),
        new("Backend", Shape.Value, ""), new("LogFile", Shape.Value, ""), new("Iproute2Dir", Shape.Value, ""),
        new("LockFile", Shape.Value, ""), new("LockTimeoutSeconds", Shape.Value, ""), new("WatchResyncSeconds", Shape.Value, ""),
        new("Tables", Shape.Map, "{ \"vpn\": 200 }"),
        new("Rules", Shape.Lines, "\"from 10.10.10.0/24 lookup vpn\""),
        new("Routes", Shape.Lines, "\"default via 192.168.1.1 table vpn\""),
        new("FailClosed", Shape.Lines, "\"vpn\""),
        new("PrefixLists", Shape.Entries, "{ \"File\": \"/etc/tunnel-router/lists/ru.txt\", \"Route\": \"dev tun0 table vpn\" }", PrefixListKeys),
        new("Uplinks", Shape.Entries, "{ \"Interface\": \"eth0\", \"Table\": \"lan1\" }", UplinkKeys),
        new("Marks", Shape.Entries, "{ \"Chain\": \"output\", \"Mark\": \"0xf2\" }", MarkOptions.Keys),
        new("Sysctls", Shape.Map, "{ \"net.ipv4.ip_forward\": \"1\" }"),
        new("Instances", Shape.Entries, "{ \"Dev\": \"tun2\", \"Routes\": [ \"default via ${route_vpn_gateway} dev ${dev} table nyet\" ] }", InstanceKeys, ["Rules", "Routes"]),
        new("Tunnels", Shape.Entries, "{ \"Name\": \"gre_black\", \"Remote\": \"203.0.113.2\" }", TunnelKeys, ["Addresses", "Routes"]),
        new("Routing", Shape.Object, "{ \"Daemon\": \"bird\", \"Interfaces\": [ \"gre_ab cost 10\" ] }", RoutingKeys, ["Interfaces", "Stubs"]),
    ];

    public static IEnumerable<string> Known => Sections.Skip(1).Select(s => s.Key);

    public static bool IsKnown(string key) => Sections.Any(s => s.Key.Equals(key, StringComparison.OrdinalIgnoreCase));

    /// <summary>Every shape error of the configuration (none: an empty list), each naming its key.</summary>
    public static List<InputException> Check(IConfiguration root, string source)
    {
        var errors = new List<InputException>();
        foreach (var section in root.GetChildren())
            InputErrors.Collect(errors, () => { CheckSection(section, source); return 0; });
        return errors;
    }

    static void CheckSection(IConfigurationSection section, string source)
    {
        InputException Error(string field, string message) => new($"{source}: {field}", message);

        {
            var schema = Array.Find(Sections, s => s.Key.Equals(section.Key, StringComparison.OrdinalIgnoreCase))
                ?? throw Error(section.Key, $"unknown key{Core.Suggest.DidYouMean(section.Key, Known)} (known: {string.Join(", ", Known)})");
            var name = schema.Key;
            switch (schema.Shape)
            {
                case Shape.Value:
                    if (section.GetChildren().Any()) throw Error(name, "expected a single value, not a list or an object");
                    break;
                case Shape.Lines:
                    CheckLines(section, name, schema.Example, Error);
                    break;
                case Shape.Map:
                    if (!string.IsNullOrEmpty(section.Value))
                        throw Error(name, $"expected an object of {(name == "Tables" ? "names and numbers" : "settings")}, e.g. {schema.Example}");
                    foreach (var item in section.GetChildren())
                        if (item.Value is null)
                            throw Error($"{name}.{item.Key}", name == "Tables"
                                ? "expected a table number, e.g. 200"
                                : "expected a value like \"1\", not an object; write keys dotted: \"net.ipv4.ip_forward\"");
                    break;
                case Shape.Entries:
                    if (!string.IsNullOrEmpty(section.Value)) throw Error(name, $"expected a list of objects, e.g. [ {schema.Example} ]");
                    foreach (var item in section.GetChildren())
                    {
                        var entry = $"{name}[{item.Key}]";
                        if (!int.TryParse(item.Key, out _) || item.Value is not null) throw Error(entry, $"expected an object like {schema.Example}");
                        CheckMembers(item, entry, schema, Error);
                    }
                    break;
                case Shape.Object:
                    if (!string.IsNullOrEmpty(section.Value) || section.GetChildren().Any(c => int.TryParse(c.Key, out _)))
                        throw Error(name, $"expected an object, e.g. {schema.Example}");
                    CheckMembers(section, name, schema, Error);
                    break;
            }
        }
    }

    /// <summary>The keys of one object (an entry of a list, or a section that is one object).</summary>
    static void CheckMembers(IConfigurationSection item, string entry, Section schema, Func<string, string, InputException> error)
    {
        foreach (var member in item.GetChildren())
        {
            var key = Array.Find(schema.EntryKeys!, k => k.Equals(member.Key, StringComparison.OrdinalIgnoreCase))
                ?? throw error($"{entry}.{member.Key}", $"unknown key{Core.Suggest.DidYouMean(member.Key, schema.EntryKeys!)} (known: {string.Join(", ", schema.EntryKeys!)})");
            if (schema.EntryLists?.Contains(key) == true) CheckLines(member, $"{entry}.{key}", "\"...\"", error);
            else if (member.GetChildren().Any()) throw error($"{entry}.{key}", "expected a single value, not a list or an object");
        }
    }

    static void CheckLines(IConfigurationSection section, string name, string example, Func<string, string, InputException> error)
    {
        if (!string.IsNullOrEmpty(section.Value)) throw error(name, $"expected a list of lines, e.g. [ {example} ], not a single string");
        foreach (var item in section.GetChildren())
        {
            if (!int.TryParse(item.Key, out _)) throw error($"{name}.{item.Key}", $"expected a list of lines, e.g. [ {example} ], not an object");
            if (item.Value is null) throw error($"{name}[{item.Key}]", $"expected a line as a string, e.g. {example}");
        }
    }
}
