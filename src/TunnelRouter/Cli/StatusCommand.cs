using System.Text.Json;
using TunnelRouter.Core;

namespace TunnelRouter.Cli;

/// <summary><c>status</c>: what TunnelRouter owns, part by part (routing, marks, tunnels ...).</summary>
public static class StatusCommand
{
    public static int Status(Context ctx)
    {
        var parts = PolicyParts.All(ctx);
        if (ctx.Args.Json)
        {
            using var stream = new MemoryStream();
            using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
            {
                w.WriteStartObject();
                foreach (var part in parts) part.WriteJson(ctx, w);
                w.WriteEndObject();
            }
            ctx.Out.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
            return App.Ok;
        }

        var text = new StringWriter();
        foreach (var part in parts) part.Status(ctx, text);
        ctx.Out.Write(text.GetStringBuilder().Length == 0 ? "tunnel-router owns nothing in the kernel.\n" : text.ToString());
        return App.Ok;
    }

    static (List<Route> Routes, List<Rule> Rules) Owned(Context ctx)
    {
        var state = ctx.Kernel.Read(StateQuery.All);
        var owned = ctx.Owned;
        return (
            state.Routes.Where(owned.Route).OrderBy(r => r.Table).ThenBy(r => r.Family).ThenBy(r => r.Destination.ToString()).ToList(),
            state.Rules.Where(owned.Rule).OrderBy(r => r.Priority).ThenBy(r => r.Family).ToList());
    }

    /// <summary>Owned routes table by table, then owned rules, as ip arguments with names.</summary>
    public static void WriteRouting(Context ctx, TextWriter o)
    {
        var (routes, rules) = Owned(ctx);
        var t = ctx.Names.Tables;
        var p = ctx.Names.Protocols;
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
    }

    public static void WriteRoutingJson(Context ctx, Utf8JsonWriter w)
    {
        var (routes, rules) = Owned(ctx);
        var t = ctx.Names.Tables;
        var p = ctx.Names.Protocols;
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
    }
}
