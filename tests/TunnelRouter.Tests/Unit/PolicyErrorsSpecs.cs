using TunnelRouter.Cli;
using TunnelRouter.Config;
using TunnelRouter.Host;
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
            // The second look reads this spec's own names, never the host's /etc/iproute2.
            var (options, path) = ConfigLoader.Load(env ?? [], overrides, Policy, deepCheck: (o, p) =>
            {
                o.Iproute2Dir = _dir;
                return PolicyParser.ErrorsOf(o, p);
            });
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

        Assert.Equal(3, errors.Count);
        Assert.StartsWith($"{Policy}: Rulse: unknown key; did you mean 'Rules'? (known: Table, TableId, ", errors[0]);
        Assert.Equal($"{Policy}: Uplinks[0].Gatway: unknown key; did you mean 'Gateway'? (known: Interface, Table, Address, Gateway, Gateway6, Priority, Name, Track)", errors[1]);
        // And what the same entry lacks besides, in the same run.
        Assert.Equal($"{Policy}: Uplinks[0].Table: is not set; expected a table name or number, e.g. \"lan1\"", errors[2]);
    }

    [Fact]
    public void A_marks_entry_with_an_IPv6_source_blames_the_source_not_an_unwritten_Family()
    {
        var errors = Errors("""{ "Marks": [ { "Chain": "output", "Source": "fd00::/64", "Destination": "10.0.0.0/8", "Mark": "0xf2" } ] }""");

        Assert.Equal([$"{Policy}: Marks[0].Destination: '10.0.0.0/8' is IPv4 but Source 'fd00::/64' is IPv6"], errors);
    }

    [Fact]
    public void Every_bad_key_of_one_section_is_reported_not_only_the_first()
    {
        var errors = Errors("""
            { "Tables": { "lan1": 10, "lan2": 20 },
              "Uplinks": [ { "Interface": "eth0", "Gatway": "192.168.1.1", "Tabel": "lan1" },
                           { "Interfce": "eth1", "Table": "lan2" } ],
              "Marks": [ { "Chain": "output", "Mark": "0xf2", "SourcePort": "80" } ] }
            """);

        Assert.Equal(
        [
            $"{Policy}: Marks[0].SourcePort: unknown key; did you mean 'SourcePorts'? (known: {string.Join(", ", MarkOptions.Keys)})",
            $"{Policy}: Uplinks[0].Gatway: unknown key; did you mean 'Gateway'? (known: Interface, Table, Address, Gateway, Gateway6, Priority, Name, Track)",
            $"{Policy}: Uplinks[0].Tabel: unknown key; did you mean 'Table'? (known: Interface, Table, Address, Gateway, Gateway6, Priority, Name, Track)",
            $"{Policy}: Uplinks[1].Interfce: unknown key; did you mean 'Interface'? (known: Interface, Table, Address, Gateway, Gateway6, Priority, Name, Track)",
        ], errors);
        // A misspelt key binds to nothing: that the key it was meant to be is then missing is not said again.
    }

    [Fact]
    public void Values_the_binder_would_stop_at_are_all_named_with_where_they_came_from()
    {
        var errors = Errors("""{ "TableId": "two hundred", "Tables": { "vpn": "x", "wan": 201 }, "Uplinks": [ { "Interface": "eth0", "Table": "wan", "Priority": "first" } ] }""",
            new Dictionary<string, string> { ["TUNNEL_ROUTER_POOLRULES"] = "yes" }, ("LockTimeoutSeconds", "-1"));

        Assert.Equal(
        [
            "command line: LockTimeoutSeconds: '-1' is not a valid value; expected a whole number from 0 to 4294967295",
            "TUNNEL_ROUTER_POOLRULES: PoolRules: 'yes' is not a valid value; expected true or false",
            $"{Policy}: TableId: 'two hundred' is not a valid value; expected a whole number from 0 to 4294967295",
            $"{Policy}: Tables.vpn: 'x' is not a valid value; expected a whole number from 0 to 4294967295",
            $"{Policy}: Uplinks[0].Priority: 'first' is not a valid value; expected a whole number from 0 to 4294967295",
        ], errors);
    }

    [Fact]
    public void Every_bad_tunnel_and_every_bad_key_of_a_tunnel_is_reported()
    {
        var errors = Errors("""
            { "Tunnels": [ { "Name": "gre0", "Remote": "203.0.113.300", "Ttl": 300 },
                           { "Name": "gre_b", "Mode": "gre6", "Remote": "2001:db8::2" },
                           { "Name": "gre_c", "Remote": "203.0.113.3", "Addresses": [ "10.0.0.1/33", "10.0.1.1/30" ], "Routes": [ "10.9.0.0/16 via 10.0.1.x" ] } ] }
            """);

        Assert.Equal(
        [
            $"{Policy}: Tunnels[0].Name: 'gre0' is the kernel's own fallback device; choose another name",
            $"{Policy}: Tunnels[0].Remote: '203.0.113.300' is not a valid IPv4 address",
            $"{Policy}: Tunnels[0].Ttl: 300 is not a TTL (0 = inherit, 1 to 255)",
            $"{Policy}: Tunnels[1].Mode: 'gre6' is not a GRE mode (gre, gretap, ip6gre, ip6gretap)",
        ], errors.Take(4));
        Assert.Equal(6, errors.Count);
        Assert.StartsWith($"{Policy}: Tunnels[2].Addresses[0]: ", errors[4]);
        Assert.StartsWith($"{Policy}: Tunnels[2].Routes[0]: ", errors[5]);
    }

    [Fact]
    public void A_shape_error_and_the_values_other_sections_get_wrong_come_in_one_run_without_a_second_word_on_the_first()
    {
        var errors = Errors("""
            { "Tables": { "vpn": 200 },
              "Rules": [ "from 10.10.10.0/24 lookup vpn", { "from": "10.20.0.0/16" }, "from 10.30.0.0/16 lookup vnp" ],
              "Uplinks": [ "eth0", { "Interface": "eth1", "Table": "lan9" } ],
              "Sysctls": { "kernel.panic": "1", "net.ipv4.ip_forward": { "value": 1 } },
              "FailClosed": [ "vnp" ] }
            """, new Dictionary<string, string> { ["TUNNEL_ROUTER_ROUTES__0"] = "default via 192.168.1.1 table vnp" });

        Assert.Equal(
        [
            $"{Policy}: Rules[1]: expected a line as a string, e.g. \"from 10.10.10.0/24 lookup vpn\"",
            $"{Policy}: Sysctls.net.ipv4.ip_forward: expected a value like \"1\", not an object; write keys dotted: \"net.ipv4.ip_forward\"",
            $"{Policy}: Uplinks[0]: expected an object like {{ \"Interface\": \"eth0\", \"Table\": \"lan1\" }}",
            $"{Policy}: Rules[2]: word 4 'vnp': is not a table defined in rt_tables or the policy's Tables; did you mean 'vpn'?",
            "TUNNEL_ROUTER_ROUTES__0: Routes[0]: word 5 'vnp': is not a table defined in rt_tables or the policy's Tables; did you mean 'vpn'?",
            $"{Policy}: Uplinks[1].Table: 'lan9' is not a table defined in rt_tables or the policy's Tables; add it to Tables",
            $"{Policy}: Sysctls.kernel.panic: 'kernel.panic' is not a net.* sysctl; only network settings can be set (e.g. net.ipv4.ip_forward)",
            $"{Policy}: FailClosed[0]: 'vnp' is not a table defined in rt_tables or the policy's Tables; did you mean 'vpn'?",
        ], errors);
    }

    [Fact]
    public void The_command_line_prints_each_error_on_its_own_line_and_how_many()
    {
        File.WriteAllText(Policy, """{ "Tables": { "vpn": 200 }, "Rules": [ "from 10.0.0.0/8 lokup vpn", "from 10.1.0.0/16 lookup vnp" ] }""");
        // As install.sh ships a policy: root's, readable by everyone, so errors quote its words (a file not everyone may
        // read gets errors that never do: TrustBoundaryRound2Specs).
        File.SetUnixFileMode(Policy, (UnixFileMode)0b110_100_100);
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
