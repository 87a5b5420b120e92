using System.Text.Json;
using TunnelRouter.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace TunnelRouter.Tests.Guest;

/// <summary>The policies the guest scenarios read: seed 000's example from contrib/examples, and variants.</summary>
public abstract class GreGuest : IDisposable
{
    protected GreGuest(string scenario)
    {
        Work = Directory.CreateTempSubdirectory("tunnel-router-gre-").FullName;
        var examples = Path.Combine(GuestKernel.RepoRoot, "contrib", "examples");
        File.Copy(Path.Combine(examples, "site-to-site-gre.site-a.json"), Path.Combine(Work, "site-a.json"));
        File.Copy(Path.Combine(examples, "site-to-site-gre.site-b.json"), Path.Combine(Work, "site-b.json"));
        File.WriteAllText(Path.Combine(Work, "empty.json"), """{ "Tunnels": [] }""");
        File.WriteAllText(Path.Combine(Work, "site-a6.json"), Ip6Gre("2001:db8:113::1", "2001:db8:113::2", "1", "fd00:20::/64"));
        File.WriteAllText(Path.Combine(Work, "site-b6.json"), Ip6Gre("2001:db8:113::2", "2001:db8:113::1", "2", "fd00:10::/64"));
        File.WriteAllText(Path.Combine(Work, "mtu.json"), """
            { "Tunnels": [
              { "Name": "t_gre", "Mode": "gre", "Local": "198.51.100.1", "Remote": "198.51.100.10" },
              { "Name": "t_gretap", "Mode": "gretap", "Local": "198.51.100.1", "Remote": "198.51.100.11", "Key": "7" },
              { "Name": "t_ip6gre", "Mode": "ip6gre", "Local": "2001:db8:51::1", "Remote": "2001:db8:51::10" },
              { "Name": "t_ip6gretap", "Mode": "ip6gretap", "Local": "2001:db8:51::1", "Remote": "2001:db8:51::11", "Key": "7" }
            ] }
            """);
        Run = GuestKernel.Run(Path.Combine(GuestKernel.RepoRoot, "tests", "guest", scenario), Work);
    }

    static string Ip6Gre(string local, string remote, string host, string route) => $$"""
        { "Tunnels": [ {
            "Name": "gre6_black", "Mode": "ip6gre", "Local": "{{local}}", "Remote": "{{remote}}",
            "Addresses": [ "10.255.6.{{host}}/30", "fd00:6::{{host}}/64" ],
            "Routes": [ "{{route}}" ]
        } ] }
        """;

    public string Work { get; }
    public GuestRun Run { get; }

    public void Dispose()
    {
        try { Directory.Delete(Work, recursive: true); } catch (IOException) { }
    }
}

/// <summary>One guest for <see cref="GreSitesGuestSpecs"/>: tests/guest/gre-sites.sh.</summary>
public sealed class GreSitesGuest() : GreGuest("gre-sites.sh");

/// <summary>One guest for <see cref="GreIp6GuestSpecs"/>: tests/guest/gre-ip6.sh, booted in parallel with the other.</summary>
public sealed class GreIp6Guest() : GreGuest("gre-ip6.sh");

static class LinkJson
{
    public static JsonElement Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        Assert.Equal(1, doc.RootElement.GetArrayLength());
        return doc.RootElement[0].Clone();
    }

    public static string? InfoData(this JsonElement link, string name) =>
        link.GetProperty("linkinfo").GetProperty("info_data").TryGetProperty(name, out var v) ? v.ToString() : null;

    public static string Kind(this JsonElement link) => link.GetProperty("linkinfo").GetProperty("info_kind").GetString()!;

    public static bool IsUp(this JsonElement link) => link.GetProperty("flags").EnumerateArray().Any(f => f.GetString() == "UP");

    /// <summary>The scenario ran to its end (exit 0) in the bed chosen; how long it took goes to the output. Called by the
    /// first spec of each guest class, whose own checks need the whole scenario.</summary>
    public static void ScenarioRanToTheEnd(GuestRun run, ITestOutputHelper output, string? why = null)
    {
        // Times are reported, never asserted: the bed (and how loaded the machine is) decides them.
        output.WriteLine($"guest bed: {run.Bed} ({why ?? GuestKernel.Why})");
        output.WriteLine($"{run.Bed} guest: ready (modules loaded) after {run.Ready!.Value.TotalSeconds:0.0} s, powered off after {run.Wall.TotalSeconds:0.0} s");
        foreach (var line in run.Console.Where(l => l.Contains(".uptime ", StringComparison.Ordinal))) output.WriteLine(line);
        Assert.Equal("0", run.One("scenario.rc"));
        Assert.Equal(run.Bed.ToString().ToLowerInvariant(), run.One("bed").Split(' ')[0]);
    }
}

