using System.Net;
using Serilog;
using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;

namespace TunnelRouter.Policy;

/// <summary>
/// The bound configuration → one <see cref="ParsedPolicy"/>, every section at once. Throws
/// <see cref="InputException"/> naming file, key and value; reads nothing from the kernel. The only I/O is
/// reading the prefix files the policy names, held to the policy file's own checks. The names it is given are not
/// changed: a table or protocol name the host lacks is the policy's <see cref="ParsedPolicy.NewNames"/>.
/// </summary>
public static class PolicyParser
{
    /// <summary>Rules without "pref" get 2000 + 10 × their index in Rules: a documented band with gaps of 9
    /// an admin can insert rules into. The hook's pool rules live at 1000–1999, before it.</summary>
    public const uint RuleBandStart = 2000, BandStep = 10, BandSlots = 100;

    /// <summary>Uplinks without "Priority" get 3000 + 10 × their index: after the policy's rules, so an
    /// fwmark or port rule still wins over plain reply routing.</summary>
    public const uint UplinkBandStart = 3000;

    /// <param name="configPath">the policy file read, or null (errors then name "configuration").</param>
    /// <param name="openFile">opens a prefix file after the ownership and mode checks; specs pass their own.</param>
    public static ParsedPolicy Parse(TunnelRouterOptions o, Iproute2Files names, string? configPath, Func<string, TextReader>? openFile = null) =>
        ParseTolerant(o, names, configPath, openFile).Valid();

