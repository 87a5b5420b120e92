using TunnelRouter.Config;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>The routing sections of a policy file must have the shape they are read with; nothing binds to nothing silently.</summary>
public class ConfigSchemaSpecs : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("tunnel-router-unit-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string Write(string json)
    {
        var path = Path.Combine(_dir, "policy.json");
        File.WriteAllText(path, json);
        return path;
    }

    TunnelRouterOptions Load(string json) => ConfigLoader.Load(new Dictionary<string, string>(), [], Write(json)).Options;

    [Theory]
    [InlineData("""{ "Rules": "from 10.0.0.0/8 lookup main" }""", "Rules: expected a list of lines")]
    [InlineData("""{ "Rules": { "a": "from 10.0.0.0/8 lookup main" } }""", "Rules.a: expected a list of lines")]
    [InlineData("""{ "Rules": [ { "from": "10.0.0.0/8" } ] }""", "Rules[0]: expected a line as a string")]
    [InlineData("""{ "Routes": "default via 192.168.1.1" }""", "Routes: expected a list of lines")]
    [InlineData("""{ "Tables": 5 }""", "Tables: expected an object of names and numbers")]
    [InlineData("""{ "Tables": { "vpn": { "id": 200 } } }""", "Tables.vpn: expected a table number")]
    [InlineData("""{ "Uplinks": [ "eth0" ] }""", "Uplinks[0]: expected an object")]
    [InlineData("""{ "Uplinks": { "Interface": "eth0" } }""", "Uplinks[Interface]: expected an object")]
    [InlineData("""{ "Uplinks": [ { "Interface": "eth0", "Gatway": "192.168.1.1" } ] }""", "Uplinks[0].Gatway: unknown key; did you mean 'Gateway'? (known: Interface, Table, Address, Gateway, Gateway6, Priority, Name, Track)")]
    public void A_section_of_the_wrong_shape_is_an_error_naming_it(string json, string expected)
    {
        var e = Assert.Throws<InputException>(() => Load(json));

        Assert.StartsWith($"{Path.Combine(_dir, "policy.json")}: {expected}", e.Message);
    }

    [Fact]
    public void The_routing_sections_bind_as_written()
    {
        var o = Load("""
            // Comments are allowed in a policy file.
            {
              "Tables": { "lan1": 10 },
              "Rules": [ "from 10.0.0.0/8 lookup lan1" ],
              "Routes": [ "default via 192.168.1.1 table lan1" ],
              "Uplinks": [ { "Interface": "eth0", "Table": "lan1", "Address": "192.168.1.6/24", "Gateway": "192.168.1.1", "Priority": 3100 } ],
            }
            """);

        Assert.Equal(10u, o.Tables["lan1"]);
        Assert.Equal(["from 10.0.0.0/8 lookup lan1"], o.Rules);
        Assert.Equal(["default via 192.168.1.1 table lan1"], o.Routes);
        var u = Assert.Single(o.Uplinks);
        Assert.Equal(("eth0", "lan1", "192.168.1.6/24", "192.168.1.1", 3100u), (u.Interface, u.Table, u.Address, u.Gateway, u.Priority));
    }
}
