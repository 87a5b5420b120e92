namespace TunnelRouter.Core;

/// <summary>One kernel change. Every change knows its inverse, which is how a failed apply rolls back.</summary>
public abstract record Change
{
    public abstract Change Inverse();
}

public sealed record AddRoute(Route Route) : Change
{
    public override Change Inverse() => new DeleteRoute(Route);
}

public sealed record DeleteRoute(Route Route) : Change
{
    public override Change Inverse() => new AddRoute(Route);
}

/// <summary>Same key (table, destination, metric), other attributes: the kernel swaps it atomically.</summary>
public sealed record ReplaceRoute(Route Old, Route New) : Change
{
    public override Change Inverse() => new ReplaceRoute(New, Old);
}

public sealed record AddRule(Rule Rule) : Change
{
    public override Change Inverse() => new DeleteRule(Rule);
}

public sealed record DeleteRule(Rule Rule) : Change
{
    public override Change Inverse() => new AddRule(Rule);
}
