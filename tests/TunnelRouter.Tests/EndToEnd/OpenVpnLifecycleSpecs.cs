using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.EndToEnd.OpenVpnLab;

namespace TunnelRouter.Tests.EndToEnd;

/// <summary>persist-tun with a SIGUSR1 restart: down and up run again on a device that stays.</summary>
public class OpenVpnRestartSpecs
{
    [Fact]
    public void A_SIGUSR1_restart_with_persist_tun_and_up_restart_leaves_the_same_state_and_nothing_twice()
    {
        using var lab = new OpenVpnLab(clients: 1);
        lab.WritePolicy();
        lab.Apply();
        var server = lab.StartServer(new ServerSpec(Extra: ["persist-tun", "up-restart"]));
        server.WaitFor(OpenVpnProcess.Ready);
        var before = lab.PolicyState();

        server.Signal(OpenVpnProcess.SIGUSR1);
        server.WaitFor(OpenVpnProcess.Ready, times: 2);
        var after = lab.PolicyState();
        lab.StartClient(0).WaitFor(OpenVpnProcess.Ready);
        var ping = Ping(lab.Clients[0], InternetV4);

        // The hook ran as down and up with "restart" (OpenVPN exits when a restart hook fails).
        Assert.Equal(2, server.Count("255.255.255.0 restart"));
        Assert.False(server.HasExited);
        Assert.Equal(before, after);
        var owned = lab.HookObjects();
        Assert.Equal(4, owned.Length);
        Assert.Equal(owned.Length, owned.Distinct().Count());
        Assert.True(ping.ExitCode == 0, $"after the restart the client cannot reach the internet host:\n{ping.Stdout}\n{server.Log}");
    }
}

/// <summary>user nobody: the daemon drops root after up, so down runs as root only through the down-root plugin.</summary>
public class OpenVpnDownRootSpecs
{
    [Fact]
    public void With_user_nobody_the_down_root_plugin_running_tunnel_router_down_leaves_nothing_owned()
    {
        using var lab = new OpenVpnLab(clients: 1);
        lab.WritePolicy();
        var server = lab.StartServer(new ServerSpec(Hooks: HookStyle.DownRoot));
        server.WaitFor(OpenVpnProcess.Ready);
        lab.StartClient(0).WaitFor(OpenVpnProcess.Ready);
        var whileUp = lab.HookObjects();
        var uid = File.ReadLines($"/proc/{server.Pid}/status").First(l => l.StartsWith("Uid:"));

        server.Stop();

        Assert.Matches(@"^Uid:\s+65534\s", uid);
        Assert.Equal(4, whileUp.Length);
        Assert.Contains("PLUGIN_DOWN status=0", server.Log);
        Assert.Empty(lab.HookObjects());
    }
}

/// <summary>eduVPN runs one OpenVPN process per tun device, all started together at boot.</summary>
public class OpenVpnManyInstancesSpecs
{
    const int Instances = 8;

    [Fact]
    public void Eight_servers_started_together_each_get_their_routes_and_rules_exactly_once_and_take_them_away()
    {
        using var lab = new OpenVpnLab(clients: 0, internet: false);
        lab.WritePolicy();
        var specs = Enumerable.Range(0, Instances)
            .Select(i => new ServerSpec(Device: $"tun{i}", Port: 1194 + i, Pool4: $"10.20.{i}.0", Pool6: $"fd00:4242:{10 + i}::/64",
                Hooks: HookStyle.Shims))
            .ToList();

        var servers = specs.Select(lab.StartServer).ToList();
        foreach (var s in servers) s.WaitFor(OpenVpnProcess.Ready);
        var owned = lab.HookObjects();
        Parallel.ForEach(servers, s => s.Stop());

        Assert.Equal(Instances * 4, owned.Length);
        for (var i = 0; i < Instances; i++)
        {
            Assert.Single(owned, $"10.20.{i}.0/24 dev tun{i} table 200 scope link");
            Assert.Single(owned, $"fd00:4242:{10 + i}::/64 dev tun{i} table 200 metric 1024 pref medium");
            Assert.Single(owned, $"1000:\tfrom 10.20.{i}.0/24 lookup 200 proto 148");
            Assert.Single(owned, $"1000:\tfrom fd00:4242:{10 + i}::/64 lookup 200 proto 148");
        }
        Assert.Empty(lab.HookObjects());
    }
}