/// <summary>Seed 000 in a guest kernel (UML or QEMU): two sites, one GRE tunnel, created, re-keyed, removed by policy.</summary>
[Collection("guest-sites")]
public class GreSitesGuestSpecs(GreSitesGuest guest, ITestOutputHelper output) : IClassFixture<GreSitesGuest>
{
    readonly GuestRun _run = guest.Run;

    [Fact]
    public void Seed_000_each_site_applies_its_policy_and_LAN_reaches_LAN_over_the_tunnel()
    {
        LinkJson.ScenarioRanToTheEnd(_run, output);
        Assert.NotEqual("0", _run.One("ping.before"));
        Assert.Equal(0, _run.Rc("apply1.a"));
        Assert.Equal(0, _run.Rc("apply1.b"));

        Assert.Equal("0", _run.One("ping1"));
        var link = LinkJson.Parse(_run.One("link1.a"));
        Assert.Equal("gre", link.Kind());
        Assert.Equal("203.0.113.2", link.InfoData("remote"));
        Assert.Equal("203.0.113.1", link.InfoData("local"));
        Assert.Null(link.InfoData("ikey"));
        Assert.Equal("tunnel-router", link.GetProperty("ifalias").GetString());
        Assert.Equal(1476, link.GetProperty("mtu").GetInt32());
        Assert.True(link.IsUp());
        Assert.Contains(link.GetProperty("addr_info").EnumerateArray(), a => a.GetProperty("local").GetString() == "10.255.0.1");
        Assert.StartsWith("192.168.20.0/24 dev gre_black proto 147", _run.One("route1.a"));
        Assert.StartsWith("192.168.10.0/24 dev gre_black proto 147", _run.One("route1.b"));
    }

    [Fact]
    public void Apply_prints_the_seeds_commands_with_the_ownership_mark_and_the_computed_MTU()
    {
        Assert.Equal(
        [
            "[#] ip link add gre_black mtu 1476 type gre remote 203.0.113.2 local 203.0.113.1",
            "[#] ip link set gre_black alias tunnel-router",
            "[#] ip link set gre_black up",
            "[#] ip -4 address add 10.255.0.1/30 dev gre_black",
            "[#] ip -4 route add 192.168.20.0/24 dev gre_black table main proto tunnel-router",
        ], _run.All("apply1.a.out"));

        Assert.Equal(2, _run.Rc("plan1.a"));
        Assert.Contains("gre_black: mtu 1476 = inet0 mtu 1500 - 24 (gre)", _run.Out("plan1.a"));
        Assert.Contains("ip link add gre_black mtu 1476 type gre remote 203.0.113.2 local 203.0.113.1", _run.Out("plan1.a"));
    }

    [Fact]
    public void A_second_apply_changes_nothing_and_plan_says_so()
    {
        Assert.Equal(0, _run.Rc("apply2.a"));
        Assert.DoesNotContain("[#]", _run.Out("apply2.a"));
        Assert.Equal(0, _run.Rc("plan2.a"));
    }

    [Fact]
    public void Status_shows_the_owned_tunnel_its_addresses_and_its_route()
    {
        var status = _run.Out("status.a");
        Assert.Contains("tunnels:\n  gre_black gre remote 203.0.113.2 local 203.0.113.1 mtu 1476 up\n    10.255.0.1/30", status);
        Assert.Contains("192.168.20.0/24 dev gre_black table main proto tunnel-router", status);
        Assert.DoesNotContain("gre_hand", status);

        using var json = JsonDocument.Parse(_run.Out("statusjson.a"));
        var tunnel = Assert.Single(json.RootElement.GetProperty("tunnels").EnumerateArray());
        Assert.Equal("gre_black", tunnel.GetProperty("name").GetString());
        Assert.Equal(1476, tunnel.GetProperty("mtu").GetInt32());
        Assert.Equal("10.255.0.1/30", Assert.Single(tunnel.GetProperty("addresses").EnumerateArray()).GetString());
    }

    [Fact]
    public void A_dry_run_prints_the_changes_and_makes_none()
    {
        Assert.Equal(0, _run.Rc("dry.a"));
        Assert.Contains("[#] ip link del gre_black", _run.Out("dry.a"));
        Assert.Contains("[#] ip link add gre_black mtu 1472 type gre remote 203.0.113.2 local 203.0.113.1 ikey 1001 okey 1001", _run.Out("dry.a"));
        Assert.Equal(_run.One("index.before"), _run.One("index.dry"));
        Assert.Null(LinkJson.Parse(_run.One("link.dry.a")).InfoData("ikey"));
    }

