using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace TunnelRouter.Core;

/// <summary>
/// What one tunnel's <c>up</c> installed, kept until its <c>down</c>: the live tunnel as part of the desired state.
/// Who the tunnel is (device and addresses), what it was set up with (table, pool-rule options, its networks and
/// the OpenVPN variables they came from) and the routes and pool rules it added. <c>down</c> removes exactly these,
/// and only when it is the same tunnel: when OpenVPN A closes tun0 and B gets tun0, A's late down finds B's record
/// and leaves B's state alone. plan, apply, status, doctor and watch restore what the records hold while the
/// device lives, and forget a record whose device is gone (OpenVPN killed without a down). Pure: the file is in
/// Kernel/ (<c>TunnelRecords</c>); the format is a small versioned JSON (<see cref="FormatVersion"/>).
/// </summary>
public sealed record TunnelRecord(string Device, string Identity, IReadOnlyList<Route> Routes, IReadOnlyList<Rule> Rules)
{
    /// <summary>The lines of the tunnel's Instances entry as up resolved them ("route default via 10.8.0.1 dev tun2
    /// table nyet", "rule ..."), so that they can be shown and restored without OpenVPN's environment.</summary>
    public IReadOnlyList<string> Lines { get; init; } = [];

    /// <summary>The tunnel's own VPN server (trusted_ip, remote_N) when its OpenVPN configuration lacks
    /// allow-recursive-routing: traffic for it must not go into the tunnel.</summary>
    public IReadOnlyList<System.Net.IPAddress> Servers { get; init; } = [];

    /// <summary>Bumped when a field changes meaning; a record of another version is not read (nothing is taken from it).</summary>
    public const int FormatVersion = 1;

    /// <summary>The hook's table, and its pool-rule options as they were at up.</summary>
    public uint Table { get; init; }
    public bool PoolRules { get; init; }
    public uint PoolRulePriority { get; init; }

    /// <summary>The tunnel's own environment set its pool-rule options (OpenVPN's <c>setenv TUNNEL_ROUTER_POOLRULES</c> or
    /// <c>..._POOLRULEPRIORITY</c>): the policy file's then never move them (<see cref="Follow"/>).</summary>
    public bool PoolRulesPinned { get; init; }

    /// <summary>
    /// The live tunnel as the policy wants it now (docs/lifecycle.md, invariant 8): with the policy's pool-rule options
    /// instead of those of its up, its pool rules made again from its recorded pools (or none). The same record when
    /// nothing differs, or when the tunnel's own environment set them.
    /// </summary>
    public TunnelRecord Follow(bool poolRules, uint priority, byte protocol)
    {
        if (PoolRulesPinned || PoolRules == poolRules && (PoolRulePriority == priority || !poolRules)) return this;
        var pools = Networks.Where(n => n.Pool).Select(n => n.Network).ToHashSet();
        bool IsPoolRule(Rule r) => PoolRules && r.Action == RuleAction.Lookup && r.Table == Table && r.Priority == PoolRulePriority
                                   && r.From is { } f && pools.Contains(f) && r.To is null;
        IEnumerable<Rule> made = !poolRules ? [] : Networks.Where(n => n.Pool)
            .Select(n => new Rule(n.Network.Family(), priority, RuleAction.Lookup, Table, protocol, from: n.Network));
        return this with { Rules = [.. Rules.Where(r => !IsPoolRule(r)), .. made.Where(r => !Rules.Contains(r))], PoolRules = poolRules, PoolRulePriority = priority };
    }

    /// <summary>The hook's table came from the policy file (neither <c>setenv TUNNEL_ROUTER_TABLE</c> nor
    /// <c>..._TABLEID</c> in the tunnel's OpenVPN configuration): the tunnel then follows a changed <c>Table</c>
    /// (<see cref="FollowTable"/>). False in a record an older writer left: such a tunnel keeps its table.</summary>
    public bool TableFromPolicy { get; init; }

    /// <summary>
    /// The live tunnel with the policy's hook table as it is now (invariant 8): its networks' routes and its pool rules
    /// move from the table of its up to <paramref name="table"/>. The routes and rules of its Instances lines name their
    /// own tables and stay. The same record when the table is the same, or when the tunnel's own environment set it.
    /// </summary>
    public TunnelRecord FollowTable(uint table)
    {
        if (!TableFromPolicy || Table == table || Table == 0) return this;
        var networks = Networks.Select(n => n.Network).ToHashSet();
        var pools = Networks.Where(n => n.Pool).Select(n => n.Network).ToHashSet();
        return this with
        {
            Table = table,
            Routes = [.. Routes.Select(r => r.Table == Table && networks.Contains(r.Destination) && (r.Device == Device || r.Type == RouteType.Throw) ? r with { Table = table } : r)],
            Rules = [.. Rules.Select(r => r.Action == RuleAction.Lookup && r.Table == Table && r.From is { } f && pools.Contains(f) && r.To is null ? r with { Table = table } : r)],
        };
    }

