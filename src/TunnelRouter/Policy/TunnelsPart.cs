using System.Text.Json;
using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Kernel;

namespace TunnelRouter.Cli;

/// <summary>
/// GRE tunnels (<c>Tunnels</c> in the policy): links TunnelRouter creates, marks with its alias, brings up
/// and addresses, and the routes over them. First in <see cref="PolicyParts.All"/>: the links must exist
/// before anything routes over them. Only links carrying the alias are ever changed or deleted.
/// </summary>
public sealed class TunnelsPart : IPolicyPart
{
    IReadOnlyList<TunnelConfigEntry>? _entries;

    public string Name => "tunnels";

    public void Validate(Context ctx) => _entries = Entries(ctx);

    public IReadOnlyList<Change> Plan(Context ctx)
    {
        var entries = _entries ?? Entries(ctx);
        var links = ctx.Kernel.ReadLinks();
        if (entries.Count == 0 && !links.Any(TunnelPlanner.IsOwned)) return [];

        // Before anything changes: a kernel without GRE is one line naming the module.
        var load = ctx.Args.Command == "apply" && !ctx.Args.DryRun;
        var modules = new KernelModules(new ProcessRunner());
        foreach (var e in entries)
            if (!links.Any(l => l.Name == e.Link.Name && l.Gre?.Mode == e.Link.Mode))
                modules.Require(e.Link.Mode.Module(), $"{e.Field} ({e.Link.Name}, {e.Link.Mode.Kind()})", load);

        var specs = entries.Select(e => new TunnelSpec(WithMtu(ctx, e, links), e.Addresses, e.Routes)).ToList();
        var routes = ctx.Kernel.Read(new StateQuery(null, Rules: false)).Routes;
        return TunnelPlanner.Plan(specs, links, routes, ctx.Protocol);
    }

    public IReadOnlyList<Change> Flush(Context ctx) => TunnelPlanner.Remove(ctx.Kernel.ReadLinks());

    public void Status(Context ctx, TextWriter o)
    {
        var owned = Owned(ctx);
        if (owned.Count == 0) return;
        o.WriteLine("tunnels:");
        foreach (var l in owned)
        {
            o.WriteLine($"  {l.Gre} {(l.Up ? "up" : "down")}");
            foreach (var a in l.Addresses.Where(a => !a.IsLinkLocal)) o.WriteLine($"    {a}");
        }
    }

    public void WriteJson(Context ctx, Utf8JsonWriter w)
    {
        w.WriteStartArray("tunnels");
        foreach (var l in Owned(ctx))
        {
            var g = l.Gre!;
            w.WriteStartObject();
            w.WriteString("name", g.Name);
            w.WriteString("mode", g.Mode.Kind());
            if (g.Local is not null) w.WriteString("local", g.Local.ToString());
            w.WriteString("remote", g.Remote.ToString());
            if (g.IKey is { } ik) w.WriteNumber("ikey", ik);
            if (g.OKey is { } ok) w.WriteNumber("okey", ok);
            w.WriteNumber("ttl", g.Ttl);
            w.WriteNumber("tos", g.Tos);
            w.WriteBoolean("pmtudisc", g.PMtuDisc);
            w.WriteNumber("mtu", g.Mtu);
            if (g.Underlay is not null) w.WriteString("underlay", g.Underlay);
            w.WriteBoolean("up", l.Up);
            w.WriteStartArray("addresses");
            foreach (var a in l.Addresses.Where(a => !a.IsLinkLocal)) w.WriteStringValue(a.ToString());
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    static List<Link> Owned(Context ctx) =>
        ctx.Kernel.ReadLinks().Where(TunnelPlanner.IsOwned).OrderBy(l => l.Name, StringComparer.Ordinal).ToList();

    static IReadOnlyList<TunnelConfigEntry> Entries(Context ctx)
    {
        var o = ctx.Options;
        // Tables as the routing part resolves them (host names, the policy's Tables, the hook's Table); this
        // part validates first, so it registers a policy table name itself.
        uint? Table(string name) =>
            ctx.Names.Tables.TryGetId(name, out var id) ? id
            : o.Tables.TryGetValue(name, out var fresh) ? ctx.Names.ResolveTable($"Tables.{name}", name, fresh)
            : name == o.Table ? ctx.Names.ResolveTable("Table", name, o.TableId)
            : null;
        var entries = TunnelConfig.Parse(o.Tunnels, ctx.Protocol, Table);

        // A route over a tunnel belongs to the tunnel (made and removed with it), not to the top-level Routes.
        for (var i = 0; i < o.Routes.Count; i++)
        {
            var words = o.Routes[i].Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            for (var w = 0; w + 1 < words.Length; w++)
                if (words[w] is "dev" or "oif" && entries.FirstOrDefault(e => e.Link.Name == words[w + 1]) is { } tunnel)
                    throw new InputException($"{ctx.ConfigPath ?? "configuration"}: Routes[{i}]",
                        $"goes over tunnel {tunnel.Link.Name}; list it in {tunnel.Field}.Routes, where it is made and removed with the tunnel");
        }
        return entries;
    }

    /// <summary>Which routes are this part's: ours (apply's protocol) on a tunnel of the policy or on a link
    /// TunnelRouter owns (a tunnel just removed from the policy). The routing part leaves those alone.</summary>
    public static Func<Route, bool> RoutesOverTunnels(Context ctx, IReadOnlyList<Route> current)
    {
        var names = ctx.Options.Tunnels.Select(t => t.Name).OfType<string>().ToHashSet(StringComparer.Ordinal);
        var protocol = ctx.Protocol;
        // Reading links costs a process with the ip backend: only when an owned route is on another device.
        if (current.Any(r => r.Protocol == protocol && r.Device is { } d && !names.Contains(d)))
            names.UnionWith(ctx.Kernel.ReadLinks().Where(TunnelPlanner.IsOwned).Select(l => l.Name));
        return r => r.Protocol == protocol && r.Device is { } dev && names.Contains(dev);
    }

    /// <summary>The policy's MTU, or the underlay's minus the encapsulation (stated in plan and --dry-run).</summary>
    static GreTunnel WithMtu(Context ctx, TunnelConfigEntry e, IReadOnlyList<Link> links)
    {
        var t = e.Link;
        if (t.Mtu != 0) return t;
        var underlay = t.Underlay ?? ctx.Kernel.RouteDevice(t.Remote)
            ?? throw new EnvironmentException(
                $"{e.Field}.Remote: no route to {t.Remote}, so the tunnel's underlay and MTU are unknown; add that route first, or set Underlay or Mtu");
        if (underlay == t.Name)
            throw new EnvironmentException($"{e.Field}.Remote: the route to {t.Remote} goes over the tunnel itself; set Underlay or Mtu");
        var link = links.FirstOrDefault(l => l.Name == underlay)
            ?? throw new EnvironmentException($"{e.Field}.Underlay: link '{underlay}' does not exist");
        var overhead = t.Mode.Overhead(t.OKey is not null);
        var mtu = (uint)Math.Max(68, (int)link.Mtu - overhead);
        var stated = ctx.Args.Command == "plan" || ctx.Args.DryRun ? Serilog.Events.LogEventLevel.Information : Serilog.Events.LogEventLevel.Debug;
        ctx.Log.Write(stated, "{Tunnel}: mtu {Mtu} = {Underlay} mtu {UnderlayMtu} - {Overhead} ({Mode}{Key})",
            t.Name, mtu, underlay, link.Mtu, overhead, t.Mode.Kind(), t.OKey is null ? "" : " with key");
        return t with { Mtu = mtu };
    }
}
