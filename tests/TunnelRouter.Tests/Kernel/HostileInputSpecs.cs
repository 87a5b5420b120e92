using System.Diagnostics;
using System.Text;
using System.Text.Json;
using TunnelRouter.Tests.Support;
using Xunit;
using Xunit.Abstractions;
using static TunnelRouter.Tests.Support.Hardening;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary>
/// The hostile-input corpus (Corpus/openvpn-env.txt, Corpus/policies.txt) against the published binary, all
/// in one namespace: every case fails with exit ≠ 0 and one line naming the field, and the full kernel dump
/// (routes of every table, rules, links) is the same after it as before.
/// </summary>
// Once, not per backend: nothing here may reach the kernel, and a per-backend run would set
// TUNNEL_ROUTER_BACKEND, which overrides the corpus's own hostile "Backend" values.
[BackendIndependent]
public class HostileInputSpecs(ITestOutputHelper output)
{
    public sealed record Case(string Source, int Number, string Field, Func<NetNs, RunResult> Run)
    {
        public override string ToString() => $"{Source} #{Number} ({Field})";
    }

    static string CorpusDir
    {
        get
        {
            // The data lives next to the tests in the source tree; walk up from the build output to it.
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "tests", "TunnelRouter.Tests", "Corpus");
                if (Directory.Exists(candidate)) return candidate;
                candidate = Path.Combine(dir.FullName, "Corpus");
                if (File.Exists(Path.Combine(candidate, "policies.txt"))) return candidate;
            }
            throw new DirectoryNotFoundException("tests/TunnelRouter.Tests/Corpus not found above " + AppContext.BaseDirectory);
        }
    }

    static Dictionary<string, string> BaseEnv(bool net30)
    {
        var env = SubnetEnv("tun0", "10.10.10.1", "255.255.255.0", "fd00:4242:4242:4242::1");
        env["TUNNEL_ROUTER_POOLRULES"] = "true";
        if (net30)
        {
            env.Remove("ifconfig_netmask");
            env["ifconfig_remote"] = "10.10.10.2";
            env["route_vpn_gateway"] = "10.10.10.2";
            env["route_network_1"] = "10.10.10.0";
            env["route_netmask_1"] = "255.255.255.0";
            env["route_gateway_1"] = "10.10.10.2";
        }
        return env;
    }

    public static List<Case> EnvironmentCases()
    {
        var cases = new List<Case>();
        var n = 0;
        foreach (var line in File.ReadLines(Path.Combine(CorpusDir, "openvpn-env.txt"), Encoding.UTF8))
        {
            if (line.StartsWith('#') || line.Length == 0) continue;
            var tab = line.IndexOf('\t');
            var field = line[..tab];
            using var doc = JsonDocument.Parse(line[(tab + 1)..]);
            var root = doc.RootElement;
            var env = BaseEnv(root.TryGetProperty("$mode", out var mode) && mode.GetString() == "net30");
            string[] args = ["up"];
            foreach (var p in root.EnumerateObject())
            {
                if (p.Name == "$mode") continue;
                if (p.Name == "$long") { env[p.Value.GetString()!] = new string('1', 100_000); continue; }
                if (p.Name == "$args") { args = p.Value.EnumerateArray().Select(a => a.GetString()!).ToArray(); continue; }
                if (p.Value.ValueKind == JsonValueKind.Null) env.Remove(p.Name);
                else env[p.Name] = p.Value.GetString()!;
            }
            cases.Add(new Case("openvpn-env.txt", ++n, field, ns => Run(ns, args, env)));
        }
        return cases;
    }

    public static List<Case> PolicyCases()
    {
        var cases = new List<Case>();
        var text = File.ReadAllText(Path.Combine(CorpusDir, "policies.txt"), Encoding.UTF8);
        var n = 0;
        var blocks = text.Split("\n### ").Skip(1).ToList();
        foreach (var block in blocks)
        {
            var nl = block.IndexOf('\n');
            var field = block[..nl];
            var policy = block[(nl + 1)..];
            if (n == blocks.Count - 1 && policy.EndsWith('\n')) policy = policy[..^1];
            // "FIELD @up": a key only the hook reads, so the case runs as OpenVPN's up with this policy.
            if (field.EndsWith(" @up"))
                cases.Add(new Case("policies.txt", ++n, field[..^4], ns => Run(ns, ["up", "--config", WritePolicy(ns, policy)], BaseEnv(net30: false))));
            else
                cases.Add(new Case("policies.txt", ++n, field, ns => Run(ns, ["apply", "--config", WritePolicy(ns, policy)])));
        }
        return cases;
    }

    [Fact]
    public void The_corpus_holds_at_least_200_hostile_inputs()
    {
        var env = EnvironmentCases().Count;
        var policies = PolicyCases().Count;

        Assert.True(env + policies >= 200, $"{env} + {policies} cases");
        Assert.True(env >= 100 && policies >= 100, $"{env} environments, {policies} policies");
    }

    [Fact]
    public void Every_hostile_input_fails_with_one_line_naming_the_field_and_changes_nothing()
    {
        using var ns = new NetNs();
        ns.Exec("/usr/sbin/sysctl", ["-qw", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0"]).ShouldSucceed();
        ns.AddTun("tun0", "10.10.10.1/24", "fd00:4242:4242:4242::1/64");
        AddVeth(ns, "wan", "192.168.1.2/24");
        ns.Ip("route", "add", "default", "via", "192.168.1.1");
        ns.Ip("route", "add", "192.0.2.0/24", "dev", "tun0", "table", "200");
        ns.Ip("rule", "add", "from", "10.10.10.0/24", "lookup", "100", "pref", "2000");
        Thread.Sleep(50);
        var before = ns.Dump();
        var cases = EnvironmentCases().Concat(PolicyCases()).ToList();

        var failures = new List<string>();
        var clock = Stopwatch.StartNew();
        foreach (var c in cases)
        {
            var run = c.Run(ns);
            var lines = run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            var problem =
                run.ExitCode == 0 ? "exit 0"
                : lines.Length != 1 ? $"{lines.Length} lines on stderr"
                : !lines[0].StartsWith("tunnel-router: error: ") ? "not a tunnel-router error line"
                : !lines[0].Contains(c.Field, StringComparison.OrdinalIgnoreCase) ? "the error does not name the field"
                : null;
            // A failed run writes nothing either: no table or protocol names.
            var names = Path.Combine(ns.StateDir, "iproute2");
            if (Directory.Exists(names))
            {
                problem = (problem is null ? "" : problem + "; ") + "names were written to " + string.Join(", ", Directory.GetFiles(names, "*", SearchOption.AllDirectories));
                Directory.Delete(names, recursive: true);
            }
            var after = ns.Dump();
            if (after != before)
            {
                problem = (problem is null ? "" : problem + "; ") + "the kernel changed";
                before = after;
            }
            if (problem is not null) failures.Add($"{c}: {problem}: {run.Stderr.Trim()}");
        }
        clock.Stop();

        output.WriteLine($"figure: {cases.Count} hostile inputs ({cases.Count(c => c.Source == "openvpn-env.txt")} OpenVPN environments, " +
                         $"{cases.Count(c => c.Source == "policies.txt")} policy files) run through the binary in one namespace, " +
                         $"each with a full kernel dump after it, in {clock.ElapsedMilliseconds} ms");
        Assert.True(failures.Count == 0, $"{failures.Count} of {cases.Count} cases failed:\n{string.Join("\n", failures)}");
    }
}
