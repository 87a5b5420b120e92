using System.Net;
using System.Net.Sockets;
using TunnelRouter.Cli;
using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>Issue 16, the pure half: what a VPN server, a local user or a hostile value can make the tool do.</summary>
public class TrustBoundarySpecs
{
    static Dictionary<string, string> Net30Client() => new()
    {
        // As measured with OpenVPN 2.6.14: a client in net30, the server pushing the /1 pair and its pool.
        ["script_type"] = "up", ["dev"] = "tun0", ["ifconfig_local"] = "10.10.10.6", ["ifconfig_remote"] = "10.10.10.5",
        ["remote_1"] = "192.168.77.1", ["route_vpn_gateway"] = "10.10.10.5",
        ["route_network_1"] = "0.0.0.0", ["route_netmask_1"] = "128.0.0.0", ["route_gateway_1"] = "10.10.10.5",
        ["route_network_2"] = "128.0.0.0", ["route_netmask_2"] = "128.0.0.0", ["route_gateway_2"] = "10.10.10.5",
        ["route_network_3"] = "10.10.10.0", ["route_netmask_3"] = "255.255.255.0", ["route_gateway_3"] = "10.10.10.5",
        ["route_network_4"] = "0.0.0.0", ["route_netmask_4"] = "0.0.0.0", ["route_gateway_4"] = "10.10.10.5",
        ["route_ipv6_network_1"] = "::/1", ["route_ipv6_network_2"] = "8000::/1",
    };

    static readonly HookSettings Settings = new(200, 148, PoolRules: true, PoolRulePriority: 1000);

    static string[] Rules(KernelState s) => s.Rules.Select(r => r.ToString()).ToArray();

    [Fact]
    public void Routes_a_server_pushes_to_a_client_never_become_pool_rules_or_policy_routes()
    {
        var tunnel = OpenVpnTunnel.Parse(Net30Client(), [], null);

        var desired = HookPolicy.Desired(tunnel, Settings);

        Assert.Empty(desired.Rules);
        Assert.Equal(["10.10.10.5/32"], desired.Routes.Select(r => Core.Net.Format(r.Destination)).ToArray());
    }

    [Fact]
    public void On_a_net30_server_the_pool_via_the_peer_gets_its_pool_rule()
    {
        var env = Net30Client();
        env.Remove("remote_1");
        env["ifconfig_local"] = "10.10.10.1";
        env["ifconfig_remote"] = env["route_vpn_gateway"] = "10.10.10.2";
        foreach (var i in new[] { "1", "2", "3", "4" }) env[$"route_gateway_{i}"] = "10.10.10.2";

        var desired = HookPolicy.Desired(OpenVpnTunnel.Parse(env, [], null), Settings);

        var rule = Assert.Single(desired.Rules);
        Assert.Equal(IPNetwork.Parse("10.10.10.0/24"), rule.From);
        Assert.DoesNotContain(desired.Rules, r => r.From is null);
    }

    [Theory]
    [InlineData("ifconfig_netmask", "128.0.0.0")]
    [InlineData("ifconfig_netmask", "254.0.0.0")]
    [InlineData("ifconfig_ipv6_netbits", "1")]
    [InlineData("ifconfig_ipv6_netbits", "31")]
    public void A_tunnel_network_wider_than_the_floor_is_refused(string key, string value)
    {
        var env = new Dictionary<string, string>
        {
            ["script_type"] = "up", ["dev"] = "tun0", ["ifconfig_local"] = "10.10.10.1", ["ifconfig_netmask"] = "255.255.255.0",
            ["ifconfig_ipv6_local"] = "fd00::1", ["ifconfig_ipv6_netbits"] = "64",
        };
        env[key] = value;

        Assert.Equal(key, Assert.Throws<InputException>(() => OpenVpnTunnel.Parse(env, [], null)).Field);
    }

    static OpenVpnTunnel Subnet(string local, string action = "up") => OpenVpnTunnel.Parse(new Dictionary<string, string>
    {
        ["script_type"] = action, ["dev"] = "tun0", ["ifconfig_local"] = local, ["ifconfig_netmask"] = "255.255.255.0",
    }, [], null);

    [Fact]
    public void A_late_down_of_another_tunnel_on_the_same_device_owns_nothing()
    {
        var b = Subnet("10.20.0.1");
        var bRecord = TunnelRecord.Of(b, HookPolicy.Desired(b, Settings));
        var aDown = Subnet("10.10.10.1", "down");

        var scope = HookPolicy.Scope(aDown, Settings, KernelState.Empty, bRecord);

        Assert.NotEmpty(bRecord.Routes);
        Assert.DoesNotContain(bRecord.Routes, r => scope.Route(r));
        Assert.DoesNotContain(bRecord.Rules, r => scope.Rule(r));
    }

    [Fact]
    public void Up_never_owns_a_pool_rule_it_did_not_record_even_when_its_address_lies_in_that_pool()
    {
        var p2p = OpenVpnTunnel.Parse(new Dictionary<string, string>
        {
            ["script_type"] = "up", ["dev"] = "tun1", ["ifconfig_local"] = "10.10.10.77", ["ifconfig_remote"] = "10.10.10.78",
        }, [], null);
        var othersPool = new Rule(AddressFamily.InterNetwork, 1000, RuleAction.Lookup, 200, 148, from: IPNetwork.Parse("10.10.10.0/24"));

        var scope = HookPolicy.Scope(p2p, Settings, HookPolicy.Desired(p2p, Settings), record: null);

        Assert.False(scope.Rule(othersPool));
    }