    /// <summary>The policy as far as it parses, with every mistake (<see cref="PolicyParse"/>): what status, doctor and
    /// explain read, which work on a broken policy too. <paramref name="prefixFiles"/> false leaves the prefix files
    /// unread (their routes out): status, which shows none of them, does not read a million lines per scrape.</summary>
    public static PolicyParse ParseTolerant(TunnelRouterOptions o, Iproute2Files host, string? configPath, Func<string, TextReader>? openFile = null,
        bool prefixFiles = true)
    {
        var src = configPath ?? "configuration";
        // Resolved against a copy: a name the host lacks is the result's, written by whoever applies it.
        var names = host.Fork();
        // Every section and every entry is checked, and every mistake reported in one run, each naming where its
        // value came from (the file, a TUNNEL_ROUTER_* variable, a Key=Value argument).
        var errors = new List<InputException>();
        var protocol = InputErrors.Collect(errors, () => names.ResolveProtocol("Protocol", o.Protocol, "tunnel-router"));
        var hookProtocol = InputErrors.Collect(errors, () => names.ResolveProtocol("HookProtocol", o.HookProtocol, "tunnel-router-hook"));
        var tables = PolicyTables.Create(names, o.Tables, o.Table, o.TableId, src, errors);

        var tunnels = InputErrors.Collect(errors, () => TunnelConfig.Parse(o.Tunnels, protocol, n => tables.Resolve("Tunnels", n))) ?? [];
        var rules = ParseRules(o.Rules, tables, protocol, src, errors);
        var packed = ParseRoutes(o.Routes, tables, protocol, src, tunnels, errors);
        var routeLines = packed.Count;
        // A table is closed by FailClosed, or by a kill switch written as a Routes line (the same route).
        var closed = FailClosedTables(o.FailClosed, tables);
        // Only an unreachable route can be one: the other lines are not made into routes just to be asked (100k lines
        // made 100k objects here, +20 MB of peak RSS; bench P4).
        for (var i = 0; i < routeLines; i++)
            if (packed.At(i).Tail.Type == RouteType.Unreachable && Lifecycle.IsKillSwitch(packed[i], protocol)) closed.Add(packed[i].Table);
        var instances = InputErrors.Collect(errors, () => InstanceConfig.Parse(o.Instances, tables.For, hookProtocol, src, closed)) ?? [];
        // An Instances rule into a closed table without placeholders is steady: apply's, from boot (docs/lifecycle.md).
        foreach (var spec in instances)
            foreach (var rule in spec.SteadyRules(protocol))
                if (!rules.Contains(rule)) rules.Add(rule);
        var prefixLists = new List<PrefixListRoutes>();
        if (prefixFiles && o.PrefixLists.Count > 0)
        {
            // Every file read straight into the same packed list: a million prefixes must not become a million
            // route objects, nor a copy of themselves.
            var lists = new List<PrefixListRoutes>();
            var starts = new List<int>();
            for (var i = 0; i < o.PrefixLists.Count; i++)
            {
                // A file with a bad line is one error among the policy's; what it had added is taken back.
                var before = packed.Count;
                var list = InputErrors.Collect(errors, () => PrefixFile.Parse($"{src}: PrefixLists[{i}]", o.PrefixLists[i], tables, protocol, openFile ?? PrefixFile.Open, packed));
                if (list is null) { packed.Truncate(before); continue; }
                starts.Add(before);
                lists.Add(list);
            }
            starts.Add(packed.Count);
            // Duplicates and overlaps are fine: a prefix the policy already routes is routed once (the first
            // route with its key stays; the list is compacted in place).
            RouteIndex? index = null;
            var kept = routeLines;
            for (var l = 0; l < lists.Count; l++)
            {
                var start = kept;
                if (kept == 0 && PackedRoutes.Ascending(packed, starts[l], starts[l + 1]))
                {
                    // A sorted file (as published lists are) with nothing before it: a duplicate is its line before's
                    // twin, found without an index.
                    for (var i = starts[l]; i < starts[l + 1]; i++)
                        if (kept == 0 || !packed.At(kept - 1).Key.Equals(packed.At(i).Key)) packed.Set(kept++, packed.At(i));
                }
                else
                {
                    if (index is null)
                    {
                        index = new RouteIndex(packed);
                        for (var i = 0; i < kept; i++) index.Insert(i);
                    }
                    for (var i = starts[l]; i < starts[l + 1]; i++)
                    {
                        packed.Set(kept, packed.At(i));
                        if (index.AddKey(kept)) kept++;
                    }
                }
                prefixLists.Add(lists[l] with { Routes = packed.Range(start, kept - start) });
            }
            packed.Truncate(kept);
        }
        var uplinks = ParseUplinks(o.Uplinks, tables, src, errors);
        var failover = UplinkFailover.Parse(o.Failover, uplinks, o.Uplinks.Select(u => u.Name ?? u.Interface), tables, src, errors);
        var markRules = new List<MarkRule>(o.Marks.Count);
        var marksFrom = errors.Count;
        for (var i = 0; i < o.Marks.Count; i++)
            if (InputErrors.Collect(errors, () => MarkRules.Parse($"{src}: Marks[{i}]", o.Marks[i])) is { } m) markRules.Add(m);
        var marksTo = errors.Count;
        // Entry by entry: a broken one leaves the others (status shows them).
        var sysctls = Sysctl.Parse(o.Sysctls, errors);
        var routing = InputErrors.Collect(errors, () => RoutingSection.Parse(o.Routing, src, tunnels));

        var failClosed = InputErrors.Collect(errors, () => ParseFailClosed(o.FailClosed, tables, protocol, src, packed, routeLines)) ?? [];
        var origins = o.Origins() ?? ConfigOrigins.FileOnly(src);
        var policy = new ParsedPolicy
        {
            FailClosed = failClosed,
            FailClosedTables = closed,
            PoolRules = o.PoolRules,
            PoolRulePriority = o.PoolRulePriority,
            HookTable = o.TableId ?? (names.Tables.TryGetId(o.Table, out var hookTable) ? hookTable : null),
            HookTableName = o.Table,
            Source = src,
            Protocol = protocol,
            HookProtocol = hookProtocol,
            Rules = rules,
            Routes = packed,
            PrefixLists = prefixLists,
            Uplinks = uplinks,
            Failover = failover,
            Tunnels = tunnels,
            Instances = instances,
            Routing = routing,
            Marks = NftMarks.Render(markRules),
            MarkRules = markRules,
            Sysctls = sysctls,
            TableNames = names.Tables,
            ProtocolNames = names.Protocols,
            NewNames = names.Pending,
        };
        return new PolicyParse(policy, errors.Select(origins.Relabel).ToList())
        {
            MarksErrors = errors.GetRange(marksFrom, marksTo - marksFrom).Select(origins.Relabel).ToList(),
        };
    }