    /// <summary>The tunnel's own addresses: with the device, who it is.</summary>
    public IPAddress? Local4 { get; init; }
    public IPAddress? Local6 { get; init; }

    public IReadOnlyList<TunnelNetwork> Networks { get; init; } = [];

    /// <summary>The network namespace the tunnel lives in (the inode of /proc/self/ns/net at its up): a record of another
    /// namespace on the same host is none of this one's business. 0 in a record an older writer left (taken as this one's).</summary>
    public ulong NetNs { get; init; }

    /// <summary>The tunnel device's index at up (0 when unknown).</summary>
    public int Ifindex { get; init; }

    /// <summary>Whether this record is the namespace's <paramref name="netns"/>'s.</summary>
    public bool InNamespace(ulong netns) => NetNs == 0 || netns == 0 || NetNs == netns;

    /// <summary>The OpenVPN variables the tunnel was worked out from (<see cref="IsRecordedVariable"/>).</summary>
    public IReadOnlyDictionary<string, string> Variables { get; init; } = new Dictionary<string, string>();

    /// <summary>Who a tunnel is: its device and its own addresses (the down-root plugin passes them too).</summary>
    public static string IdentityOf(OpenVpnTunnel t) => $"{t.Device} {t.Local4?.ToString() ?? "-"} {t.Local6?.ToString() ?? "-"}";