    [Fact]
    public void A_record_reads_back_as_written_and_down_owns_exactly_it()
    {
        var up = OpenVpnTunnel.Parse(new Dictionary<string, string>
        {
            ["script_type"] = "up", ["dev"] = "tun0", ["ifconfig_local"] = "10.10.10.1", ["ifconfig_netmask"] = "255.255.255.0",
            ["ifconfig_ipv6_local"] = "fd00::1", ["ifconfig_ipv6_netbits"] = "64",
        }, [], null);
        var record = TunnelRecord.Of(up, HookPolicy.Desired(up, Settings));

        var back = TunnelRecord.Parse("tun0", record.Format());

        Assert.NotNull(back);
        Assert.Equal(record.Routes, back.Routes);
        Assert.Equal(record.Rules, back.Rules);
        Assert.True(back.Matches(up));
        Assert.Null(TunnelRecord.Parse("tun1", record.Format()));
    }

    [Theory]
    [InlineData(11u)] [InlineData(12u)] [InlineData(16u)] [InlineData(18u)] [InlineData(42u)] [InlineData(84u)]
    [InlineData(99u)] [InlineData(186u)] [InlineData(192u)]
    public void A_protocol_number_of_another_routing_daemon_is_refused_saying_why(uint id)
    {
        var names = Iproute2Files.Load(Directory.CreateTempSubdirectory("tunnel-router-names-").FullName);

        var e = Assert.Throws<InputException>(() => names.ResolveProtocol("Protocol", id, "tunnel-router"));

        Assert.Contains("deletes every route and rule", e.Message);
    }

    [Fact]
    public void A_protocol_number_rt_protos_names_for_someone_else_is_refused()
    {
        var dir = Directory.CreateTempSubdirectory("tunnel-router-names-").FullName;
        Directory.CreateDirectory(Path.Combine(dir, "rt_protos.d"));
        File.WriteAllText(Path.Combine(dir, "rt_protos.d", "other.conf"), "150 someonesd\n");
        var names = Iproute2Files.Load(dir);

        var e = Assert.Throws<InputException>(() => names.ResolveProtocol("Protocol", 150, "tunnel-router"));

        Assert.Contains("'someonesd'", e.Message);
        Assert.Equal(147, names.ResolveProtocol("Protocol", 147, "tunnel-router"));
    }

    [Fact]
    public void A_device_named_like_a_command_is_a_device_when_OpenVPN_calls()
    {
        string[] argv = ["flush", "1500", "0", "10.200.0.1", "255.255.255.0", "init"];
        var env = new Dictionary<string, string> { ["script_type"] = "up", ["dev"] = "flush" };

        var args = CliArgs.Parse(argv, CliArgs.OpenVpnWords(argv, env));

        Assert.Null(args.Command);
        Assert.Equal(argv, args.Positional);
    }

    [Fact]
    public void The_admins_own_words_before_OpenVPNs_still_count()
    {
        string[] argv = ["up", "--config", "/etc/x.json", "apply", "1500", "0", "10.200.0.1", "255.255.255.0", "restart"];
        var env = new Dictionary<string, string> { ["script_type"] = "up" };

        var args = CliArgs.Parse(argv, CliArgs.OpenVpnWords(argv, env));

        Assert.Equal("up", args.Command);
        Assert.Equal("/etc/x.json", args.ConfigPath);
        Assert.Equal("apply", args.Positional[0]);
    }

    [Fact]
    public void An_unknown_variable_is_named_with_its_control_characters_escaped()
    {
        var stderr = new StringWriter();
        var env = new Dictionary<string, string> { ["TUNNEL_ROUTER_\u001b[2J\u001b]0;owned\u0007X"] = "1" };

        var code = App.Run(["plan"], env, new StringWriter(), stderr);

        Assert.Equal(App.Failed, code);
        Assert.DoesNotContain('\u001b', stderr.ToString());
        Assert.DoesNotContain('\u0007', stderr.ToString());
        Assert.Contains("\\x1b", stderr.ToString());
    }

    [Fact]
    public void The_fault_point_is_not_in_a_release_build()
    {
        // Any kernel will do: nothing is called on it.
        var kernel = System.Reflection.DispatchProxy.Create<IKernel, UncalledKernel>();

        var wrapped = FaultPoint.Wrap(kernel, new Dictionary<string, string> { [FaultPoint.Variable] = "0" });

        // This assembly references the program as released (no FaultInjection): the variable does nothing.
        Assert.False(FaultPoint.Compiled);
        Assert.Same(kernel, wrapped);
    }
}

/// <summary>An <see cref="IKernel"/> that fails any call: for code that must only hold one.</summary>
public class UncalledKernel : System.Reflection.DispatchProxy
{
    protected override object? Invoke(System.Reflection.MethodInfo? targetMethod, object?[]? args) =>
        throw new InvalidOperationException($"{targetMethod?.Name} was called");
}