    /// <summary>Every mistake the policy's own check finds (none: an empty list), with the host's names from the
    /// options' Iproute2Dir: what <see cref="ConfigLoader.Load"/> adds to the shape check's errors.</summary>
    public static IReadOnlyList<InputException> ErrorsOf(TunnelRouterOptions o, string? configPath)
    {
        var errors = new List<InputException>();
        try { InputErrors.Collect(errors, () => Parse(o, Iproute2Files.Load(o.Iproute2Dir), configPath)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or TunnelRouterException) { }
        return errors;
    }

    /// <summary>Whether the policy has nothing of its own to route: apply then warns that no file was found.</summary>
    public static bool RoutesNothing(TunnelRouterOptions o) => o.Rules.Count + o.Routes.Count + o.Uplinks.Count + o.PrefixLists.Count == 0;

    // Duplicates are found through dictionaries: a policy of 100,000 routes must not compare 5 billion pairs.
    static List<Rule> ParseRules(List<string> lines, PolicyTables tables, byte protocol, string src, List<InputException> errors)
    {
        var rules = new List<Rule>(lines.Count);
        var index = new Dictionary<Rule, int>(lines.Count);
        // One resolver and one field name for the section; a line's own name is made only for its error.
        var section = $"{src}: Rules";
        var lineTables = tables.ForLines(section);
        for (var i = 0; i < lines.Count; i++)
        {
            if (InputErrors.Full(errors)) { errors.Add(InputErrors.NotChecked(section, lines.Count - i)); break; }
            var field = new LineField(section, i);
            uint? automatic = i < BandSlots ? RuleBandStart + BandStep * (uint)i : null;
            Rule rule;
            try
            {
                NoPlaceholder(field, lines[i], "Rules");
                rule = PolicyLine.ParseRule(field, lines[i], lineTables, protocol, automatic);
            }
            catch (InputException e) { errors.Add(e); continue; }
            if (!index.TryAdd(rule, i)) errors.Add(new InputException(field.ToString(), $"'{Net.Printable(lines[i])}' is the same rule as Rules[{index[rule]}]"));
            else rules.Add(rule);
        }
        return rules;
    }

    /// <summary>The Routes lines, packed as they are parsed (the planner reads them so, without a copy); a
    /// duplicate key is found with the list's own index.</summary>
    static PackedRoutes ParseRoutes(List<string> lines, PolicyTables tables, byte protocol, string src, IReadOnlyList<TunnelConfigEntry> tunnels,
        List<InputException> errors)
    {
        var tunnelNames = new Dictionary<string, TunnelConfigEntry>(StringComparer.Ordinal);
        foreach (var t in tunnels) tunnelNames[t.Link.Name] = t;
        var routes = new PackedRoutes(lines.Count);
        var index = new RouteIndex(routes, lines.Count);
        var lineOf = new int[lines.Count];
        // One resolver and one field name for the section; a line's own name is made only for its error.
        var section = $"{src}: Routes";
        var lineTables = tables.ForLines(section);
        for (var i = 0; i < lines.Count; i++)
        {
            if (InputErrors.Full(errors)) { errors.Add(InputErrors.NotChecked(section, lines.Count - i)); break; }
            var field = new LineField(section, i);
            Route route;
            try
            {
                NoPlaceholder(field, lines[i], "Routes");
                route = PolicyLine.ParseRoute(field, lines[i], lineTables, protocol);
            }
            catch (InputException e) { errors.Add(e); continue; }
            // A route over a tunnel belongs to the tunnel (made and removed with it), not to the top-level Routes.
            if (route.Device is { } dev && tunnelNames.TryGetValue(dev, out var tunnel))
            {
                errors.Add(new InputException(field.ToString(),
                    $"goes over tunnel {tunnel.Link.Name}; list it in {tunnel.Field}.Routes, where it is made and removed with the tunnel"));
                continue;
            }
            var at = routes.Count;
            routes.Add(route);
            if (index.AddKey(at, out var first)) lineOf[at] = i;
            else
            {
                routes.Truncate(at);
                errors.Add(new InputException(field.ToString(),
                    $"'{Net.Printable(lines[i])}' has the same table, destination and metric as Routes[{lineOf[first]}]; a table holds one such route"));
            }
        }
        return routes;
    }

    /// <summary>Placeholders are OpenVPN's values at up: only the hook has them, for the tunnel an Instances entry names.</summary>
    static void NoPlaceholder(LineField field, string line, string section)
    {
        if (InstanceLine.HasPlaceholder(line))
            throw new InputException(field.ToString(), $"'{Net.Printable(line)}' has a ${{...}} placeholder, which only an OpenVPN tunnel's up can fill; move the line into Instances[].{section}, e.g. {{ \"Dev\": \"tun2\", \"{section}\": [ ... ] }}");
    }

    /// <summary>The metric of a table's last route: the kill switch is what is left when nothing else matches.</summary>
    public const uint FailClosedMetric = uint.MaxValue;

    /// <summary>The FailClosed tables that resolve (one that does not is ParseFailClosed's error).</summary>
    public static HashSet<uint> FailClosedTables(IReadOnlyList<string> names, PolicyTables tables)
    {
        var ids = new HashSet<uint>();
        for (var i = 0; i < names.Count; i++)
        {
            uint? id;
            try { id = tables.Resolve($"FailClosed[{i}]", names[i] ?? ""); }
            catch (InputException) { continue; }
            if (id is { } t and not (0 or TableNames.Main or TableNames.Local or TableNames.Default)) ids.Add(t);
        }
        return ids;
    }

    /// <summary>FailClosed: an owned "unreachable default" in both families of each table, at its highest metric.
    /// A Routes line with the same key (the plain form, "unreachable default table nyet metric 4294967295") is
    /// the same route and stays the Routes line's.</summary>
    static List<Route> ParseFailClosed(List<string> names, PolicyTables tables, byte protocol, string src, PackedRoutes routes, int routeLines)
    {
        var result = new List<Route>();
        if (names.Count == 0) return result;
        var keys = new HashSet<PackedRouteKey>();
        for (var i = 0; i < routeLines; i++) keys.Add(routes.At(i).Key);
        var seen = new HashSet<uint>();
        var errors = new List<InputException>();
        for (var i = 0; i < names.Count; i++)
        {
            var field = $"{src}: FailClosed[{i}]";
            if (tables.Resolve(field, names[i] ?? "") is not { } table)
            {
                errors.Add(new InputException(field, $"'{Net.Printable(names[i] ?? "")}' is not a table defined in rt_tables or the policy's Tables; " +
                    (Suggest.Closest(names[i] ?? "", tables.Names) is { } meant ? $"did you mean '{meant}'?" : "add it to Tables")));
                continue;
            }
            if (table is 0 or TableNames.Main or TableNames.Local or TableNames.Default)
            {
                errors.Add(new InputException(field, $"'{Net.Printable(names[i] ?? "")}' is a table of the kernel's; a fail-closed table is a policy table (e.g. vpn)"));
                continue;
            }
            if (!seen.Add(table)) continue;
            foreach (var route in Lifecycle.KillSwitches(table, protocol))
                if (!keys.Contains(new PackedRouteKey(route))) result.Add(route);
        }
        InputErrors.ThrowIfAny(errors);
        return result;
    }

    static List<UplinkSpec> ParseUplinks(List<UplinkOptions> entries, PolicyTables tables, string src, List<InputException> errors)
    {
        var uplinks = new List<UplinkSpec>();
        for (var i = 0; i < entries.Count; i++)
            if (InputErrors.Collect(errors, () => ParseUplink(entries[i], $"{src}: Uplinks[{i}]", i, tables)) is { } u)
            {
                // Failover lines and status name uplinks: a name is one uplink.
                if (uplinks.FirstOrDefault(o => o.Name == u.Name) is { } other)
                    errors.Add(new InputException($"{u.Field}.{(entries[i].Name is null ? "Interface" : "Name")}",
                        $"'{u.Name}' already names {other.Field[(other.Field.LastIndexOf(": ", StringComparison.Ordinal) + 2)..]}; give each uplink its own Name"));
                else uplinks.Add(u);
            }
        return uplinks;
    }

    /// <summary>One uplink, every key of it checked: all its mistakes at once.</summary>
    static UplinkSpec ParseUplink(UplinkOptions u, string field, int i, PolicyTables tables)
    {
        var errors = new List<InputException>();
        T? Check<T>(Func<T> parse) => InputErrors.Collect(errors, parse);

        var device = Check(() => InterfaceName.Validate($"{field}.Interface", u.Interface));
        uint table = 0;
        if (string.IsNullOrEmpty(u.Table)) errors.Add(new InputException($"{field}.Table", "is not set; expected a table name or number, e.g. \"lan1\""));
        else if (tables.Resolve($"{field}.Table", u.Table) is not { } t)
            errors.Add(new InputException($"{field}.Table", $"'{Net.Printable(u.Table)}' is not a table defined in rt_tables or the policy's Tables; " +
                (Suggest.Closest(u.Table, tables.Names) is { } meant ? $"did you mean '{meant}'?" : "add it to Tables")));
        else if (t is 0 or > int.MaxValue) errors.Add(new InputException($"{field}.Table", $"expected a table from 1 to {int.MaxValue}"));
        else table = t;

        IPAddress? address = null;
        int? prefix = null;
        if (u.Address is { } a)
        {
            var slash = a.IndexOf('/');
            address = Check(() => Net.ParseAddress($"{field}.Address", slash < 0 ? a : a[..slash]));
            if (slash >= 0 && address is not null) prefix = Check(() => (int?)Net.ParsePrefixLength($"{field}.Address", a[(slash + 1)..], address.AddressFamily));
        }
        IPAddress? gateway = u.Gateway is { } g ? Check(() => Net.ParseAddress($"{field}.Gateway", g, address?.AddressFamily)) : null;
        IPAddress? gateway6 = u.Gateway6 is { } g6 ? Check(() => Net.ParseAddress($"{field}.Gateway6", g6, System.Net.Sockets.AddressFamily.InterNetworkV6)) : null;
        if (gateway6 is not null && gateway?.AddressFamily.IsV6() == true)
            errors.Add(new InputException($"{field}.Gateway", $"{gateway} is IPv6 and so is Gateway6; give the IPv4 gateway in Gateway"));
        if (gateway6 is not null && address is not null && !address.AddressFamily.IsV6())
            errors.Add(new InputException($"{field}.Gateway6", $"the uplink's Address {address} is IPv4 only; leave Address out to read both families from {device ?? u.Interface}"));
        uint priority = 0;
        if (u.Priority is null && i >= BandSlots)
            errors.Add(new InputException($"{field}.Priority", "is not set and the automatic band is full; set Priority"));
        else if (u.Priority == 0) errors.Add(new InputException($"{field}.Priority", "expected a priority from 1 to 4294967295"));
        else priority = u.Priority ?? UplinkBandStart + BandStep * (uint)i;

        string? name = null;
        if (u.Name is { } n)
        {
            if (n.Length == 0 || n.Length > 32 || !n.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
                errors.Add(new InputException($"{field}.Name", $"'{Net.Printable(n)}' is not a name of 1 to 32 letters, digits, '-', '_' or '.'"));
            else name = n;
        }
        var track = u.Track is { } line ? Check(() => UplinkTrack.Parse($"{field}.Track", line)) : null;

        InputErrors.ThrowIfAny(errors);
        return new UplinkSpec(field, device!, table, priority, address, prefix, gateway, gateway6) { Name = name ?? device!, Track = track };
    }
}
