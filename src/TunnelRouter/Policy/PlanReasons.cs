using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Kernel;

namespace TunnelRouter.Policy;

/// <summary>
/// One change of a plan as a machine (<c>plan --json</c>, <c>apply --json</c>) and <c>plan -v</c> read it: what is done
/// (<see cref="Operation"/>) to which kind of object, who owns it, which line of which file wants it, and why.
/// </summary>
/// <param name="Operation">add, delete, replace, set or write.</param>
/// <param name="Object">route, rule, link, address, sysctl, nftables or routing-config.</param>
/// <param name="Command">the change as <c>plan</c> prints it (an ip, nft or sysctl command).</param>
/// <param name="Owner">tunnel-router (the policy), tunnel-router-hook (a live tunnel's), or "tunnel DEV".</param>
/// <param name="File">the policy file or the conf.d fragment holding the line that wants it; null for a deletion.</param>
/// <param name="Section">the policy's section ("Routes", "Uplinks", "FailClosed", ...); null when no line wants it.</param>
/// <param name="Line">the index of the line or entry in that section, as its file counts; null for a whole section.</param>
public sealed record PlannedChange(string Operation, string Object, string Command, string Owner, string? File, string? Section, int? Line,
    string Reason)
{
    /// <summary>"conf.d/10-site.json: Routes[1]", or null when no line wants the change.</summary>
    public string? Wanter => Section is null ? null : $"{File}: {Section}{(Line is { } l ? $"[{l}]" : "")}";
}

/// <summary>Finds, for each change of a plan, the line of the policy that wants it (<see cref="PlannedChange"/>). Built
/// once per plan: the lookups are dictionaries, not scans, so a plan of 100,000 routes is explained in one pass.</summary>
public sealed class PlanReasons
{
    readonly ParsedPolicy _policy;
    readonly ConfigOrigins _origins;
    readonly TableNames _tables;
    readonly ProtocolNames _protocols;
    readonly IReadOnlyList<TunnelRecord> _live;
    readonly Dictionary<Route, string> _routes = new();
    readonly Dictionary<Rule, string> _rules = new();
    readonly Dictionary<string, string> _links = new(StringComparer.Ordinal);
    readonly Dictionary<uint, string> _tablesOf = new();

    public PlanReasons(ParsedPolicy policy, ConfigOrigins? origins, IReadOnlyList<TunnelRecord> live, TableNames tables, ProtocolNames protocols)
    {
        _policy = policy;
        _origins = origins ?? ConfigOrigins.FileOnly(policy.Source);
        _tables = tables;
        _protocols = protocols;
        _live = live;
        var prefix = 0;
        foreach (var list in policy.PrefixLists)
        {
            prefix += list.Routes.Count;
            foreach (var r in list.Routes) _routes.TryAdd(r, Strip(list.Field));
        }
        // The Routes lines come first in the packed list, the prefix files' routes after them.
        for (var i = 0; i < policy.Routes.Count - prefix; i++) _routes.TryAdd(policy.Routes[i], $"Routes[{i}]");
        for (var i = 0; i < policy.Rules.Count; i++) _rules.TryAdd(policy.Rules[i], $"Rules[{i}]");
        var closed = new List<uint>();
        foreach (var r in policy.FailClosed)
        {
            if (!closed.Contains(r.Table)) closed.Add(r.Table);
            _routes.TryAdd(r, $"FailClosed[{closed.IndexOf(r.Table)}]");
        }
        foreach (var t in policy.Tunnels)
        {
            _links.TryAdd(t.Link.Name, Strip(t.Field));
            foreach (var r in t.Routes) _routes.TryAdd(r, Strip(t.Field) + ".Routes");
        }
        foreach (var u in policy.Uplinks) _tablesOf.TryAdd(u.Table, Strip(u.Field));
    }

    /// <summary>"policy.json: Uplinks[0]" → "Uplinks[0]".</summary>
    string Strip(string field) => field.StartsWith(_policy.Source + ": ", StringComparison.Ordinal) ? field[(_policy.Source.Length + 2)..] : field;

