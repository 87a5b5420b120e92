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
    [InlineData("{ \"TableId\": \"two hundred\" }", "TableId: 'two hundred' is not a valid value")]
    public void Other_policy_errors_are_words(string json, string expected)
    {
        using var ns = new NetNs();
        var policy = WritePolicy(ns, json);

        var run = Run(ns, ["plan", "--config", policy]);

        Assert.Equal((1, $"tunnel-router: error: {policy}: {expected}\n"), (run.ExitCode, run.Stderr));
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

        var run = Run(ns, ["plan", "--log-file", "/proc/version"]);

        Assert.Equal(0, run.ExitCode);
        Assert.Contains("tunnel-router: warning: log file /proc/version: ", run.Stderr);
        Assert.Single(run.Stderr.Split('\n'), l => l.Contains("log file", StringComparison.Ordinal));
        Assert.DoesNotContain("Error_", run.Stderr);
    }
}
