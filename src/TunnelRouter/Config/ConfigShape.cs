using Microsoft.Extensions.Configuration;

namespace TunnelRouter.Config;

/// <summary>
/// The binder silently skips a value of the wrong shape ("Rules": "from ..." instead of a list, an object
/// where a number belongs, a list item that is an object): the policy would then apply as if that key were
/// absent. Every key must have the shape its option has, or it is an error naming the key.
/// </summary>
public static class ConfigShape
{
    static readonly string[] Lists = ["Rules", "Routes"];
    static readonly string[] Maps = ["Tables"];
    static readonly string[] ObjectLists = ["Uplinks"];

    public static void Check(IConfigurationRoot root, string source)
    {
        foreach (var section in root.GetChildren())
        {
            var key = section.Key;
            var children = section.GetChildren().ToList();
            string Field(string rest = "") => $"{source}: {key}{rest}";
            if (Is(Lists, key) || Is(ObjectLists, key))
            {
                // An empty list reads as "" with no children.
                if (!string.IsNullOrEmpty(section.Value)) throw new InputException(Field(), "expected a list [ ... ]");
                foreach (var item in children)
                {
                    if (!item.Key.All(char.IsAsciiDigit)) throw new InputException(Field($".{item.Key}"), "expected a list [ ... ], not an object");
                    var itemIsObject = item.GetChildren().Any();
                    if (Is(Lists, key) && itemIsObject) throw new InputException(Field($"[{item.Key}]"), "expected a string");
                    if (Is(ObjectLists, key) && !itemIsObject) throw new InputException(Field($"[{item.Key}]"), "expected an object { ... }");
                    if (Is(ObjectLists, key))
                        foreach (var member in item.GetChildren())
                            if (member.GetChildren().Any()) throw new InputException(Field($"[{item.Key}].{member.Key}"), "expected a single value");
                }
            }
            else if (Is(Maps, key))
            {
                if (!string.IsNullOrEmpty(section.Value)) throw new InputException(Field(), "expected an object { \"name\": number }");
                foreach (var item in children)
                    if (item.GetChildren().Any()) throw new InputException(Field($".{item.Key}"), "expected a number");
            }
            else if (children.Count > 0)
                throw new InputException(Field(), "expected a single value, not a list or an object");
        }
    }

    static bool Is(string[] names, string key) => names.Contains(key, StringComparer.OrdinalIgnoreCase);
}
