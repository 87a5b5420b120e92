using System.Text;

namespace TunnelRouter.Core;

/// <summary>The routing daemon that runs OSPF over the owned tunnels.</summary>
public enum RoutingDaemonKind
{
    /// <summary>BIRD 2: tunnel-router writes a file with its own <c>protocol ospf</c> blocks, which the admin's
    /// bird.conf includes; <c>birdc configure</c> reloads.</summary>
    Bird,

    /// <summary>FRR: tunnel-router writes the <c>interface</c> stanzas of the owned tunnels and LANs (with
    /// <c>ip ospf area</c>, so no <c>network</c> statement of the admin's is touched); <c>vtysh -f</c> applies.</summary>
    Frr,
}

/// <summary>One interface in the area: an owned tunnel (point-to-point, with its cost) or a LAN announced
/// as a stub (passive: its prefix is advertised, no adjacency is formed on it).</summary>
public sealed record OspfInterface(string Name, uint Cost, bool Stub);

/// <summary>
/// What the policy's <c>Routing</c> section asks of the daemon: OSPF in one area over these interfaces,
/// with hello/dead timers. IPv4 runs OSPFv2; <see cref="Ipv6"/> adds OSPFv3 on the same interfaces.
/// </summary>
public sealed record OspfSettings(RoutingDaemonKind Daemon, string Area, uint Hello, uint Dead, bool Ipv6,
    IReadOnlyList<OspfInterface> Interfaces);

/// <summary>
/// Renders <see cref="OspfSettings"/> as the daemon's own configuration text: the file tunnel-router owns
/// (never the admin's main file). Pure: the same settings give the same bytes, so "did it change" is a
/// string comparison and plan can show a diff.
/// </summary>
public static class OspfConfig
{
    /// <summary>The name of BIRD's protocol blocks in the owned file; tunnel_router6 for OSPFv3.</summary>
    public const string BirdProtocol = "tunnel_router";

    public static string Render(OspfSettings s, string policySource) =>
        s.Daemon == RoutingDaemonKind.Bird ? RenderBird(s, policySource) : RenderFrr(s, policySource);

    static string Header(char comment, string policySource, string include) =>
        $"{comment} Written by tunnel-router from {policySource}: do not edit, the next apply rewrites it.\n" +
        $"{comment} {include}\n";

    /// <summary>
    /// BIRD 2: one <c>protocol ospf v2</c> (and v3) block. Routes are imported into the daemon's default
    /// table (the admin's <c>protocol kernel</c> exports them, at BIRD's metric 32) and nothing is exported
    /// into OSPF: stub interfaces announce the LANs.
    /// </summary>
    static string RenderBird(OspfSettings s, string policySource)
    {
        var b = new StringBuilder(Header('#', policySource, "Include it from bird.conf: include \"<this file>\";"));
        foreach (var (version, channel, suffix) in s.Ipv6 ? new[] { ("v2", "ipv4", ""), ("v3", "ipv6", "6") } : [("v2", "ipv4", "")])
        {
            b.Append($"protocol ospf {version} {BirdProtocol}{suffix} {{\n");
            b.Append($"\t{channel} {{ import all; export none; }};\n");
            b.Append($"\tarea {s.Area} {{\n");
            foreach (var i in s.Interfaces)
                b.Append(i.Stub
                    ? $"\t\tinterface \"{i.Name}\" {{ stub yes; }};\n"
                    : $"\t\tinterface \"{i.Name}\" {{ type ptp; cost {i.Cost}; hello {s.Hello}; dead {s.Dead}; }};\n");
            b.Append("\t};\n}\n");
        }
        return b.ToString();
    }

    /// <summary>
    /// FRR: interface stanzas only (ospfd's <c>ip ospf area</c> puts an interface in the area without a
    /// <c>network</c> statement), then an empty <c>router ospf</c> so ospfd runs. Applied with
    /// <c>vtysh -f</c>, which adds to the running configuration; what an earlier file had and this one
    /// lacks is taken back by <see cref="FrrWithdraw"/>.
    /// </summary>
    static string RenderFrr(OspfSettings s, string policySource)
    {
        var b = new StringBuilder(Header('!', policySource, "Applied with: vtysh -f <this file>"));
        foreach (var i in s.Interfaces)
        {
            b.Append($"interface {i.Name}\n");
            b.Append($" ip ospf area {s.Area}\n");
            if (s.Ipv6) b.Append($" ipv6 ospf6 area {s.Area}\n");
            if (i.Stub)
            {
                b.Append(" ip ospf passive\n");
                if (s.Ipv6) b.Append(" ipv6 ospf6 passive\n");
            }
            else
            {
                b.Append(" ip ospf network point-to-point\n");
                b.Append($" ip ospf cost {i.Cost}\n");
                b.Append($" ip ospf hello-interval {s.Hello}\n");
                b.Append($" ip ospf dead-interval {s.Dead}\n");
                if (s.Ipv6)
                {
                    b.Append(" ipv6 ospf6 network point-to-point\n");
                    b.Append($" ipv6 ospf6 cost {i.Cost}\n");
                    b.Append($" ipv6 ospf6 hello-interval {s.Hello}\n");
                    b.Append($" ipv6 ospf6 dead-interval {s.Dead}\n");
                }
            }
            b.Append("exit\n");
        }
        b.Append("router ospf\nexit\n");
        if (s.Ipv6) b.Append("router ospf6\nexit\n");
        return b.ToString();
    }

    /// <summary>The interface stanzas of an owned FRR file: name → its configuration lines, in order.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> FrrStanzas(string file)
    {
        var stanzas = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        List<string>? current = null;
        foreach (var line in file.Split('\n'))
        {
            if (line.StartsWith("interface ", StringComparison.Ordinal)) stanzas[line[10..].Trim()] = current = [];
            else if (line.StartsWith(' ') && current is not null) current.Add(line.Trim());
            else current = null;
        }
        return stanzas;
    }

    /// <summary>
    /// vtysh commands, applied before the new file, that take back what an earlier owned file configured
    /// and the new one does not: each such line negated (<c>no ip ospf cost 10</c>), for interfaces that
    /// left and for lines that changed. vtysh -f only adds, and FRR accepts every one of these lines with
    /// "no" in front. Null when nothing is to be taken back.
    /// </summary>
    public static string? FrrWithdraw(string? previous, string next)
    {
        if (previous is null) return null;
        var now = FrrStanzas(next);
        var b = new StringBuilder();
        foreach (var (name, lines) in FrrStanzas(previous))
        {
            var keep = now.TryGetValue(name, out var l) ? l.ToHashSet(StringComparer.Ordinal) : [];
            var gone = lines.Where(line => !keep.Contains(line)).ToList();
            if (gone.Count == 0) continue;
            b.Append($"interface {name}\n");
            foreach (var line in gone) b.Append($" no {line}\n");
            b.Append("exit\n");
        }
        return b.Length == 0 ? null : b.ToString();
    }
}
