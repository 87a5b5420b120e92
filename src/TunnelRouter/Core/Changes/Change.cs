using System.Net.Sockets;

namespace TunnelRouter.Core;

/// <summary>
/// One kernel change. Every change knows its inverse (which is how a failed apply rolls back), how it
/// reads to a person (the "[#] ..." line, an ip/nft/sysctl command they could type), and, for what
/// iproute2 can do, its <c>ip -batch</c> line. New kinds of change are new records, not new switch arms.
/// </summary>
public abstract record Change
{
    public abstract Change Inverse();

    /// <summary>What rollback runs to undo this change: its <see cref="Inverse"/>, or more where one
    /// inverse is not enough (a deleted link comes back with its mark, state and addresses).</summary>
    public virtual IEnumerable<Change> Undo() => [Inverse()];

    /// <summary>The command a person would type, with names: "ip -4 route add ... table vpn".</summary>
    public abstract string Display(TableNames tables, ProtocolNames protocols);

    /// <summary>The line for <c>ip -4|-6 -batch -</c>, numeric; null for changes iproute2 does not make
    /// (nftables, sysctls), which <see cref="Kernel.IChangeHandler"/>s apply.</summary>
    public virtual string? Batch() => null;

    /// <summary>The family an ip batch runs with; Unspecified for family-less changes (links).</summary>
    public virtual AddressFamily Family => AddressFamily.Unspecified;

    /// <summary>Rules and routes are ordered rules-last on the way in and rules-first on the way out.</summary>
    public virtual bool IsRule => false;

    // Sealed so that the records deriving from Change print as ip commands, not as generated member lists.
    public sealed override string ToString() => Display(TableNames.Numeric, ProtocolNames.Numeric);
}

/// <summary>A change iproute2 makes: a route or rule line in <c>ip -batch</c>.</summary>
public abstract record IpChange : Change
{
    protected abstract string Args(TableNames tables, ProtocolNames protocols);

    public override string Display(TableNames tables, ProtocolNames protocols) =>
        Family == AddressFamily.Unspecified ? $"ip {Args(tables, protocols)}" : $"ip {Net.FamilyFlag(Family)} {Args(tables, protocols)}";

    public override string? Batch() => Args(TableNames.Numeric, ProtocolNames.Numeric);

    /// <summary>The batch line with names: what a kernel error quotes, as every other line says it.</summary>
    public string NamedBatch(TableNames tables, ProtocolNames protocols) => Args(tables, protocols);
}

public sealed record AddRoute(Route Route) : IpChange
{
    public override Change Inverse() => new DeleteRoute(Route);
    public override AddressFamily Family => Route.Family;
    protected override string Args(TableNames t, ProtocolNames p) => "route add " + IpCommand.RouteArgs(Route, t, p);
}

public sealed record DeleteRoute(Route Route) : IpChange
{
    public override Change Inverse() => new AddRoute(Route);
    public override AddressFamily Family => Route.Family;
    protected override string Args(TableNames t, ProtocolNames p) => "route del " + IpCommand.RouteArgs(Route, t, p);
}

/// <summary>Same key (table, destination, metric), other attributes: the kernel swaps it atomically.</summary>
public sealed record ReplaceRoute(Route Old, Route New) : IpChange
{
    public override Change Inverse() => new ReplaceRoute(New, Old);
    public override AddressFamily Family => New.Family;
    protected override string Args(TableNames t, ProtocolNames p) => "route replace " + IpCommand.RouteArgs(New, t, p);
}

public sealed record AddRule(Rule Rule) : IpChange
{
    public override Change Inverse() => new DeleteRule(Rule);
    public override AddressFamily Family => Rule.Family;
    public override bool IsRule => true;
    protected override string Args(TableNames t, ProtocolNames p) => "rule add " + IpCommand.RuleArgs(Rule, t, p);
}

public sealed record DeleteRule(Rule Rule) : IpChange
{
    public override Change Inverse() => new AddRule(Rule);
    public override AddressFamily Family => Rule.Family;
    public override bool IsRule => true;
    protected override string Args(TableNames t, ProtocolNames p) => "rule del " + IpCommand.RuleArgs(Rule, t, p);
}
