using System.Net;
using System.Net.Sockets;
using TunnelRouter.Core;

namespace TunnelRouter.Cli;

/// <summary>
/// The policy's own routes and rules: the Tables, Rules, Routes and Uplinks sections, parsed and
/// validated up front (<see cref="Validate"/>, no kernel access), then resolved against the kernel and
/// planned (<see cref="Plan"/>). <c>apply</c> owns protocol 147 only: the hook's 148 and every foreign
/// object, including ones in the same tables and the same priority band, are never touched.
/// </summary>
public sealed class PolicyRouting
{
    /// <summary>Rules without "pref" get 2000 + 10 × their index in Rules: a documented band with gaps of 9
    /// an admin can insert rules into. The hook's pool rules live at 1000–1999, before it.</summary>
    public const uint RuleBandStart = 2000, BandStep = 10, BandSlots = 100;

    /// <summary>Uplinks without "Priority" get 3000 + 10 × their index: after the policy's rules, so an
    /// fwmark or port rule still wins over plain reply routing.</summary>
    public const uint UplinkBandStart = 3000;

    sealed record UplinkSpec(string Field, string Device, uint Table, uint Priority, IPAddress? Address, int? PrefixLength,
        IPAddress? Gateway);

    readonly List<Rule> _rules;
    readonly List<Route> _routes;
    readonly List<UplinkSpec> _uplinks;

    PolicyRouting(List<Rule> rules, List<Route> routes, List<UplinkSpec> uplinks)
    {
        _rules = rules;
        _routes = routes;
        _uplinks = uplinks;
    }

    public IReadOnlyList<Rule> Rules => _rules;
    public IReadOnlyList<Route> Routes => _routes;

    static string Source(Context ctx) => ctx.ConfigPath ?? "configuration";

    /// <summary>Registers Tables, parses every line and checks every uplink's static fields. Throws
    /// <see cref="InputException"/> naming file, key and value; reads nothing from the kernel.</summary>
    public static PolicyRouting Validate(Context ctx)
    {
        var src = Source(ctx);
        var o = ctx.Options;
        var protocol = ctx.Protocol;
        if (ctx.ConfigPath is null && o.Rules.Count + o.Routes.Count + o.Uplinks.Count == 0)
            ctx.Log.Warning("no policy file ({Path}, or -c PATH): the policy has no rules or routes", Config.ConfigLoader.DefaultPath);

        foreach (var (name, id) in o.Tables.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var field = $"{src}: Tables.{name}";
            if (TableNames.TryParseNumber(name, out _)) throw new InputException(field, "a table name cannot be a number");
            if (id is 0 or > int.MaxValue or TableNames.Default or TableNames.Main or TableNames.Local)
                throw new InputException(field, $"{id} is not a free table number (1 to {int.MaxValue}, except 253-255: default, main, local)");
            if (ctx.Names.Tables.TryGetId(name, out var existing) && existing != id)
                throw new InputException(field, $"{id}: the host's rt_tables files already define '{name}' as {existing}; use {existing}");
            ctx.Names.ResolveTable(field, name, id);
        }

        // Duplicates are found through dictionaries: a policy of 10,000 routes must not compare 50 million pairs.
        var rules = new List<Rule>();
        var ruleIndex = new Dictionary<Rule, int>();
        for (var i = 0; i < o.Rules.Count; i++)
        {
            var field = $"{src}: Rules[{i}]";
            uint? automatic = i < BandSlots ? RuleBandStart + BandStep * (uint)i : null;
            var rule = PolicyLine.ParseRule(field, o.Rules[i], n => ResolveTable(ctx, field, n), protocol, automatic);
            if (!ruleIndex.TryAdd(rule, i)) throw new InputException(field, $"'{Net.Printable(o.Rules[i])}' is the same rule as Rules[{ruleIndex[rule]}]");
            rules.Add(rule);
        }

        var routes = new List<Route>();
        var routeIndex = new Dictionary<RouteKey, int>();
        for (var i = 0; i < o.Routes.Count; i++)
        {
            var field = $"{src}: Routes[{i}]";
            var route = PolicyLine.ParseRoute(field, o.Routes[i], n => ResolveTable(ctx, field, n), protocol);
            if (!routeIndex.TryAdd(route.Key, i))
                throw new InputException(field, $"'{Net.Printable(o.Routes[i])}' has the same table, destination and metric as Routes[{routeIndex[route.Key]}]; a table holds one such route");
            routes.Add(route);
        }

        var uplinks = new List<UplinkSpec>();
        for (var i = 0; i < o.Uplinks.Count; i++)
        {
            var u = o.Uplinks[i];
            var field = $"{src}: Uplinks[{i}]";
            var device = InterfaceName.Validate($"{field}.Interface", u.Interface);
            if (string.IsNullOrEmpty(u.Table)) throw new InputException($"{field}.Table", "is not set; expected a table name or number, e.g. \"lan1\"");
            var table = ResolveTable(ctx, $"{field}.Table", u.Table)
                ?? throw new InputException($"{field}.Table", $"'{Net.Printable(u.Table)}' is not a table defined in rt_tables or the policy's Tables; add it to Tables");
            if (table is 0 or > int.MaxValue) throw new InputException($"{field}.Table", $"expected a table from 1 to {int.MaxValue}");
            IPAddress? address = null;
            int? prefix = null;
            if (u.Address is { } a)
            {
                var slash = a.IndexOf('/');
                address = Net.ParseAddress($"{field}.Address", slash < 0 ? a : a[..slash]);
                if (slash >= 0) prefix = Net.ParsePrefixLength($"{field}.Address", a[(slash + 1)..], address.AddressFamily);
            }
            IPAddress? gateway = u.Gateway is { } g ? Net.ParseAddress($"{field}.Gateway", g, address?.AddressFamily) : null;
            var priority = u.Priority ?? (i < BandSlots ? UplinkBandStart + BandStep * (uint)i
                : throw new InputException($"{field}.Priority", "is not set and the automatic band is full; set Priority"));
            if (priority == 0) throw new InputException($"{field}.Priority", "expected a priority from 1 to 4294967295");
            uplinks.Add(new UplinkSpec(field, device, table, priority, address, prefix, gateway));
        }
        return new PolicyRouting(rules, routes, uplinks);
    }

