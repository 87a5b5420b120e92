using System.Text.Json;
using TunnelRouter.Core;

namespace TunnelRouter.Cli;

/// <summary><c>status</c> lists what TunnelRouter owns, table by table; <c>flush</c> removes all of it.</summary>
public static class StatusCommand
{
    public static int Status(Context ctx)
    {
        var state = ctx.Kernel.Read(StateQuery.All);
        var owned = ctx.Owned;
        var routes = state.Routes.Where(owned.Route).OrderBy(r => r.Table).ThenBy(r => r.Family).ThenBy(r => r.Destination.ToString()).ToList();
        var rules = state.Rules.Where(owned.Rule).OrderBy(r => r.Priority).ThenBy(r => r.Family).ToList();
        var t = ctx.Names.Tables;
        var p = ctx.Names.Protocols;

        if (ctx.Args.Json)
        {
            using var w = new Utf8JsonWriter(Console.OpenStandardOutput(), new JsonWriterOptions { Indented = true });
            w.WriteStartObject();
            w.WriteStartArray("routes");
            foreach (var r in routes)
            {
                w.WriteStartObject();
                w.WriteString("family", r.Family.IsV6() ? "inet6" : "inet");
                w.WriteNumber("table", r.Table);
                w.WriteString("tableName", t.Format(r.Table));
                w.WriteString("route", IpCommand.RouteArgs(r, t, p));
                w.WriteString("owner", p.Format(r.Protocol));
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("rules");
            foreach (var r in rules)
            {
                w.WriteStartObject();
                w.WriteString("family", r.Family.IsV6() ? "inet6" : "inet");
                w.WriteNumber("priority", r.Priority);
                w.WriteString("rule", IpCommand.RuleArgs(r, t, p));
                w.WriteString("owner", p.Format(r.Protocol));
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
            w.Flush();
            Console.Out.WriteLine();
            return 0;
        }

        var o = ctx.Out;
        if (routes.Count == 0 && rules.Count == 0) { o.WriteLine("tunnel-router owns nothing in the kernel."); return 0; }
        foreach (var group in routes.GroupBy(r => r.Table))
        {
            o.WriteLine($"table {t.Format(group.Key)} ({group.Key}):");
            foreach (var r in group) o.WriteLine($"  {Net.FamilyFlag(r.Family)} {IpCommand.RouteArgs(r, t, p)}");
        }
        if (rules.Count > 0)
        {
            o.WriteLine("rules:");
            foreach (var r in rules) o.WriteLine($"  {Net.FamilyFlag(r.Family)} {IpCommand.RuleArgs(r, t, p)}");
        }
        return 0;
    }

    public static int Flush(Context ctx)
    {
        using (ctx.Lock())
        {
            var plan = Planner.Remove(ctx.Kernel.Read(StateQuery.All), ctx.Owned);
            ctx.Applier().Apply(plan, ctx.Args.DryRun);
        }
        return 0;
    }
}
