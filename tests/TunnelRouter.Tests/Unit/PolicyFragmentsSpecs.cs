using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>conf.d/*.json fragments beside the policy file: merged in lexical order (lists appended, objects merged), a
/// value set in two files is an error naming both, and every error names the fragment and its own index of a line.</summary>
public class PolicyFragmentsSpecs : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("tunnel-router-unit-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string Policy => Path.Combine(_dir, "policy.json");

    string Fragment(string name, string json)
    {
        var dir = Path.Combine(_dir, PolicyFragments.DirectoryName);
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, name);
        File.WriteAllText(path, json);
        return path;
    }

    (TunnelRouterOptions Options, ParsedPolicy Policy) Load(string json)
    {
        File.WriteAllText(Policy, json);
        var (options, path) = ConfigLoader.Load(new Dictionary<string, string>(), [], Policy, deepCheck: (o, p) =>
        {
            o.Iproute2Dir = _dir;
            return PolicyParser.ErrorsOf(o, p);
        });
        options.Iproute2Dir = _dir;
        return (options, PolicyParser.Parse(options, Iproute2Files.Load(_dir), path));
    }

    List<string> Errors(string json)
    {
        try { Load(json); }
        catch (InputException e) { return [e.Message]; }
        catch (InputErrors e) { return e.Errors.Select(x => x.Message).ToList(); }
        throw new Xunit.Sdk.XunitException("the policy was accepted");
    }

    [Fact]
    public void Fragments_are_merged_in_lexical_order_lists_appended_and_objects_merged()
    {
        Fragment("20-b.json", """{ "Tables": { "b": 202 }, "Routes": [ "default via 192.168.1.1 table b" ] }""");
        Fragment("10-a.json", """{ "Tables": { "a": 201 }, "Routes": [ "default via 192.168.1.1 table a" ], "Sysctls": { "net.ipv4.ip_forward": "1" } }""");
        Fragment(".10-a.json.swp", "not json");
        Fragment("notes.txt", "not json");

        var (options, policy) = Load("""{ "Tables": { "wan": 200 }, "Routes": [ "default via 192.168.1.1 table wan" ] }""");

        Assert.Equal(["default via 192.168.1.1 table wan", "default via 192.168.1.1 table a", "default via 192.168.1.1 table b"], options.Routes);
        Assert.Equal([200u, 201u, 202u], policy.Routes.Select(r => r.Table));
        Assert.Equal(3, options.Tables.Count);
        Assert.Equal("1", options.Sysctls["net.ipv4.ip_forward"]);
    }

    [Fact]
    public void A_value_set_in_the_policy_and_a_fragment_is_an_error_naming_both_files()
    {
        var fragment = Fragment("10-a.json", """{ "Tables": { "WAN": 201 } }""");

        var errors = Errors("""{ "Tables": { "wan": 200 }, "Routes": [ "default via 192.168.1.1 table wan" ] }""");

        Assert.Equal([$"{fragment}: Tables.WAN: is set in {Policy} too; a value may be set in one file only (lists are appended, objects merged)"], errors);
    }

    [Fact]
    public void A_value_set_in_two_fragments_names_both_fragments()
    {
        var first = Fragment("10-a.json", """{ "PoolRules": true }""");
        var second = Fragment("20-b.json", """{ "poolrules": false }""");

        var errors = Errors("""{ "Tables": { "wan": 200 } }""");

        Assert.Equal([$"{second}: poolrules: is set in {first} too; a value may be set in one file only (lists are appended, objects merged)"], errors);
    }

    [Fact]
    public void An_error_in_a_fragments_line_names_the_fragment_and_its_own_index()
    {
        var fragment = Fragment("10-a.json", """{ "Routes": [ "default via 192.168.1.1 table wan", "default via 192.168.1.1 table nosuch" ] }""");

        var errors = Errors("""{ "Tables": { "wan": 200 }, "Routes": [ "10.0.0.0/8 via 192.168.1.1 table wan", "10.1.0.0/16 via 192.168.1.1 table wan" ] }""");

        var error = Assert.Single(errors);
        Assert.StartsWith($"{fragment}: Routes[1]: ", error);
        Assert.Contains("nosuch", error);
    }

    [Fact]
    public void An_error_in_a_fragments_entry_names_the_fragment_and_its_own_index()
    {
        var fragment = Fragment("10-a.json", """{ "Uplinks": [ { "Interface": "wan2", "Table": "wan", "Priority": "x" } ] }""");

        var errors = Errors("""{ "Tables": { "wan": 200 }, "Uplinks": [ { "Interface": "wan", "Table": "wan" } ] }""");

        Assert.Contains(errors, e => e.StartsWith($"{fragment}: Uplinks[0].Priority", StringComparison.Ordinal));
        Assert.DoesNotContain(errors, e => e.StartsWith(Policy, StringComparison.Ordinal));
    }

    [Fact]
    public void A_fragment_that_is_not_json_is_named_with_line_and_column()
    {
        var fragment = Fragment("10-a.json", "{ \"Routes\": [ \"x\" \"y\" ] }");

        var error = Assert.Single(Errors("""{ "Tables": { "wan": 200 } }"""));

        Assert.StartsWith($"{fragment}: line 1, column ", error);
    }

    [Fact]
    public void A_fragment_writable_by_others_is_refused_as_the_policy_would_be()
    {
        var fragment = Fragment("10-a.json", """{ "PoolRules": true }""");
        File.SetUnixFileMode(fragment, (UnixFileMode)0b110_110_110);

        var error = Assert.Single(Errors("""{ "Tables": { "wan": 200 } }"""));

        Assert.Equal($"{fragment}: the policy fragment is writable by group or others (mode 666); refusing it (chmod go-w {fragment})", error);
    }

    [Fact]
    public void A_fragment_directory_writable_by_others_is_refused()
    {
        Fragment("10-a.json", """{ "PoolRules": true }""");
        var dir = Path.Combine(_dir, PolicyFragments.DirectoryName);
        File.SetUnixFileMode(dir, (UnixFileMode)0b111_111_111);

        var error = Assert.Single(Errors("""{ "Tables": { "wan": 200 } }"""));

        Assert.StartsWith($"{dir}: the fragment directory is writable by group or others (mode 777); refusing it", error);
    }

    [Fact]
    public void Plan_reasons_name_the_fragment_and_line_that_want_each_object()
    {
        var fragment = Fragment("10-a.json", """{ "Tables": { "a": 201 }, "Rules": [ "from 10.9.0.0/16 lookup a" ], "Routes": [ "10.2.0.0/16 via 192.168.1.1 table a", "default via 192.168.1.1 table a" ] }""");
        var (options, policy) = Load("""{ "Tables": { "wan": 200 }, "Routes": [ "default via 192.168.1.1 table wan" ], "FailClosed": [ "wan" ] }""");
        var reasons = new PlanReasons(policy, options.Origins(), [], policy.TableNames, policy.ProtocolNames);

        var wanted = policy.Routes.Select(r => reasons.Of(new AddRoute(r))).ToList();
        var rule = reasons.Of(new AddRule(policy.Rules[0]));
        var killSwitch = reasons.Of(new AddRoute(policy.FailClosed[0]));
        var gone = reasons.Of(new DeleteRoute(policy.Routes[0]));

        Assert.Equal([(Policy, "Routes", 0), (fragment, "Routes", 0), (fragment, "Routes", 1)],
            wanted.Select(w => (w.File!, w.Section!, w.Line!.Value)));
        Assert.Equal($"{fragment}: Routes[1]", wanted[2].Wanter);
        Assert.Equal((fragment, "Rules", 0, "add", "rule", "tunnel-router"), (rule.File!, rule.Section!, rule.Line!.Value, rule.Operation, rule.Object, rule.Owner));
        Assert.Equal((Policy, "FailClosed", 0), (killSwitch.File!, killSwitch.Section!, killSwitch.Line!.Value));
        Assert.Equal(("delete", null, null), (gone.Operation, gone.Section, gone.Line));
    }
}
