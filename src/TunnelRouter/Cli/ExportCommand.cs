using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Host;
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
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        string? namesOption = null;
        var extra = ctx.Args.Extra;
        for (var i = 0; i < extra.Count; i++)
        {
            if (!CommandTable.Takes("export", extra[i]))
                throw new InputException(Net.Printable(extra[i]), "unknown option for export; see 'tunnel-router export --help'");
            if (i + 1 >= extra.Count) throw new InputException(extra[i], "needs a value");
            var option = extra[i];
            var value = extra[++i];
            switch (option)
            {
                case "--format": format = value; break;
                case "--out": outDir = value; break;
                default:
                    // --interface br-vpn=vpn (OpenWrt's logical interface), --connection eth1='Wired connection 1'.
                    var eq = value.IndexOf('=');
                    if (eq <= 0 || eq == value.Length - 1)
                        throw new InputException(option, $"'{Net.Printable(value)}': expected DEV=NAME, e.g. {(option == "--interface" ? "br-vpn=vpn" : "eth1='Wired connection 1'")}");
                    var device = InterfaceName.Validate(option, value[..eq]);
                    if (value[(eq + 1)..].Any(char.IsControl)) throw new InputException(option, $"'{Net.Printable(value)}': a name without control characters");
                    if (!names.TryAdd(device, value[(eq + 1)..])) throw new InputException(option, $"{device} is named twice");
                    namesOption ??= option;
                    if (namesOption != option) throw new InputException(option, "is for nmcli and --interface for uci: give the one of the format");
                    break;
            }
        }
        if (format is null) throw new InputException("--format", "is required: networkd, ifcfg, uci or nmcli");
        if (namesOption == "--interface" && format != "uci") throw new InputException("--interface", "names OpenWrt's logical interfaces: it goes with --format uci");
        if (namesOption == "--connection" && format != "nmcli") throw new InputException("--connection", "names NetworkManager's connections: it goes with --format nmcli");

        var policy = Commands.ParsePolicy(ctx);
        var snapshot = ctx.ReadSnapshot(Reconciler.QueryFor(policy) with { Nft = false, NftRequired = false });
        var desired = Reconciler.DesiredRouting(policy, snapshot, []);
        var lookup = new RouteLookup(new ProcessRunner());
        // A persisted route names its device: the kernel's copy says which, else the way to its gateway.
        var routes = desired.Routes.Select(r => r.Device is null && r.Gateway is { } g && lookup.RouteTo(g) is { Routed: true, Device: { } dev }
            ? r with { Device = dev } : r).ToList();
        // A tunnel as apply makes it: its MTU worked out from the underlay (OpenWrt would make it 1280 otherwise).
        var tunnels = policy.Tunnels.Select(t => t with { Link = Reconciler.LinkAsApplied(t, snapshot) })
            .Select(t => t.Link.Underlay is null && snapshot.RouteDevices.TryGetValue(t.Link.Remote, out var u)
                ? t with { Link = t.Link with { Underlay = u } } : t).ToList();
        var result = Export.Render(format, new ExportInput(routes, desired.Rules, tunnels, policy.MarkRules.Count, policy.Sysctls, policy.TableNames) { Names = names });

        foreach (var n in result.NotExpressible) ctx.Log.Warning("tunnel-router: warning: not expressible in {Format}: {Note}", format, n);
        foreach (var n in result.Notes) ctx.Log.Warning("tunnel-router: note: {Note}", n);
        if (outDir is null)
        {
            foreach (var f in result.Files) ctx.Out.Write($"# {f.Path}\n{f.Text}\n");
            foreach (var n in result.NotExpressible) ctx.Out.Write($"# not expressible in {format}: {n}\n");
            foreach (var n in result.Notes) ctx.Out.Write($"# note: {n}\n");
            return App.Ok;
        }
        // Root writes the tree: every directory on the way to it and in it root's alone (a user who owns one could put a
        // symlink at a file's name, or swap the directory for one), each file new under a random name (O_EXCL) and renamed
        // over whatever had its name, a symlink there included, never written through.
        var root = Path.GetFullPath(outDir);
        StrictModes.CheckDirectoryOf(Path.Combine(root, "file"), "export's directory");
        SafeDirectory.Ensure(root, SafeDirectory.Mode755, "the exported files");
        foreach (var f in result.Files)
        {
            var relative = f.Path.TrimStart('/').Replace(" (append)", "").Replace(' ', '-');
            var dir = root;
            foreach (var part in Path.GetDirectoryName(relative)!.Split('/', StringSplitOptions.RemoveEmptyEntries))
                SafeDirectory.Ensure(dir = Path.Combine(dir, part), SafeDirectory.Mode755, "the exported files");
            var path = Path.Combine(dir, Path.GetFileName(relative));
            OwnedFile.Replace(path, f.Text);
            ctx.Log.Information("wrote {Path}", path);
        }
        return App.Ok;
    }
}