    [Fact]
    public void A_new_key_on_both_ends_keeps_traffic_flowing_recreated_when_the_key_appears_changed_in_place_after()
    {
        // Keyless → keyed: iproute2 cannot add a key to a link, so the link is recreated (a new ifindex).
        Assert.Equal(0, _run.Rc("key1.a"));
        Assert.Equal(0, _run.Rc("key1.b"));
        Assert.NotEqual(_run.One("index.before"), _run.One("index.key1"));
        Assert.Equal("0", _run.One("ping.key1"));
        var key1 = LinkJson.Parse(_run.One("link.key1.a"));
        Assert.Equal("0.0.3.233", key1.InfoData("ikey")); // 1001
        Assert.Equal("0.0.3.233", key1.InfoData("okey"));
        Assert.Equal(1472, key1.GetProperty("mtu").GetInt32()); // 1500 - 24 - 4 for the key
        Assert.Contains("ikey 0.0.3.233 okey 0.0.3.233", _run.One("iplink.key1.a"));

        // Key → other key: changed in place (same ifindex); while only one end has it, nothing passes.
        Assert.Equal(0, _run.Rc("key2.a"));
        Assert.Contains("[#] ip link set gre_black mtu 1472 type gre remote 203.0.113.2 local 203.0.113.1 ikey 1002 okey 1002", _run.Out("key2.a"));
        Assert.NotEqual("0", _run.One("ping.halfway"));
        Assert.Equal(0, _run.Rc("key2.b"));
        Assert.Equal(_run.One("index.key1"), _run.One("index.key2"));
        Assert.Equal("0", _run.One("ping.key2"));
        Assert.Equal("0.0.3.234", LinkJson.Parse(_run.One("link.key2.a")).InfoData("ikey"));
    }

    [Fact]
    public void A_link_with_the_tunnels_name_that_tunnel_router_did_not_make_is_a_one_line_conflict_and_nothing_changes()
    {
        Assert.Equal(1, _run.Rc("conflict.b"));
        var error = Assert.Single(_run.All("conflict.b.out"));
        Assert.StartsWith("tunnel-router: error: link gre_grey exists and was not created by tunnel-router", error);
        Assert.Equal("0", _run.One("conflict.unchanged"));
    }

    [Fact]
    public void A_tunnel_removed_from_the_policy_is_deleted_while_a_hand_made_GRE_link_survives()
    {
        Assert.Equal(0, _run.Rc("remove.a"));
        Assert.Contains("[#] ip link del gre_black", _run.Out("remove.a"));
        Assert.NotEqual("0", _run.One("removed.gre_black"));
        Assert.Equal("0", _run.One("removed.gre_hand"));
        Assert.Equal("", _run.One("removed.route"));

        Assert.Equal(0, _run.Rc("flush.b"));
        Assert.NotEqual("0", _run.One("flushed.gre_black"));
        Assert.Equal("0", _run.One("flushed.gre_grey"));
    }
}

/// <summary>ip6gre between IPv6 underlay addresses, and the computed MTU of every mode, in a guest kernel (UML or QEMU).</summary>
[Collection("guest-ip6")]
public class GreIp6GuestSpecs(GreIp6Guest guest, ITestOutputHelper output) : IClassFixture<GreIp6Guest>
{
    readonly GuestRun _run = guest.Run;

    [Fact]
    public void Ip6gre_between_IPv6_underlay_addresses_carries_IPv6_and_IPv4()
    {
        LinkJson.ScenarioRanToTheEnd(_run, output);
        Assert.Equal(0, _run.Rc("apply6.a"));
        Assert.Equal(0, _run.Rc("apply6.b"));
        var link = LinkJson.Parse(_run.One("link6.a"));
        Assert.Equal("ip6gre", link.Kind());
        Assert.Equal("2001:db8:113::2", link.InfoData("remote"));
        Assert.Equal(1448, link.GetProperty("mtu").GetInt32()); // 1500 - 40 - 4 - 8 (encapsulation limit option)
        Assert.Equal("0", _run.One("ping6.lan"));
        Assert.Equal("0", _run.One("ping6.inner4"));
        Assert.DoesNotContain("[#]", _run.Out("again6.a"));
    }

    [Theory]
    [InlineData("gre", 1400 - 24)]
    [InlineData("gretap", 1400 - 24 - 4 - 14)]
    [InlineData("ip6gre", 1400 - 52)]
    [InlineData("ip6gretap", 1400 - 52 - 4 - 14)]
    public void The_MTU_tunnel_router_computes_is_the_one_the_kernel_picks_itself(string mode, int expected)
    {
        Assert.Equal(0, _run.Rc("mtu.apply"));
        var (ours, kernels) = (_run.One($"mtu.{mode}").Split(' ')[0], _run.One($"mtu.{mode}").Split(' ')[1]);

        Assert.Equal(kernels, ours);
        Assert.Equal(expected.ToString(), ours);
    }
}
