namespace TunnelRouter.Core;

/// <summary>One tunnel of the policy, resolved: the link (with its MTU computed), its addresses, and the
/// routes over it (device = the tunnel, protocol = apply's).</summary>
public sealed record TunnelSpec(GreTunnel Link, IReadOnlyList<InterfaceAddress> Addresses, IReadOnlyList<Route> Routes);

/// <summary>
/// desired tunnels + the kernel's links and routes → ordered changes. Pure.
/// A link is ours when it carries the alias <see cref="OwnerAlias"/>; any other link is never changed or
/// deleted, and a policy tunnel whose name such a link already holds is a conflict. Order: links are
/// created (or recreated, or changed in place), marked, brought up and addressed first; then routes over
/// them are added; then what is no longer wanted goes, routes before addresses before links.
/// </summary>
public static class TunnelPlanner
{
    /// <summary>The mark on links TunnelRouter created (IFLA_IFALIAS, "ip link set NAME alias tunnel-router").</summary>
    public const string OwnerAlias = "tunnel-router";

    public static bool IsOwned(Link link) => link.Alias == OwnerAlias && link.Gre is not null;

    public static IReadOnlyList<Change> Plan(IReadOnlyList<TunnelSpec> desired, IReadOnlyList<Link> links,
        IReadOnlyList<Route> routes, byte protocol)
    {
        var byName = links.ToDictionary(l => l.Name, StringComparer.Ordinal);
        var setup = new List<Change>();
        var addressDeletes = new List<Change>();
        var recreated = new HashSet<string>(StringComparer.Ordinal);

        foreach (var spec in desired)
        {
            var want = spec.Link;
            if (!byName.TryGetValue(want.Name, out var have))
            {
                Create(spec, setup);
                continue;
            }
            if (have.Alias != OwnerAlias)
                throw new ConflictException(
                    $"link {want.Name} exists and was not created by tunnel-router (its alias is not '{OwnerAlias}'); " +
                    "rename the tunnel in the policy or delete the link");
            if (have.Gre is null || have.Gre.NeedsRecreate(want))
            {
                setup.Add(new DeleteLink(have.Gre ?? want, have));
                Create(spec, setup);
                recreated.Add(want.Name);
                continue;
            }

            if (have.Gre with { Mtu = want.Mtu } != want) setup.Add(new ChangeLink(have.Gre, want));
            else if (have.Gre.Mtu != want.Mtu) setup.Add(new SetLinkMtu(want.Name, want.Mtu, have.Gre.Mtu));
            if (!have.Up) setup.Add(new SetLinkUp(want.Name));

            var wanted = new HashSet<InterfaceAddress>(spec.Addresses);
            var present = new HashSet<InterfaceAddress>(have.Addresses);
            foreach (var a in spec.Addresses)
                if (!present.Contains(a)) setup.Add(new AddAddress(want.Name, a));
            foreach (var a in have.Addresses)
                if (!wanted.Contains(a) && !a.IsLinkLocal) addressDeletes.Add(new DeleteAddress(want.Name, a));
        }

        var wantedNames = desired.Select(d => d.Link.Name).ToHashSet(StringComparer.Ordinal);
        var removed = links.Where(l => IsOwned(l) && !wantedNames.Contains(l.Name)).ToList();

        // Routes on a recreated link vanish with its delete, before anything is added: they are not there.
        // Routes on a link about to be removed are still there, and ours: one of them may have to move.
        var ourDevices = wantedNames.Concat(removed.Select(l => l.Name)).ToHashSet(StringComparer.Ordinal);
        var currentRoutes = routes.Where(r => r.Device is null || !recreated.Contains(r.Device)).ToList();
        var routeChanges = Planner.Plan(
            new KernelState(desired.SelectMany(d => d.Routes).ToList(), []),
            new KernelState(currentRoutes, []),
            new Ownership(r => r.Protocol == protocol && r.Device is { } dev && ourDevices.Contains(dev), _ => false));

        return [.. setup, .. routeChanges, .. addressDeletes, .. removed.Select(l => new DeleteLink(l.Gre!, l))];
    }

    /// <summary>Deletes every link TunnelRouter owns (flush); addresses and routes go with them.</summary>
    public static IReadOnlyList<Change> Remove(IReadOnlyList<Link> links) =>
        links.Where(IsOwned).Select(l => (Change)new DeleteLink(l.Gre!, l)).ToList();

    static void Create(TunnelSpec spec, List<Change> into)
    {
        into.Add(new AddLink(spec.Link));
        into.Add(new SetLinkAlias(spec.Link.Name, OwnerAlias));
        into.Add(new SetLinkUp(spec.Link.Name));
        foreach (var a in spec.Addresses) into.Add(new AddAddress(spec.Link.Name, a));
    }
}
