using System.Net;
using TunnelRouter.Core;

namespace TunnelRouter.Policy;

/// <summary>An uplink as the policy states it; what it leaves out (address, prefix, gateway) is read from
/// the kernel snapshot when the plan is made.</summary>
public sealed record UplinkSpec(string Field, string Device, uint Table, uint Priority, IPAddress? Address, int? PrefixLength,
    IPAddress? Gateway, IPAddress? Gateway6 = null)
{
    /// <summary>The gateway the policy gives for a family, or null (then main's default route via the device).</summary>
    public IPAddress? GatewayOf(System.Net.Sockets.AddressFamily family) =>
        Gateway6 is not null && family.IsV6() ? Gateway6 : Gateway?.AddressFamily == family ? Gateway : null;

    /// <summary>What Failover lines and status call it: its Name, else its device.</summary>
    public string Name { get => _name ?? Device; init => _name = value; }
    string? _name;

    /// <summary>How watch tracks its health; null: by its carrier alone.</summary>
    public UplinkTrack? Track { get; init; }
}

/// <summary>A Failover line: the default route of <see cref="Table"/> (each family) follows the first healthy uplink of
/// <see cref="Via"/> (their names), at <see cref="Metric"/>.</summary>
/// <param name="Weights">null for a failover line (the first healthy uplink); one weight per uplink of
/// <paramref name="Via"/> for a balancing line ("via wan1 weight 3 wan2 weight 1"): a multipath route over the healthy ones.</param>
public sealed record FailoverSpec(string Field, uint Table, IReadOnlyList<string> Via, uint? Metric, IReadOnlyList<ushort>? Weights = null)
{
    public bool Balances => Weights is not null;
}

/// <summary>The routes one prefix file made: for plan's summary ("+ 48,211 routes in table vpn from ru.txt").</summary>
public sealed record PrefixListRoutes(string Field, string File, uint Table, IReadOnlyList<Route> Routes);

/// <summary>
/// The whole policy, parsed and validated once: every section as typed values, every table name resolved
/// to its number, every line and entry checked (parsing is validation: a value of this type is a valid
/// policy). Immutable; what reconciles it never sees the configuration or the command line again.
/// </summary>
public sealed record ParsedPolicy
{
    /// <summary>The policy file's path, or "configuration": errors name it.</summary>
    public required string Source { get; init; }

    /// <summary>What apply owns (route and rule protocol) and what the hook owns.</summary>
    public required byte Protocol { get; init; }
    public required byte HookProtocol { get; init; }

    /// <summary>Rules lines with their priorities, and Routes lines plus the routes of every prefix file.</summary>
    public IReadOnlyList<Rule> Rules { get; init; } = [];
    public IReadOnlyList<Route> Routes { get; init; } = [];
    public IReadOnlyList<PrefixListRoutes> PrefixLists { get; init; } = [];
    public IReadOnlyList<UplinkSpec> Uplinks { get; init; } = [];
    public IReadOnlyList<FailoverSpec> Failover { get; init; } = [];

    /// <summary>The kill switch of each FailClosed table: "unreachable default" in both families at metric
    /// 4294967295, installed first and whatever devices exist, never removed by a failure or a hook's down.</summary>
    public IReadOnlyList<Route> FailClosed { get; init; } = [];

    /// <summary>The closed tables: FailClosed's, and those with a kill switch written as a Routes line.</summary>
    public IReadOnlySet<uint> FailClosedTables { get; init; } = new HashSet<uint>();

    /// <summary>The hook's pool-rule options: whether a server tunnel's pools get "from POOL lookup TABLE", and where those
    /// rules stand (the fail-closed guard judges their traffic there). Live tunnels follow them (invariant 8).</summary>
    public bool PoolRules { get; init; }
    public uint PoolRulePriority { get; init; } = 1000;

    /// <summary>The hook's table as the policy names it now (its <c>TableId</c>, or a name the host's and the policy's
    /// names define, or a number); null when it is a new name only the next up will register. Live tunnels whose table
    /// came from the policy follow it (invariant 8).</summary>
    public uint? HookTable { get; init; }

    /// <summary>The hook's table as the policy writes it, for messages.</summary>
    public string HookTableName { get; init; } = "";
    public IReadOnlyList<TunnelConfigEntry> Tunnels { get; init; } = [];

    /// <summary>Instances entries: templates the hook resolves at up; plan shows them.</summary>
    public IReadOnlyList<InstanceSpec> Instances { get; init; } = [];
    /// <summary>The routing daemon running OSPF over the tunnels; null when the policy has none.</summary>
    public RoutingSpec? Routing { get; init; }

    /// <summary>The nftables table of the policy's Marks; null when it has none.</summary>
    public NftTable? Marks { get; init; }

    /// <summary>The Marks entries the table is rendered from, in the policy's order.</summary>
    public IReadOnlyList<MarkRule> MarkRules { get; init; } = [];

    /// <summary>Validated net.* keys and values, in the policy's order.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Sysctls { get; init; } = [];

    /// <summary>Names of tables and protocols, for messages that show routes as the admin wrote them.</summary>
    public TableNames TableNames { get; init; } = TableNames.Numeric;
    public ProtocolNames ProtocolNames { get; init; } = ProtocolNames.Numeric;

    /// <summary>Table and protocol names the host's files lack, with the ids the parse gave them: the applier registers
    /// and writes them (under the host lock) before the changes that use them; parsing writes nothing.</summary>
    public IReadOnlyList<NewName> NewNames { get; init; } = [];

    public Ownership Owned => Ownership.ByProtocol(Protocol, HookProtocol);

    /// <summary>A policy that wants nothing: what flush reconciles against.</summary>
    public static ParsedPolicy Empty(string source, byte protocol, byte hookProtocol) =>
        new() { Source = source, Protocol = protocol, HookProtocol = hookProtocol };
}
