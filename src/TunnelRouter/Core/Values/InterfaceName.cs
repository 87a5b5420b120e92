namespace TunnelRouter.Core;

public static class InterfaceName
{
    /// <summary>IFNAMSIZ is 16 including the terminating NUL.</summary>
    public const int MaxLength = 15;

    /// <summary>The kernel's dev_valid_name, narrowed to printable ASCII without shell metacharacters:
    /// a name that reaches us from OpenVPN's environment must not smuggle anything into a command line.</summary>
    public static string Validate(string field, string? name)
    {
        if (string.IsNullOrEmpty(name)) throw new InputException(field, "is empty; expected an interface name");
        if (name.Length > MaxLength)
            throw new InputException(field, $"'{Net.Printable(name)}' is longer than {MaxLength} bytes, the kernel's limit for interface names");
        if (name is "." or "..")
            throw new InputException(field, $"'{name}' is not a valid interface name");
        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '@' or '+'))
                throw new InputException(field, $"'{Net.Printable(name)}' is not a valid interface name (allowed: letters, digits, - _ . @ +)");
        }
        return name;
    }

    public static bool IsValid(string name)
    {
        try { Validate("name", name); return true; }
        catch (InputException) { return false; }
    }
}
