using System.Globalization;
using System.Net.Sockets;

namespace TunnelRouter.Core;

// Link and address changes. Links are family-less in ip -batch (Family Unspecified); addresses run in
// the batch of their family.

/// <summary>Equivalent to: ip link add NAME mtu M type gre remote R local L [ikey K okey K] ...</summary>
public sealed record AddLink(GreTunnel Tunnel) : IpChange
{
    public override Change Inverse() => new DeleteLink(Tunnel);
    protected override string Args(TableNames t, ProtocolNames p) =>
        $"link add {Tunnel.Name} mtu {Tunnel.Mtu.ToString(CultureInfo.InvariantCulture)} {Tunnel.TypeArgs(full: false)}";
}

/// <summary>Equivalent to: ip link del NAME. The kernel removes the link's addresses and routes with it.</summary>
/// <param name="Was">the link as it was, so a rollback can bring back its mark, state and addresses.</param>
public sealed record DeleteLink(GreTunnel Tunnel, Link? Was = null) : IpChange
{
    public override Change Inverse() => new AddLink(Tunnel);

    /// <summary>Undoing a delete restores the whole link: created, marked as ours, up, addressed. Routes
    /// over it are back with the next apply.</summary>
    public override IEnumerable<Change> Undo()
    {
        yield return new AddLink(Tunnel);
        yield return new SetLinkAlias(Tunnel.Name, TunnelPlanner.OwnerAlias);
        if (Was?.Up ?? true) yield return new SetLinkUp(Tunnel.Name);
        foreach (var a in Was?.Addresses ?? [])
            if (!a.IsLinkLocal) yield return new AddAddress(Tunnel.Name, a);
    }

    protected override string Args(TableNames t, ProtocolNames p) => $"link del {Tunnel.Name}";
}

/// <summary>Changes a tunnel's parameters in place (same kind, same key presence, same bound device):
/// the link, its index, addresses and routes stay. Equivalent to: ip link set NAME mtu M type gre ...</summary>
public sealed record ChangeLink(GreTunnel Old, GreTunnel New) : IpChange
{
    public override Change Inverse() => new ChangeLink(New, Old);

    // The MTU goes in the same request: without it ip6gre recomputes the MTU from its route to the remote.
    protected override string Args(TableNames t, ProtocolNames p) =>
        $"link set {New.Name} mtu {New.Mtu.ToString(CultureInfo.InvariantCulture)} {New.TypeArgs(full: true)}";
}

/// <summary>Equivalent to: ip link set NAME mtu M</summary>
public sealed record SetLinkMtu(string Name, uint Mtu, uint OldMtu) : IpChange
{
    public override Change Inverse() => new SetLinkMtu(Name, OldMtu, Mtu);
    protected override string Args(TableNames t, ProtocolNames p) => $"link set {Name} mtu {Mtu.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>The ownership mark (IFLA_IFALIAS), which the kernel keeps with the link. The kernel ignores an
/// alias given to "ip link add", so marking is a change of its own right after the add.
/// Equivalent to: ip link set NAME alias tunnel-router</summary>
public sealed record SetLinkAlias(string Name, string Alias, string OldAlias = "") : IpChange
{
    public override Change Inverse() => new SetLinkAlias(Name, OldAlias, Alias);
    protected override string Args(TableNames t, ProtocolNames p) =>
        $"link set {Name} alias {(Alias.Length == 0 ? "\"\"" : Alias)}";
}

/// <summary>Equivalent to: ip link set NAME up</summary>
public sealed record SetLinkUp(string Name) : IpChange
{
    public override Change Inverse() => new SetLinkDown(Name);
    protected override string Args(TableNames t, ProtocolNames p) => $"link set {Name} up";
}

/// <summary>Equivalent to: ip link set NAME down</summary>
public sealed record SetLinkDown(string Name) : IpChange
{
    public override Change Inverse() => new SetLinkUp(Name);
    protected override string Args(TableNames t, ProtocolNames p) => $"link set {Name} down";
}

/// <summary>Equivalent to: ip -4 address add 10.255.0.1/30 dev NAME</summary>
public sealed record AddAddress(string Device, InterfaceAddress Address) : IpChange
{
    public override Change Inverse() => new DeleteAddress(Device, Address);
    public override AddressFamily Family => Address.Family;
    protected override string Args(TableNames t, ProtocolNames p) => $"address add {Address} dev {Device}";
}

/// <summary>Equivalent to: ip -4 address del 10.255.0.1/30 dev NAME</summary>
public sealed record DeleteAddress(string Device, InterfaceAddress Address) : IpChange
{
    public override Change Inverse() => new AddAddress(Device, Address);
    public override AddressFamily Family => Address.Family;
    protected override string Args(TableNames t, ProtocolNames p) => $"address del {Address} dev {Device}";
}

/// <summary>
/// Equivalent to: ip -4 address replace 10.255.0.1/30 dev NAME — an address the interface already has, sent again:
/// the kernel changes nothing of a plain address and announces it once more (RTM_NEWADDR), which is how a routing
/// daemon that missed it learns of it. Only ever sent for addresses of tunnels tunnel-router owns.
/// </summary>
public sealed record ReplaceAddress(string Device, InterfaceAddress Address) : IpChange
{
    public override Change Inverse() => this;
    public override IEnumerable<Change> Undo() => [];
    public override AddressFamily Family => Address.Family;
    protected override string Args(TableNames t, ProtocolNames p) => $"address replace {Address} dev {Device}";
}