    /// <summary>A name defined by the host or by Tables; else the hook's own table (Table/TableId), so
    /// "lookup vpn" means the same table to apply as to the hook.</summary>
    static uint? ResolveTable(Context ctx, string field, string nameOrNumber)
    {
        if (ctx.Names.Tables.TryGetId(nameOrNumber, out var id)) return id;
        if (nameOrNumber == ctx.Options.Table) return ctx.Names.ResolveTable(field, nameOrNumber, ctx.Options.TableId);
        return null;
    }

    /// <summary>Everything the policy wants, uplinks resolved against the kernel's addresses and main table.</summary>
    public KernelState Desired(Context ctx, KernelState current)
    {
        var routes = new List<Route>(_routes);
        var rules = new List<Rule>(_rules);
        foreach (var spec in _uplinks)
        {
            var uplink = Resolve(ctx, spec, current);
            var state = uplink.Desired(ctx.Protocol);
            foreach (var r in state.Routes)
            {
                if (routes.FirstOrDefault(x => x.Key == r.Key) is { } other)
                    throw new InputException(spec.Field, $"its route '{r}' has the same table, destination and metric as '{other}'");
                routes.Add(r);
            }
            rules.AddRange(state.Rules.Where(r => !rules.Contains(r)));
        }
        return PolicyState.Settle(new KernelState(routes, rules), current);
    }

