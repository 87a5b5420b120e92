using TunnelRouter.Cli;
using TunnelRouter.Core;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>What a mistyped or missing command answers: the usage, not the OpenVPN hook's complaint.</summary>
public class CommandLineSpecs
{
    static (int Code, string Stdout, string Stderr) Run(string[] argv, Dictionary<string, string>? env = null)
    {
        env ??= new Dictionary<string, string> { ["TUNNEL_ROUTER_CONFIG"] = "" };
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        var code = App.Run(argv, env, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Theory]
    [InlineData("aply", "unknown command 'aply'; did you mean 'apply'?")]
    [InlineData("statsu", "unknown command 'statsu'; did you mean 'status'?")]
    [InlineData("plna", "unknown command 'plna'; did you mean 'plan'?")]
    [InlineData("frobnicate", "unknown command 'frobnicate'")]
    public void An_unknown_command_is_named_with_the_closest_one_and_the_usage(string word, string expected)
    {
        var (code, _, stderr) = Run([word]);

        Assert.Equal(2, code);
        var lines = stderr.Split('\n');
        Assert.Equal($"tunnel-router: error: {expected}", lines[0]);
        Assert.StartsWith("Usage: tunnel-router COMMAND", lines[1]);
        Assert.DoesNotContain("script_type: is not set", stderr);
    }

    [Fact]
    public void A_bare_call_without_OpenVPNs_environment_prints_the_usage()
    {
        var (code, stdout, stderr) = Run([]);

        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.StartsWith("Usage: tunnel-router COMMAND", stderr);
    }

    [Fact]
    public void A_bare_call_with_OpenVPNs_environment_is_still_the_hook()
    {
        var env = new Dictionary<string, string> { ["TUNNEL_ROUTER_CONFIG"] = "", ["dev"] = "tun0" };

        var (code, _, stderr) = Run([], env);

        Assert.Equal(1, code);
        Assert.Contains("script_type: is not set; OpenVPN sets it for --up/--down", stderr);
    }

    [Fact]
    public void OpenVPNs_arguments_with_script_type_are_never_read_as_a_command()
    {
        // A device named like a command is a device: OpenVPN's six words are data.
        var env = new Dictionary<string, string> { ["TUNNEL_ROUTER_CONFIG"] = "", ["script_type"] = "up" };

        var args = CliArgs.Parse(["aply", "1500", "0", "10.8.0.1", "255.255.255.0", "init"],
            CliArgs.OpenVpnWords(["aply", "1500", "0", "10.8.0.1", "255.255.255.0", "init"], env));

        Assert.Null(args.Command);
        Assert.Equal("aply", args.Positional[0]);
    }

    [Theory]
    [InlineData("vnp", new[] { "vpn", "wan", "lan1" }, "vpn")]
    [InlineData("lokup", new[] { "lookup", "from", "to" }, "lookup")]
    [InlineData("Gatway", new[] { "Interface", "Table", "Gateway" }, "Gateway")]
    [InlineData("xyz", new[] { "vpn", "wan" }, null)]
    public void The_closest_known_word_is_suggested_only_when_it_reads_as_a_typo(string word, string[] known, string? expected) =>
        Assert.Equal(expected, Suggest.Closest(word, known));

    [Theory]
    [InlineData("flush", "--help")]
    [InlineData("flush", "--all", "-h")]
    [InlineData("apply", "--help")]
    [InlineData("--help", "watch")]
    [InlineData("up", "--help")]
    [InlineData("demo", "-h")]
    [InlineData("explain", "--to", "192.0.2.1", "--help")]
    public void A_command_with_help_is_help_and_never_the_command(params string[] argv)
    {
        Assert.Equal("help", CliArgs.Parse(argv).Command);
    }

    [Fact]
    public void A_command_with_version_is_the_version()
    {
        Assert.Equal("version", CliArgs.Parse(["apply", "--version"]).Command);
        Assert.Equal("help", CliArgs.Parse(["apply", "--version", "--help"]).Command);
    }
}
