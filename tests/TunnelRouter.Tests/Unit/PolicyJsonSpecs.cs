using System.Text;
using TunnelRouter.Config;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>A policy file that is not JSON is one line: where (line, column) and what was expected instead of
/// what was found. These are the words a person reads; the framework's are resource keys in the binary.</summary>
public class PolicyJsonSpecs : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("tunnel-router-unit-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("{ \"Table\": \"vpn\",\n  \"Rules\": [ \"from 10.0.0.0/8 lookup vpn\"\n  \"Routes\": [] }",
        "line 3, column 3: expected ',' or ']', found '\"Routes\"'")]
    [InlineData("{ \"Table\": \"vpn\"\n  \"PoolRules\": true }", "line 2, column 3: expected ',' or '}', found '\"PoolRules\"'")]
    [InlineData("{ \"Table\" \"vpn\" }", "line 1, column 11: expected ':' after the key, found '\"vpn\"'")]
    [InlineData("{ \"Table\": nul }", "line 1, column 12: expected a value (\"text\", a number, true, false, null, [ ... ] or { ... }), found 'nul'")]
    [InlineData("{ \"Table\": vpn }", "line 1, column 12: expected a value (\"text\", a number, true, false, null, [ ... ] or { ... }), found 'vpn'")]
    [InlineData("{ Table: \"vpn\" }", "line 1, column 3: expected a key in double quotes or '}', found 'Table'")]
    [InlineData("{ \"Table\": \"vpn\", PoolRules: true }", "line 1, column 19: expected a key in double quotes or '}', found 'PoolRules'")]
    [InlineData("{ \"Rules\": [ \"a\", , \"b\" ] }", "line 1, column 19: expected a value (\"text\", a number, true, false, null, [ ... ] or { ... }) or ']', found ','")]
    [InlineData("{ \"Table\": \"vpn\" } }", "line 1, column 20: expected the end of the file, found '}'")]
    [InlineData("{ \"Rules\": [ \"from 10.0.0.0/8 lookup vpn\" ", "line 1, column 43: expected ',' or ']', found the end of the file")]
    [InlineData("{ \"Table\": \"vpn\n\" }", "line 1, column 16: a string is not closed on its line: expected '\"'")]
    [InlineData("{ \"Table\": \"v\\pn\" }", "line 1, column 14: a string has an invalid escape: expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX")]
    [InlineData("{ \"Table\": \"vpn\" /* comment }", "line 1, column 18: a comment is never closed: expected '*/'")]
    [InlineData("[ \"from 10.0.0.0/8 lookup vpn\" ]", "line 1, column 1: a policy is a JSON object: expected '{'")]
    [InlineData("", "line 1, column 1: expected '{', found the end of the file")]
    [InlineData("{ \"Table\": \"vpn\", \"table\": \"vpn2\" }", "line 1, column 19: the key 'table' appears twice in one object")]
    [InlineData("{ \"Tables\": { \"wän\": 10 x } }", "line 1, column 25: expected ',' or '}', found 'x'")]
    public void A_syntax_error_says_where_and_what_was_expected(string json, string expected)
    {
        Assert.Equal(expected, PolicyJson.Problem(Encoding.UTF8.GetBytes(json)));
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("// a comment\n{ \"Rules\": [ \"from 10.0.0.0/8 lookup vpn\", ], /* trailing commas are allowed */ }")]
    public void What_the_reader_takes_is_no_problem(string json)
    {
        Assert.Null(PolicyJson.Problem(Encoding.UTF8.GetBytes(json)));
    }

    [Fact]
    public void Loading_a_policy_with_a_syntax_error_names_the_file_line_column_and_what_was_expected()
    {
        var path = Path.Combine(_dir, "policy.json");
        File.WriteAllText(path, "{ \"Table\": \"vpn\"\n  \"PoolRules\": true }\n");

        var e = Assert.Throws<InputException>(() => ConfigLoader.Load(new Dictionary<string, string>(), [], path));

        Assert.Equal($"{path}: line 2, column 3: expected ',' or '}}', found '\"PoolRules\"'", e.Message);
    }

    [Fact]
    public void Flush_sets_a_policy_that_does_not_load_aside_with_one_warning_and_keeps_the_environment()
    {
        var path = Path.Combine(_dir, "policy.json");
        File.WriteAllText(path, "{ \"Protocol\": 150, }}");
        var warnings = new List<string>();

        var (options, used) = ConfigLoader.LoadOrSetAside(new Dictionary<string, string> { ["TUNNEL_ROUTER_HOOKPROTOCOL"] = "149" }, [],
            path, required: true, warnings.Add);

        Assert.Equal((147u, 149u, (string?)null), (options.Protocol, options.HookProtocol, used));
        Assert.Equal([$"{path}: line 1, column 21: expected the end of the file, found '}}'; the policy file is set aside: flush removes what carries protocol 147 or 149"], warnings);
    }

    [Fact]
    public void Flush_still_fails_on_a_bad_environment()
    {
        var path = Path.Combine(_dir, "policy.json");
        File.WriteAllText(path, "{}");

        var e = Assert.Throws<InputException>(() => ConfigLoader.LoadOrSetAside(new Dictionary<string, string> { ["TUNNEL_ROUTER_PROTOCOL"] = "x" }, [],
            path, required: true, _ => { }));

        Assert.StartsWith("TUNNEL_ROUTER_PROTOCOL: Protocol: 'x'", e.Message);
    }
}
