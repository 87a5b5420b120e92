using System.Diagnostics;
using System.Text.Json;

namespace TunnelRouter.Tests.Support;

/// <summary>Helpers of the hardening specs: policy files, many processes at once, kernel dumps to count.</summary>
public static class Hardening
{
    /// <summary>Writes a policy file into the namespace's state directory (root-owned, 0700: StrictModes
    /// accepts it) and returns its path.</summary>
    public static string WritePolicy(NetNs ns, object policyJsonText, string name = "policy.json")
    {
        var path = Path.Combine(ns.StateDir, name);
        File.WriteAllText(path, policyJsonText as string ?? JsonSerializer.Serialize(policyJsonText));
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        return path;
    }

    /// <summary>A policy file's text from routes and rules lines.</summary>
    public static string Policy(IEnumerable<string> routes, IEnumerable<string> rules, string tables = "\"wan\": 100") =>
        $$"""
        { "Tables": { {{tables}} },
          "Routes": [{{string.Join(",", routes.Select(r => JsonSerializer.Serialize(r)))}}],
          "Rules": [{{string.Join(",", rules.Select(r => JsonSerializer.Serialize(r)))}}] }
        """;

    /// <summary>Starts every command before waiting for any: as 64 OpenVPN instances fire their hooks.</summary>
    public static List<RunResult> RunAtOnce(NetNs ns, IReadOnlyList<(string[] Args, Dictionary<string, string> Env)> runs)
    {
        var processes = runs.Select(r =>
        {
            var env = new Dictionary<string, string>
            {
                ["TUNNEL_ROUTER_IPROUTE2DIR"] = Path.Combine(ns.StateDir, "iproute2"),
                ["TUNNEL_ROUTER_CONFIG"] = "", // no policy file: the host's is never read
                ["TUNNEL_ROUTER_LOCKFILE"] = Path.Combine(ns.StateDir, "lock"),
            };
            foreach (var (k, v) in r.Env) env[k] = v;
            var psi = new ProcessStartInfo("/usr/sbin/ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in (string[])["netns", "exec", ns.Name, Prerequisites.Binary, .. r.Args]) psi.ArgumentList.Add(a);
            psi.Environment.Clear();
            foreach (var (k, v) in env) psi.Environment[k] = v;
            var p = Process.Start(psi)!;
            return (p, Out: p.StandardOutput.ReadToEndAsync(), Err: p.StandardError.ReadToEndAsync());
        }).ToList();
        var results = new List<RunResult>();
        foreach (var (p, o, e) in processes)
        {
            if (!p.WaitForExit(120_000)) { p.Kill(true); throw new TimeoutException("a concurrent run did not finish in 120 s"); }
            p.WaitForExit();
            results.Add(new RunResult(p.ExitCode, o.Result, e.Result));
            p.Dispose();
        }
        return results;
    }

    /// <summary>Lines of "ip rule show" for both families, numeric.</summary>
    public static List<string> Rules(NetNs ns) => Lines(ns, "rule", "show");

    static List<string> Lines(NetNs ns, params string[] args) =>
    [
        .. ns.Ip(["-4", .. args]).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => "-4 " + l),
        .. ns.Ip(["-6", .. args]).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => "-6 " + l),
    ];

    /// <summary>Lines of every route of both families in every table.</summary>
    public static List<string> Routes(NetNs ns) => Lines(ns, "route", "show", "table", "all");

    public static void NoDuplicates(IEnumerable<string> lines)
    {
        var duplicates = lines.GroupBy(l => l).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        if (duplicates.Count > 0) throw new Xunit.Sdk.XunitException($"duplicates: {string.Join(" | ", duplicates)}");
    }

    /// <summary>A veth pair with the near end up and addressed: an uplink or a LAN a route can point at.</summary>
    public static void AddVeth(NetNs ns, string name, string? cidr = null)
    {
        ns.Ip("link", "add", name, "type", "veth", "peer", "name", name + "p");
        // No IPv6 link-local address: it would appear a moment later, in the middle of a before/after dump.
        ns.Ip("link", "set", "dev", name, "addrgenmode", "none");
        ns.Ip("link", "set", "dev", name + "p", "addrgenmode", "none");
        if (cidr is not null) ns.Ip("addr", "add", cidr, "dev", name);
        ns.Ip("link", "set", name, "up");
        ns.Ip("link", "set", name + "p", "up");
        // The carrier comes a moment after "up"; until then routes on the link read "linkdown", and a dump
        // taken before would differ from one taken after.
        // A ceiling for a loaded machine, not a time the carrier needs: a link still without it is an error, not a race.
        Eventually.True(() => ns.Ip("link", "show", "dev", name).Contains("LOWER_UP"), () => $"{name} has no carrier after 60 s", 60_000);
    }
}
