using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.Support.TunnelRouterProcess;

namespace TunnelRouter.Tests.Kernel;

/// <summary>What the published binary prints is words: its framework messages are resource keys
/// ("Error_JSONParseError"), so every message a person can see is checked here, on the binary.</summary>
[BackendIndependent]
public class ReadableMessageSpecs
{
    const string Broken = "{ \"Table\": \"vpn\",\n  \"Rules\": [ \"from 10.10.10.0/24 lookup vpn\"\n  \"Routes\": [] }\n";

    static string WritePolicy(NetNs ns, string json)
    {
        var path = Path.Combine(ns.StateDir, "policy.json");
        File.WriteAllText(path, json);
        return path;
    }

    [Theory]
    [InlineData("up")]
    [InlineData("apply")]
    [InlineData("plan")]
    public void A_JSON_syntax_error_names_the_file_line_column_and_what_was_expected(string command)
    {
        using var ns = new NetNs();
        ns.AddTun("tun0", "10.10.10.1/24");
        var policy = WritePolicy(ns, Broken);
        var env = SubnetEnv("tun0", "10.10.10.1", "255.255.255.0");
        env["TUNNEL_ROUTER_CONFIG"] = policy;

        var run = Run(ns, [command], env);

        Assert.Equal((1, $"tunnel-router: error: {policy}: line 3, column 3: expected ',' or ']', found '\"Routes\"'\n"),
            (run.ExitCode, run.Stderr));
    }

    [Fact]
    public void Flush_works_with_a_policy_that_does_not_parse_and_says_so_once()
    {
        using var ns = new NetNs();
        ns.Ip("route", "add", "10.99.0.0/24", "dev", "lo", "table", "200", "proto", "147");
        ns.Ip("route", "add", "10.98.0.0/24", "dev", "lo", "table", "200", "proto", "static");
        var policy = WritePolicy(ns, Broken);

        var run = Run(ns, ["flush", "--config", policy]);

        Assert.Equal(0, run.ExitCode);
        Assert.StartsWith($"tunnel-router: warning: {policy}: line 3, column 3: expected ',' or ']', found '\"Routes\"'; " +
            "the policy file is set aside: flush removes what carries protocol 147 or 148\n", run.Stderr);
        Assert.Single(run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.Contains("warning"));
        Assert.Equal("10.98.0.0/24 dev lo proto static scope link", ns.Ip("route", "show", "table", "200").Trim());
    }

    [Theory]
    [InlineData("[ \"from 10.10.10.0/24 lookup vpn\" ]", "line 1, column 1: a policy is a JSON object: expected '{'")]
    [InlineData("{ \"Table\": \"vpn\", \"table\": \"vpn2\" }", "line 1, column 19: the key 'table' appears twice in one object")]
    [InlineData("{ \"TableId\": \"two hundred\" }", "TableId: 'two hundred' is not a valid value; expected a whole number from 0 to 4294967295")]
    public void Other_policy_errors_are_words(string json, string expected)
    {
        using var ns = new NetNs();
        var policy = WritePolicy(ns, json);

        var run = Run(ns, ["plan", "--config", policy]);

        Assert.Equal((1, $"tunnel-router: error: {policy}: {expected}\n"), (run.ExitCode, run.Stderr));
    }

    [Fact]
    public void Every_mistake_of_every_section_comes_in_one_run_each_with_its_origin_and_nothing_changes()
    {
        using var ns = new NetNs();
        Hardening.AddVeth(ns, "wan", "192.168.1.2/24");
        var policy = WritePolicy(ns, """
            { "Tables": { "vpn": 200 },
              "Routes": [ "default via 192.168.1.1 dev wan table vpn", { "via": "192.168.1.1" } ],
              "Uplinks": [ { "Interface": "wan", "Table": "vpn", "Gatway": "192.168.1.1", "Priority": "first" } ],
              "Tunnels": [ { "Name": "gre_a", "Remote": "203.0.113.300" }, { "Name": "gre_b", "Mode": "gre6", "Remote": "203.0.113.2" } ] }
            """);
        var before = ns.Dump();

        var run = Run(ns, ["apply", "--config", policy, "Tunnels:1:Ttl=300"], new Dictionary<string, string> { ["TUNNEL_ROUTER_RULES__0"] = "from 10.0.0.0/8 lookup vnp" });

        Assert.Equal(1, run.ExitCode);
        Assert.Equal(
        [
            $"tunnel-router: error: {policy}: Routes[1]: expected a line as a string, e.g. \"default via 192.168.1.1 table vpn\"",
            $"tunnel-router: error: {policy}: Uplinks[0].Gatway: unknown key; did you mean 'Gateway'? (known: Interface, Table, Address, Gateway, Gateway6, Priority, Name, Track)",
            $"tunnel-router: error: {policy}: Uplinks[0].Priority: 'first' is not a valid value; expected a whole number from 0 to 4294967295",
            $"tunnel-router: error: {policy}: Tunnels[0].Remote: '203.0.113.300' is not a valid IPv4 address",
            $"tunnel-router: error: {policy}: Tunnels[1].Mode: 'gre6' is not a GRE mode (gre, gretap, ip6gre, ip6gretap)",
            "tunnel-router: error: command line: Tunnels[1].Ttl: 300 is not a TTL (0 = inherit, 1 to 255)",
            "tunnel-router: error: TUNNEL_ROUTER_RULES__0: Rules[0]: word 4 'vnp': is not a table defined in rt_tables or the policy's Tables; did you mean 'vpn'?",
            "tunnel-router: 7 errors; nothing was changed",
        ], run.Stderr.TrimEnd('\n').Split('\n'));
        Assert.Equal(before, ns.Dump());
        Assert.False(File.Exists(Path.Combine(ns.StateDir, "iproute2", "rt_tables.d", "tunnel-router.conf")));
    }

    [Fact]
    public void A_policy_path_that_is_a_directory_is_one_line()
    {
        using var ns = new NetNs();

        var run = Run(ns, ["plan", "--config", ns.StateDir]);

        Assert.Equal((1, $"tunnel-router: error: {ns.StateDir}: is a directory, not the policy file\n"), (run.ExitCode, run.Stderr));
    }

    [Fact]
    public void A_lock_directory_that_cannot_be_made_is_one_line()
    {
        using var ns = new NetNs();

        var run = Run(ns, ["apply"], new Dictionary<string, string> { ["TUNNEL_ROUTER_LOCKFILE"] = "/proc/tunnel-router/lock" });

        Assert.Equal((1, "tunnel-router: error: cannot create the lock file's directory /proc/tunnel-router: no such file or directory\n"),
            (run.ExitCode, run.Stderr));
    }

    [Fact]
    public void A_log_file_that_takes_no_writes_is_a_warning_not_a_crash()
    {
        using var ns = new NetNs();

        // apply: the reading commands open no log at all (issue 22).
        var run = Run(ns, ["apply", "--log-file", "/proc/version"]);

        Assert.Equal(0, run.ExitCode);
        Assert.Contains("tunnel-router: warning: log file /proc/version: ", run.Stderr);
        Assert.Single(run.Stderr.Split('\n'), l => l.Contains("log file", StringComparison.Ordinal));
        Assert.DoesNotContain("Error_", run.Stderr);
    }
}
