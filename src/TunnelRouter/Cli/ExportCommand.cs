using TunnelRouter.Core;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;

namespace TunnelRouter.Cli;

/// <summary>
/// <c>export --format networkd|ifcfg|uci|nmcli [--out DIR]</c>: the policy as the files a distribution persists
/// by itself (<see cref="Export"/>). Reads the kernel only to fill in what the policy leaves to it (uplinks'
/// addresses, the device a gateway is reached through); changes nothing. Without --out, every file is printed
/// after a "# PATH" line; what the format cannot express goes to stderr and into the output as a comment.
/// </summary>
public static class ExportCommand
{
    public static int Run(Context ctx)
    {
        string? format = null, outDir = null;
        var extra = ctx.Args.Extra;
        for (var i = 0; i < extra.Count; i++)
        {
            if (extra[i] is not ("--format" or "--out")) throw new InputException(extra[i], "unknown option for export (--format, --out)");
            if (i + 1 >= extra.Count) throw new InputException(extra[i], "needs a value");
            if (extra[i] == "--format") format = extra[++i]; else outDir = extra[++i];
        }
        if (format is null) throw new InputException("--format", "is required: networkd, ifcfg, uci or nmcli");

        var policy = Commands.ParsePolicy(ctx);
        var snapshot = ctx.ReadSnapshot(Reconciler.QueryFor(policy) with { Nft = false, NftRequired = false });
        var desired = Reconciler.DesiredRouting(policy, snapshot, []);
        var lookup = new RouteLookup(new ProcessRunner());
        // A persisted route names its device: the kernel's copy says which, else the way to its gateway.
        var routes = desired.Routes.Select(r => r.Device is null && r.Gateway is { } g && lookup.RouteTo(g) is { Routed: true, Device: { } dev }
            ? r with { Device = dev } : r).ToList();
        var tunnels = policy.Tunnels.Select(t => t.Link.Underlay is null && snapshot.RouteDevices.TryGetValue(t.Link.Remote, out var u)
            ? t with { Link = t.Link with { Underlay = u } } : t).ToList();
        var result = Export.Render(format, new ExportInput(routes, desired.Rules, tunnels, ctx.Options.Marks.Count, policy.Sysctls, policy.TableNames));

        foreach (var n in result.NotExpressible) ctx.Log.Warning("tunnel-router: warning: not expressible in {Format}: {Note}", format, n);
        if (outDir is null)
        {
            foreach (var f in result.Files) ctx.Out.Write($"# {f.Path}\n{f.Text}\n");
            foreach (var n in result.NotExpressible) ctx.Out.Write($"# not expressible in {format}: {n}\n");
            return App.Ok;
        }
        foreach (var f in result.Files)
        {
            var path = Path.Combine(outDir, f.Path.TrimStart('/').Replace(" (append)", "").Replace(' ', '-'));
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, f.Text);
            ctx.Log.Information("wrote {Path}", path);
        }
        return App.Ok;
    }
}
