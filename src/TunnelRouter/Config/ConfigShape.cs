using Microsoft.Extensions.Configuration;

namespace TunnelRouter.Config;

/// <summary>
/// What <see cref="PolicyShape"/> leaves to the binder: a single-valued key written as an object or a list
/// ("TableId": { "a": 1 }, "Table": [ "vpn" ], an uplink's "Interface": [ "wan" ]) binds to nothing, silently,
/// and the default would then apply. Such a key is an error naming it.
/// </summary>
public static class ConfigShape
{
    /// <summary>Keys whose value is a list or an object; their own checks live in PolicyShape and ConfigLoader.</summary>
    static readonly string[] Containers = ["Tables", "Rules", "Routes", "Uplinks", "Marks", "Sysctls"];

    public static void Check(IConfigurationRoot root, string source)
    {
        foreach (var section in root.GetChildren())
        {
            if (!Containers.Contains(section.Key, StringComparer.OrdinalIgnoreCase))
            {
                if (section.GetChildren().Any())
                    throw new InputException($"{source}: {section.Key}", "expected a single value, not a list or an object");
                continue;
            }
            if (!section.Key.Equals("Uplinks", StringComparison.OrdinalIgnoreCase)) continue;
            foreach (var item in section.GetChildren())
                foreach (var member in item.GetChildren())
                    if (member.GetChildren().Any())
                        throw new InputException($"{source}: Uplinks[{item.Key}].{member.Key}", "expected a single value, not a list or an object");
        }
    }
}