    public PlannedChange Of(Change change)
    {
        var command = change.Display(_tables, _protocols);
        var (operation, kind) = Kind(change);
        var (owner, path) = change switch
        {
            AddRoute a => Route(a.Route),
            DeleteRoute d => Route(d.Route),
            ReplaceRoute r => Route(r.New),
            AddRule a => Rule(a.Rule),
            DeleteRule d => Rule(d.Rule),
            AddLink a => Owned(Link(a.Tunnel.Name)),
            DeleteLink d => Owned(Link(d.Tunnel.Name)),
            ChangeLink c => Owned(Link(c.New.Name)),
            SetLinkMtu m => Owned(Link(m.Name)),
            SetLinkAlias a => Owned(Link(a.Name)),
            SetLinkUp u => Owned(Link(u.Name)),
            SetLinkDown d => Owned(Link(d.Name)),
            AddAddress a => Owned(Link(a.Device)),
            DeleteAddress d => Owned(Link(d.Device)),
            ReplaceAddress r => Owned(Link(r.Device)),
            SetSysctl s => Owned($"Sysctls.{s.Key}"),
            WriteRoutingConfig => Owned("Routing"),
            SettleOspf => Owned("Routing"),
            ReplaceNftTable { New: { } n } when n.Contains(NftGuard.QualifiedName, StringComparison.Ordinal) => Owned("FailClosed"),
            ReplaceNftTable { Old: { } o } when o.Contains(NftGuard.QualifiedName, StringComparison.Ordinal) => Owned("FailClosed"),
            ReplaceNftTable => Owned("Marks"),
            _ => Owned(null),
        };
        // A deletion is wanted by nobody: the object is owned and the policy (or its tunnel) no longer has it.
        if (operation == "delete") path = null;
        string? file = null, section = null;
        int? line = null;
        if (path is not null)
        {
            var (f, local) = _origins.Place(path);
            file = f;
            var bracket = local.IndexOf('[');
            var end = bracket < 0 ? -1 : local.IndexOf(']', bracket);
            if (bracket > 0 && end > bracket && int.TryParse(local.AsSpan(bracket + 1, end - bracket - 1), out var n))
            {
                section = local[..bracket] + local[(end + 1)..];
                line = n;
            }
            else section = local;
        }
        var reason = operation switch
        {
            "delete" when owner.StartsWith("tunnel ", StringComparison.Ordinal) => "owned by a tunnel that is gone",
            "delete" => "owned, and the policy no longer has it",
            "add" when path is null => "wanted, and missing from the kernel",
            "add" => "the policy has it, the kernel does not",
            _ => "the kernel's differs from the policy's",
        };
        return new PlannedChange(operation, kind, command, owner, file, section, line, reason);
    }

    (string Owner, string? Path) Owned(string? path) => ("tunnel-router", path);

    string? Link(string name) => _links.TryGetValue(name, out var f) ? f : null;

    (string, string?) Route(Route r)
    {
        if (r.Protocol == _policy.HookProtocol) return (TunnelOf(t => t.Routes.Contains(r)), null);
        return ("tunnel-router", _routes.TryGetValue(r, out var p) ? p : _tablesOf.TryGetValue(r.Table, out var u) ? u : null);
    }

    (string, string?) Rule(Rule r)
    {
        if (r.Protocol == _policy.HookProtocol) return (TunnelOf(t => t.Rules.Contains(r)), null);
        return ("tunnel-router", _rules.TryGetValue(r, out var p) ? p : _tablesOf.TryGetValue(r.Table, out var u) ? u : null);
    }

    string TunnelOf(Func<TunnelRecord, bool> holds) =>
        _live.FirstOrDefault(holds) is { } t ? $"tunnel {t.Device}" : "tunnel-router-hook";

    static (string Operation, string Object) Kind(Change c) => c switch
    {
        AddRoute => ("add", "route"),
        DeleteRoute => ("delete", "route"),
        ReplaceRoute => ("replace", "route"),
        AddRule => ("add", "rule"),
        DeleteRule => ("delete", "rule"),
        AddLink => ("add", "link"),
        DeleteLink => ("delete", "link"),
        ChangeLink or SetLinkMtu or SetLinkAlias or SetLinkUp or SetLinkDown => ("set", "link"),
        AddAddress => ("add", "address"),
        DeleteAddress => ("delete", "address"),
        ReplaceAddress => ("replace", "address"),
        SetSysctl => ("set", "sysctl"),
        ReplaceNftTable { Old: null } => ("add", "nftables"),
        ReplaceNftTable { New: null } => ("delete", "nftables"),
        ReplaceNftTable => ("replace", "nftables"),
        WriteRoutingConfig => ("write", "routing-config"),
        SettleOspf => ("wait", "routing-daemon"),
        _ => ("set", c.GetType().Name),
    };
}