    public static TunnelRecord Of(OpenVpnTunnel tunnel, KernelState installed, HookSettings? settings = null,
        IReadOnlyDictionary<string, string>? environment = null) =>
        new(tunnel.Device, IdentityOf(tunnel), installed.Routes, installed.Rules)
        {
            Table = settings?.Table ?? 0,
            PoolRules = settings?.PoolRules ?? false,
            PoolRulePriority = settings?.PoolRulePriority ?? 0,
            PoolRulesPinned = environment?.Keys.Any(k => k.Equals("TUNNEL_ROUTER_POOLRULES", StringComparison.OrdinalIgnoreCase)
                                                        || k.Equals("TUNNEL_ROUTER_POOLRULEPRIORITY", StringComparison.OrdinalIgnoreCase)) == true,
            TableFromPolicy = settings is not null && environment?.Keys.Any(k => k.Equals("TUNNEL_ROUTER_TABLE", StringComparison.OrdinalIgnoreCase)
                                                        || k.Equals("TUNNEL_ROUTER_TABLEID", StringComparison.OrdinalIgnoreCase)) != true,
            Local4 = tunnel.Local4,
            Local6 = tunnel.Local6,
            Networks = tunnel.Networks,
            Variables = environment is null ? new Dictionary<string, string>()
                : environment.Where(kv => IsRecordedVariable(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal),
        };

    /// <summary>OpenVPN's variables that describe the tunnel (device, addresses, routes, config); never secrets
    /// or anything a client sends (common_name, username, password).</summary>
    public static bool IsRecordedVariable(string key) =>
        key is "dev" or "dev_type" or "config" or "tun_mtu" || key.StartsWith("ifconfig_", StringComparison.Ordinal)
        || key.StartsWith("route_", StringComparison.Ordinal);

    /// <summary>Whether <paramref name="tunnel"/> is the one this record describes: the same device and addresses. A down that
    /// carries no address at all (only <c>dev</c>: a plugin's or an admin's) is the device's, whoever it is: with nothing to
    /// tell two tunnels apart, the device's record is the one to take down.</summary>
    public bool Matches(OpenVpnTunnel tunnel) =>
        Identity == IdentityOf(tunnel) || (tunnel.Local4 is null && tunnel.Local6 is null && Device == tunnel.Device);

    /// <summary>
    /// OpenVPN's environment at a soft restart (<c>up</c> with <c>restart</c>: persist-tun + up-restart, SIGUSR1,
    /// ping-restart), completed from this record: OpenVPN 2.6 does not rebuild the route list for a persisted tun and
    /// sets no <c>route_vpn_gateway</c> or <c>route_*_N</c> there, so each recorded variable it leaves unset or empty
    /// takes the value the tunnel's last up had. What OpenVPN does set wins. <paramref name="filled"/>: the names taken
    /// from the record, in order.
    /// </summary>
    public IReadOnlyDictionary<string, string> AtRestart(IReadOnlyDictionary<string, string> env, out IReadOnlyList<string> filled)
    {
        var names = new List<string>();
        var merged = new Dictionary<string, string>(env, StringComparer.Ordinal);
        foreach (var (key, value) in Variables.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            if (IsRecordedVariable(key) && (!env.TryGetValue(key, out var now) || now.Length == 0) && value.Length > 0)
            {
                merged[key] = value;
                names.Add(key);
            }
        filled = names;
        return merged;
    }

    /// <summary>Whether the tunnel this record describes still lives: its device exists and still has one of the
    /// tunnel's own addresses (a device that came back with other addresses is another tunnel's).</summary>
    public bool LivesOn(IReadOnlyList<Link> links)
    {
        var link = links.FirstOrDefault(l => l.Name == Device);
        if (link is null) return false;
        if (Local4 is null && Local6 is null) return true;
        return link.Addresses.Any(a => a.Address.Equals(Local4) || a.Address.Equals(Local6));
    }

    /// <summary>The objects of this record, by what identifies them in the kernel (not by every attribute: a
    /// route of ours whose gateway changed is still ours to replace).</summary>
    public Ownership Scope() => ScopeOf(Routes, Rules);

    public static Ownership ScopeOf(IEnumerable<Route> routes, IEnumerable<Rule> rules)
    {
        var routeKeys = routes.Select(RouteId).ToHashSet();
        var ruleKeys = rules.Select(RuleId).ToHashSet();
        // A route written without dev ("198.51.100.7 via ${route_vpn_gateway} table nyet") reads back with the device
        // the kernel chose: recorded without one, it matches on the rest.
        return new(r => routeKeys.Contains(RouteId(r)) || (r.Device is not null && routeKeys.Contains(RouteId(r with { Device = null }))),
            r => ruleKeys.Contains(RuleId(r)));
    }

    static (AddressFamily, uint, IPNetwork, string?, byte) RouteId(Route r) => (r.Family, r.Table, r.Destination, r.Device, r.Protocol);

    static (AddressFamily, uint, IPNetwork?, uint, byte, RuleAction) RuleId(Rule r) => (r.Family, r.Priority, r.From, r.Table, r.Protocol, r.Action);

    public string Format() => JsonSerializer.Serialize(new TunnelRecordJson
    {
        Version = FormatVersion,
        Device = Device,
        Identity = Identity,
        Table = Table,
        PoolRules = PoolRules,
        PoolRulePriority = PoolRulePriority,
        PoolRulesPinned = PoolRulesPinned ? true : null,
        TableFromPolicy = TableFromPolicy ? true : null,
        Local4 = Local4?.ToString(),
        Local6 = Local6?.ToString(),
        Networks = [.. Networks.Select(n => new TunnelRecordJson.NetworkJson { Network = Net.Format(n.Network), Gateway = n.Gateway?.ToString(), Pool = n.Pool })],
        Variables = new SortedDictionary<string, string>((IDictionary<string, string>)Variables.ToDictionary(), StringComparer.Ordinal),
        Routes = [.. Routes.Select(r => new TunnelRecordJson.RouteJson
        {
            Destination = Net.Format(r.Destination), Table = r.Table, Protocol = r.Protocol, Device = r.Device, Gateway = r.Gateway?.ToString(),
            Line = LineOf(r),
        })],
        Rules = [.. Rules.Select(r => new TunnelRecordJson.RuleJson
        {
            Family = r.Family.IsV6() ? 6 : 4, From = r.From is { } f ? Net.Format(f) : null, Priority = r.Priority, Table = r.Table, Protocol = r.Protocol,
            Line = LineOf(r),
        })],
        Lines = Lines.Count == 0 ? null : [.. Lines],
        Servers = Servers.Count == 0 ? null : [.. Servers.Select(a => a.ToString())],
        NetNs = NetNs == 0 ? null : NetNs,
        Ifindex = Ifindex == 0 ? null : Ifindex,
    }, TunnelRecordJsonContext.Default.TunnelRecordJson) + "\n";

    /// <summary>An object as an ip line with numeric tables and without its protocol (kept beside it), its family first.</summary>
    static string LineOf(Route r) => Family(r.Family) + WithoutProtocol(IpCommand.RouteArgs(r, TableNames.Numeric, ProtocolNames.Numeric));

    static string LineOf(Rule r) => Family(r.Family) + WithoutProtocol(IpCommand.RuleArgs(r, TableNames.Numeric, ProtocolNames.Numeric));

    static string Family(AddressFamily f) => f.IsV6() ? "-6 " : "-4 ";

    static string WithoutProtocol(string args)
    {
        var words = args.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToList();
        var at = words.FindIndex(w => w is "proto" or "protocol");
        if (at >= 0 && at + 1 < words.Count) words.RemoveRange(at, 2);
        return string.Join(' ', words);
    }

    static uint? Numeric(string table) => uint.TryParse(table, System.Globalization.NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;

    /// <summary>Null when the text is not a record of this version for this device (then nothing is taken from it).</summary>
    public static TunnelRecord? Parse(string device, string text)
    {
        try
        {
            var j = JsonSerializer.Deserialize(text, TunnelRecordJsonContext.Default.TunnelRecordJson);
            if (j is null || j.Version != FormatVersion || j.Device != device || j.Identity is not { } identity
                || !identity.StartsWith(device + " ", StringComparison.Ordinal)) return null;
            InterfaceName.Validate("record", device);
            // The line is the object whole (every selector and attribute: a rule's "to", a route's metric and type),
            // so a restore makes exactly what up made; the fields beside it are what an older writer left.
            var routes = (j.Routes ?? []).Select(r => r.Line is { } line ? PolicyLine.ParseRoute("record", line, new PolicyLine.Tables(Numeric, []), r.Protocol) : new Route(Net.ParsePrefix("record", r.Destination ?? "", null), r.Table, r.Protocol,
                device: r.Device is null ? null : InterfaceName.Validate("record", r.Device),
                gateway: r.Gateway is null ? null : Net.ParseAddress("record", r.Gateway, null), onLink: r.Gateway is not null)).ToList();
            var rules = (j.Rules ?? []).Select(r => r.Line is { } line ? PolicyLine.ParseRule("record", line, new PolicyLine.Tables(Numeric, []), r.Protocol, null) : new Rule(r.Family == 6 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork,
                r.Priority, RuleAction.Lookup, r.Table, r.Protocol, from: r.From is null ? null : Net.ParsePrefix("record", r.From, null))).ToList();
            var networks = (j.Networks ?? []).Select(n => new TunnelNetwork(Net.ParsePrefix("record", n.Network ?? "", null),
                n.Gateway is null ? null : Net.ParseAddress("record", n.Gateway, null), n.Pool)).ToList();
            return new TunnelRecord(device, identity, routes, rules)
            {
                Table = j.Table,
                PoolRules = j.PoolRules,
                PoolRulePriority = j.PoolRulePriority,
                PoolRulesPinned = j.PoolRulesPinned ?? false,
                TableFromPolicy = j.TableFromPolicy ?? false,
                Local4 = j.Local4 is null ? null : Net.ParseAddress("record", j.Local4, AddressFamily.InterNetwork),
                Local6 = j.Local6 is null ? null : Net.ParseAddress("record", j.Local6, AddressFamily.InterNetworkV6),
                Networks = networks,
                Variables = j.Variables is null ? new Dictionary<string, string>() : new Dictionary<string, string>(j.Variables, StringComparer.Ordinal),
                // An Instances line as up resolved it: "route ..." or "rule ...", parsed again when it is used.
                Lines = (j.Lines ?? []).All(l => l.StartsWith("route ", StringComparison.Ordinal) || l.StartsWith("rule ", StringComparison.Ordinal))
                    ? j.Lines ?? [] : throw new FormatException("a record line is neither a route nor a rule"),
                Servers = (j.Servers ?? []).Select(a => Net.ParseAddress("record", a, null)).ToList(),
                NetNs = j.NetNs ?? 0,
                Ifindex = j.Ifindex ?? 0,
            };
        }
        catch (Exception e) when (e is InputException or FormatException or OverflowException or JsonException) { return null; }
    }
}

/// <summary>The record file's shape (version 1). Addresses and networks as iproute2 writes them.</summary>
public sealed class TunnelRecordJson
{
    public int Version { get; set; }
    public string? Device { get; set; }
    public string? Identity { get; set; }
    public uint Table { get; set; }
    public bool PoolRules { get; set; }
    public uint PoolRulePriority { get; set; }
    public bool? PoolRulesPinned { get; set; }
    public bool? TableFromPolicy { get; set; }
    public string? Local4 { get; set; }
    public string? Local6 { get; set; }
    public List<NetworkJson>? Networks { get; set; }
    public SortedDictionary<string, string>? Variables { get; set; }
    public List<RouteJson>? Routes { get; set; }
    public List<RuleJson>? Rules { get; set; }
    public List<string>? Lines { get; set; }
    public List<string>? Servers { get; set; }
    public ulong? NetNs { get; set; }
    public int? Ifindex { get; set; }

    public sealed class NetworkJson
    {
        public string? Network { get; set; }
        public string? Gateway { get; set; }
        public bool Pool { get; set; }
    }

    public sealed class RouteJson
    {
        public string? Destination { get; set; }
        public uint Table { get; set; }
        public byte Protocol { get; set; }
        public string? Device { get; set; }
        public string? Gateway { get; set; }
        public string? Line { get; set; }
    }

    public sealed class RuleJson
    {
        public int Family { get; set; }
        public string? From { get; set; }
        public uint Priority { get; set; }
        public uint Table { get; set; }
        public byte Protocol { get; set; }
        public string? Line { get; set; }
    }
}

[JsonSourceGenerationOptions(WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(TunnelRecordJson))]
internal sealed partial class TunnelRecordJsonContext : JsonSerializerContext;