    public IReadOnlyList<Change> Plan(Context ctx)
    {
        var current = ctx.Kernel.Read(StateQuery.All);
        var desired = Desired(ctx, current);
        // Routes over GRE tunnels carry the same protocol but belong to the tunnels part (Tunnels[N].Routes).
        var overTunnels = TunnelsPart.RoutesOverTunnels(ctx, current.Routes);
        var owns = new Ownership(r => r.Protocol == ctx.Protocol && !overTunnels(r), r => r.Protocol == ctx.Protocol);
        // The kernel keeps one route per key in IPv6 too: an add beside someone else's answers EEXIST, which
        // would read as "already there" while our route is not. Say so instead, for both families.
        var foreign = new Dictionary<RouteKey, Route>();
        foreach (var have in current.Routes)
            if (!owns.Route(have)) foreign.TryAdd(have.Key, have);
        foreach (var want in desired.Routes)
            if (foreign.TryGetValue(want.Key, out var theirs))
                throw new ConflictException(
                    $"route '{IpCommand.RouteArgs(theirs, ctx.Names.Tables, ctx.Names.Protocols)}' is in the way of the policy's '{IpCommand.RouteArgs(want, ctx.Names.Tables, ctx.Names.Protocols)}' and is not owned by tunnel-router apply (protocol {ctx.Protocol}); remove it or change the policy's metric");
        return Planner.Plan(desired, current, owns);
    }

    /// <summary>Fills what the policy left out from the kernel: the address and prefix of the interface,
    /// and the gateway of its default route in the main table.</summary>
    static Uplink Resolve(Context ctx, UplinkSpec s, KernelState current)
    {
        IReadOnlyList<InterfaceAddress>? kernelAddresses = null;
        IReadOnlyList<InterfaceAddress> KernelAddresses() => kernelAddresses ??= ctx.Kernel.ReadAddresses(s.Device);

        var addresses = new List<InterfaceAddress>();
        if (s.Address is { } a)
        {
            var prefix = s.PrefixLength ?? KernelAddresses().FirstOrDefault(k => k.Address.Equals(a))?.PrefixLength
                ?? throw new InputException($"{s.Field}.Address",
                    $"{a} is not on {s.Device}, so its prefix length cannot be read; write it with its prefix, e.g. {a}/{(a.AddressFamily.IsV6() ? 64 : 24)}");
            addresses.Add(new InterfaceAddress(a, prefix));
        }
        else
        {
            // The primary address of each family, as the kernel lists them.
            foreach (var family in (ReadOnlySpan<AddressFamily>)[AddressFamily.InterNetwork, AddressFamily.InterNetworkV6])
                if (KernelAddresses().FirstOrDefault(k => k.Family == family) is { } k) addresses.Add(k);
            if (addresses.Count == 0)
                throw new InputException($"{s.Field}.Interface", $"{s.Device} has no global address (does it exist?); set Address");
        }

        var gateways = new List<IPAddress>();
        foreach (var address in addresses.ToList())
        {
            var gateway = s.Gateway is { } g && g.AddressFamily == address.Family ? g
                : current.Routes
                    .Where(r => r.Table == TableNames.Main && r.Destination.PrefixLength == 0 && r.Type == RouteType.Unicast
                                && r.Device == s.Device && r.Gateway is not null && r.Family == address.Family)
                    .OrderBy(r => r.Metric).FirstOrDefault()?.Gateway;
            if (gateway is not null) { gateways.Add(gateway); continue; }
            if (s.Address is not null)
                throw new InputException($"{s.Field}.Gateway",
                    $"is not set and table main has no default route via {s.Device} to read it from; set Gateway");
            // A family read from the kernel without a gateway: reply routing to the connected network only
            // would send the rest to main's default route, the very thing uplinks exist to avoid; leave it out.
            ctx.Log.Debug("{Field}: {Device} has no {Family} default route in main; that family is left out", s.Field, s.Device,
                address.Family.IsV6() ? "IPv6" : "IPv4");
            addresses.Remove(address);
        }
        if (addresses.Count == 0)
            throw new InputException($"{s.Field}.Gateway", $"is not set and table main has no default route via {s.Device} to read it from; set Gateway");
        if (s.Gateway is { } given && !gateways.Contains(given))
            throw new InputException($"{s.Field}.Gateway", $"{given} is not of the family of the uplink's address {addresses[0].Address}");
        return new Uplink(s.Device, s.Table, s.Priority, addresses, gateways);
    }
}
