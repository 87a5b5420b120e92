namespace TunnelRouter.Core;

/// <summary>
/// A line's name in errors ("policy.json: Routes[12]"), put together only when an error needs it: a policy of
/// 10,000 lines that parses makes none of these strings.
/// </summary>
public readonly struct LineField(string name, int index = -1)
{
    public override string ToString() => index < 0 ? name : $"{name}[{index}]";

    public static implicit operator LineField(string name) => new(name);
}
