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

    public static readonly string[] UplinkKeys = ["Interface", "Table", "Address", "Gateway", "Gateway6", "Priority", "Name", "Track"];

    public static readonly string[] RoutingKeys = ["Daemon", "Protocol", "Area", "Hello", "Dead", "Settle", "ConfigFile", "Control", "Interfaces", "Stubs"];

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
        new("Failover", Shape.Lines, "\"table vpn via wan1 wan2\""),
        new("Marks", Shape.Entries, "{ \"Chain\": \"output\", \"Mark\": \"0xf2\" }", MarkOptions.Keys),
        new("Sysctls", Shape.Map, "{ \"net.ipv4.ip_forward\": \"1\" }"),
        new("Instances", Shape.Entries, "{ \"Dev\": \"tun2\", \"Routes\": [ \"default via ${route_vpn_gateway} dev ${dev} table nyet\" ] }", InstanceKeys, ["Rules", "Routes"]),
        new("Tunnels", Shape.Entries, "{ \"Name\": \"gre_black\", \"Remote\": \"203.0.113.2\" }", TunnelKeys, ["Addresses", "Routes"]),
        new("Routing", Shape.Object, "{ \"Daemon\": \"bird\", \"Interfaces\": [ \"gre_ab cost 10\" ] }", RoutingKeys, ["Interfaces", "Stubs"]),
    ];

    public static IEnumerable<string> Known => Sections.Skip(1).Select(s => s.Key);

    /// <summary>Every key a policy may hold: the top-level ones, and "Section.Member" for the members of a list's
    /// objects or of an object (what <see cref="PolicyReference"/> must document).</summary>
    public static IEnumerable<string> AllKeys => Sections.Skip(1).SelectMany(s =>
        (IEnumerable<string>)[s.Key, .. (s.EntryKeys ?? []).Select(k => $"{s.Key}.{k}")]);

    public static bool IsKnown(string key) => Sections.Any(s => s.Key.Equals(key, StringComparison.OrdinalIgnoreCase));

    enum Kind { Number, Flag }

    /// <summary>Keys the binder converts (everything else is a string): each value is checked here, all at once, so
    /// the binder never stops at the first that does not convert. Array indexes and map names are "*".</summary>
    static readonly (string Pattern, Kind Kind)[] Typed =
    [
        ("TableId", Kind.Number), ("Protocol", Kind.Number), ("HookProtocol", Kind.Number), ("PoolRules", Kind.Flag),
        ("RoutedNetworks", Kind.Flag), ("PoolRulePriority", Kind.Number), ("LockTimeoutSeconds", Kind.Number),
        ("WatchResyncSeconds", Kind.Number), ("Tables:*", Kind.Number), ("Uplinks:*:Priority", Kind.Number),
        ("Tunnels:*:Ttl", Kind.Number), ("Tunnels:*:Tos", Kind.Number), ("Tunnels:*:Mtu", Kind.Number), ("Tunnels:*:PMtuDisc", Kind.Flag),
        ("Routing:Hello", Kind.Number), ("Routing:Dead", Kind.Number), ("Routing:Settle", Kind.Number),
    ];

    /// <summary>Every shape error of the configuration (none: an empty list), each naming its key.</summary>
    public static List<InputException> Check(IConfiguration root, string source) => Check(root, source, out _, out _);

    /// <param name="broken">the configuration keys ("Uplinks:0:Gateway") whose values are wrong: what a second look at
    /// the rest of the policy leaves out (<see cref="ConfigLoader"/>).</param>
    /// <param name="meant">the keys a misspelt key was meant to be ("Uplinks:0:Table" for "Tabel"): binding leaves them
    /// unset, and a second look says nothing of them (one mistake, one message).</param>
    public static List<InputException> Check(IConfiguration root, string source, out List<string> broken, out List<string> meant)
    {
        var errors = new List<InputException>();
        var bad = new List<string>();
        var typos = new List<string>();
        foreach (var section in root.GetChildren()) CheckSection(section, source, errors, bad, typos);
        broken = bad;
        meant = typos;
        return errors;
    }

    static void CheckSection(IConfigurationSection section, string source, List<InputException> errors, List<string> broken, List<string> meant)
    {
        void Error(string key, string field, string message)
        {
            errors.Add(new InputException($"{source}: {field}", message));
            broken.Add(key);
        }

        var schema = Array.Find(Sections, s => s.Key.Equals(section.Key, StringComparison.OrdinalIgnoreCase));
        if (schema is null)
        {
            errors.Add(new InputException($"{source}: {section.Key}", $"unknown key{Core.Suggest.DidYouMean(section.Key, Known)} (known: {string.Join(", ", Known)})"));
            if (Core.Suggest.Closest(section.Key, Known) is { } top) meant.Add(top);
            return;
        }
        var name = schema.Key;
        switch (schema.Shape)
        {
            case Shape.Value:
                if (section.GetChildren().Any()) Error(section.Path, name, "expected a single value, not a list or an object");
                else CheckValue(section, name, Error);
                break;
            case Shape.Lines:
                CheckLines(section, name, schema.Example, Error);
                break;
            case Shape.Map:
                if (!string.IsNullOrEmpty(section.Value))
                {
                    Error(section.Path, name, $"expected an object of {(name == "Tables" ? "names and numbers" : "settings")}, e.g. {schema.Example}");
                    break;
                }
                foreach (var item in section.GetChildren())
                    if (item.Value is null)
                        Error(item.Path, $"{name}.{item.Key}", name == "Tables"
                            ? "expected a table number, e.g. 200"
                            : "expected a value like \"1\", not an object; write keys dotted: \"net.ipv4.ip_forward\"");
                    else CheckValue(item, $"{name}.{item.Key}", Error);
                break;
            case Shape.Entries:
                if (!string.IsNullOrEmpty(section.Value))
                {
                    Error(section.Path, name, $"expected a list of objects, e.g. [ {schema.Example} ]");
                    break;
                }
                foreach (var item in section.GetChildren())
                {
                    var entry = $"{name}[{item.Key}]";
                    if (!int.TryParse(item.Key, out _) || item.Value is not null) Error(item.Path, entry, $"expected an object like {schema.Example}");
                    else CheckMembers(item, entry, schema, Error, meant);
                }
                break;
            case Shape.Object:
                if (!string.IsNullOrEmpty(section.Value) || section.GetChildren().Any(c => int.TryParse(c.Key, out _)))
                    Error(section.Path, name, $"expected an object, e.g. {schema.Example}");
                else CheckMembers(section, name, schema, Error, meant);
                break;
        }
    }

    /// <summary>The keys of one object (an entry of a list, or a section that is one object): every one of them.</summary>
    static void CheckMembers(IConfigurationSection item, string entry, Section schema, Action<string, string, string> error, List<string> meant)
    {
        foreach (var member in item.GetChildren())
        {
            var key = Array.Find(schema.EntryKeys!, k => k.Equals(member.Key, StringComparison.OrdinalIgnoreCase));
            if (key is null)
            {
                // An unknown key binds to nothing: only the key it was meant to be is missing.
                error(member.Path, $"{entry}.{member.Key}", $"unknown key{Core.Suggest.DidYouMean(member.Key, schema.EntryKeys!)} (known: {string.Join(", ", schema.EntryKeys!)})");
                if (Core.Suggest.Closest(member.Key, schema.EntryKeys!) is { } was) meant.Add(item.Path + ":" + was);
            }
            else if (schema.EntryLists?.Contains(key) == true) CheckLines(member, $"{entry}.{key}", "\"...\"", error);
            else if (member.GetChildren().Any()) error(member.Path, $"{entry}.{key}", "expected a single value, not a list or an object");
            else CheckValue(member, $"{entry}.{key}", error);
        }
    }

    static void CheckLines(IConfigurationSection section, string name, string example, Action<string, string, string> error)
    {
        if (!string.IsNullOrEmpty(section.Value))
        {
            error(section.Path, name, $"expected a list of lines, e.g. [ {example} ], not a single string");
            return;
        }
        foreach (var item in section.GetChildren())
        {
            if (!int.TryParse(item.Key, out _)) error(item.Path, $"{name}.{item.Key}", $"expected a list of lines, e.g. [ {example} ], not an object");
            else if (item.Value is null) error(item.Path, $"{name}[{item.Key}]", $"expected a line as a string, e.g. {example}");
        }
    }

    /// <summary>A value the binder converts: what it would refuse, named here, beside every other mistake.</summary>
    static void CheckValue(IConfigurationSection value, string field, Action<string, string, string> error)
    {
        if (value.Value is not { } text) return;
        var pattern = string.Join(':', value.Path.Split(':').Select((part, i) => i > 0 && (int.TryParse(part, out _) || value.Path.StartsWith("Tables:", StringComparison.OrdinalIgnoreCase)) ? "*" : part));
        foreach (var (p, kind) in Typed)
        {
            if (!p.Equals(pattern, StringComparison.OrdinalIgnoreCase)) continue;
            if (kind == Kind.Number && !uint.TryParse(text, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out _))
                error(value.Path, field, $"'{Core.Net.Printable(text)}' is not a valid value; expected a whole number from 0 to {uint.MaxValue}");
            else if (kind == Kind.Flag && !bool.TryParse(text, out _))
                error(value.Path, field, $"'{Core.Net.Printable(text)}' is not a valid value; expected true or false");
            return;
        }
    }
}
