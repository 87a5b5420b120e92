using TunnelRouter.Cli;
using TunnelRouter.Config;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>Every mistake of a policy in one run, each naming where its value came from: the file, a
/// TUNNEL_ROUTER_* variable or a command-line Key=Value argument.</summary>
public class PolicyErrorsSpecs : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("tunnel-router-unit-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string Policy => Path.Combine(_dir, "policy.json");

    List<string> Errors(string json, Dictionary<string, string>? env = null, params (string Key, string Value)[] args)
    {
        File.WriteAllText(Policy, json);
        var overrides = args.Select(a => new KeyValuePair<string, string>(a.Key, a.Value)).ToList();
        try
        {
            var (options, path) = ConfigLoader.Load(env ?? [], overrides, Policy);
            PolicyParser.Parse(options, Iproute2Files.Load(_dir), path);
        }
        catch (InputException e) { return [e.Message]; }
        catch (InputErrors e) { return e.Errors.Select(x => x.Message).ToList(); }
        throw new Xunit.Sdk.XunitException("the policy was accepted");
    }

    [Fact]
    public void Every_mistake_of_a_policy_is_reported_in_one_run_with_file_key_and_word()
    {
        var errors = Errors("""
            { "Tables": { "vpn": 200 },
              "Rules": [ "from 10.10.10.0/24 lokup vpn", "from 10.20.0.0/16 lookup vpn" ],
              "Routes": [ "default via 192.168.1.1 table vpn", "default via 192.168.1.1 table vnp" ],
              "Marks": [ { "Chain": "output", "Source": "5.5.5.300", "Mark": "0xf2" } ] }
            """);

        Assert.Equal(
        [
            $"{Policy}: Rules[0]: word 3 'lokup': did you mean 'lookup'? expected a selector (not, from, to, fwmark, iif, oif, ipproto, sport, dport, uidrange, tos, suppress_prefixlength), an action (lookup, blackhole, unreachable, prohibit) or pref",
            $"{Policy}: Routes[1]: word 5 'vnp': is not a table defined in rt_tables or the policy's Tables; did you mean 'vpn'?",
            $"{Policy}: Marks[0].Source: '5.5.5.300' is not a valid IP address",
        ], errors);
    }

    [Fact]
    public void A_value_from_the_environment_is_blamed_on_its_variable_not_the_file()
    {
        var errors = Errors("""{ "Tables": { "vpn": 200 }, "Rules": [ "from 10.10.10.0/24 lookup vpn" ] }""",
            new Dictionary<string, string> { ["TUNNEL_ROUTER_RULES__0"] = "from 10.10.10.0/24 lookup vnp" });

        Assert.Equal(["TUNNEL_ROUTER_RULES__0: Rules[0]: word 4 'vnp': is not a table defined in rt_tables or the policy's Tables; did you mean 'vpn'?"], errors);
    }

    [Fact]
    public void A_value_from_a_command_line_argument_is_blamed_on_the_command_line()
    {
        var errors = Errors("""{ "Tables": { "lan1": 10 }, "Uplinks": [ { "Interface": "eth0", "Table": "lan1" } ] }""", null,
            ("Uplinks:0:Gateway", "192.168.1.300"));

        Assert.Single(errors);
        Assert.StartsWith("command line: Uplinks[0].Gateway: '192.168.1.300'", errors[0]);
    }

    [Fact]
    public void Shape_errors_of_several_sections_come_together_with_did_you_mean()
    {
        var errors = Errors("""{ "Rulse": [], "Uplinks": [ { "Interface": "eth0", "Gatway": "192.168.1.1" } ] }""");

        Assert.Equal(2, errors.Count);
        Assert.StartsWith($"{Policy}: Rulse: unknown key; did you mean 'Rules'? (known: Table, TableId, ", errors[0]);
        Assert.Equal($"{Policy}: Uplinks[0].Gatway: unknown key; did you mean 'Gateway'? (known: Interface, Table, Address, Gateway, Gateway6, Priority)", errors[1]);
    }

    [Fact]
    public void A_marks_entry_with_an_IPv6_source_blames_the_source_not_an_unwritten_Family()
    {
        var errors = Errors("""{ "Marks": [ { "Chain": "output", "Source": "fd00::/64", "Destination": "10.0.0.0/8", "Mark": "0xf2" } ] }""");

        Assert.Equal([$"{Policy}: Marks[0].Destination: '10.0.0.0/8' is IPv4 but Source 'fd00::/64' is IPv6"], errors);
    }

    [Fact]
    public void The_command_line_prints_each_error_on_its_own_line_and_how_many()
    {
        File.WriteAllText(Policy, """{ "Tables": { "vpn": 200 }, "Rules": [ "from 10.0.0.0/8 lokup vpn", "from 10.1.0.0/16 lookup vnp" ] }""");
        File.SetUnixFileMode(Policy, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var stderr = new StringWriter();

        var code = App.Run(["plan", "--config", Policy], new Dictionary<string, string> { ["TUNNEL_ROUTER_IPROUTE2DIR"] = _dir }, new StringWriter(), stderr);

        Assert.Equal(1, code);
        var lines = stderr.ToString().TrimEnd('\n').Split('\n');
        Assert.Equal(3, lines.Length);
        Assert.StartsWith($"tunnel-router: error: {Policy}: Rules[0]: word 3 'lokup': did you mean 'lookup'?", lines[0]);
        Assert.StartsWith($"tunnel-router: error: {Policy}: Rules[1]: word 4 'vnp':", lines[1]);
        Assert.Equal("tunnel-router: 2 errors; nothing was changed", lines[2]);
    }
}
