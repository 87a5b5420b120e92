using TunnelRouter.Tests.Support;
using Xunit;
using static TunnelRouter.Tests.EndToEnd.ClientLab;

namespace TunnelRouter.Tests.EndToEnd;

/// <summary>
/// An OpenVPN client's Instances lines are live state: when someone deletes what the hook made for a real client
/// (networkd's cleanup, an admin's flush), plan names it, apply and watch restore it exactly as up made it, from the
/// tunnel's record — OpenVPN's environment is long gone — and the LAN's packets go through the tunnel again.
/// </summary>
public class InstanceRestoreSpecs
{
    const string Rule4 = "rule 1100 from 192.168.10.0/24 to 198.51.100.7/32 lookup nyet";

    static void DeleteTheHooksObjects(ClientLab lab)
    {
        lab.Router.Ip("rule", "del", "from", "192.168.10.0/24", "to", Server4, "table", "100");
        lab.Router.Ip("-6", "rule", "del", "from", "fd10::/64", "to", Server6, "table", "100");
        lab.Router.Ip("route", "del", "default", "table", "100", "proto", "148");
        lab.Router.Ip("-6", "route", "del", "default", "table", "100", "proto", "148");
    }

    static string State(ClientLab lab) =>
        lab.Router.Ip("rule") + lab.Router.Ip("-6", "rule") + lab.Nyet() + lab.Nyet("-6");

    [Fact]
    public void Plan_names_the_deleted_instance_lines_and_apply_and_watch_restore_them_as_up_made_them()
    {
        using var lab = new ClientLab();
        lab.WritePolicy(Seed000);
        lab.Tool("apply").ShouldSucceed();
        lab.StartServer().WaitFor(OpenVpnProcess.Ready);
        var client = lab.StartClient();
        client.WaitFor(OpenVpnProcess.Ready);
        lab.Flows(client, "after up");
        var asUpMadeIt = State(lab);

        DeleteTheHooksObjects(lab);
        var plan = lab.Tool("plan");
        var apply = lab.Tool("apply").ShouldSucceed();

        Assert.Equal(2, plan.ExitCode);
        Assert.Contains("rule add from 192.168.10.0/24 to 198.51.100.7", plan.Stdout);
        Assert.Contains("route add default via 10.8.0.1 dev tun2 table nyet", plan.Stdout);
        Assert.Contains("-6 route add default via", plan.Stdout);
        Assert.Contains("[#] ip -4 rule add from 192.168.10.0/24 to 198.51.100.7", apply.Stderr);
        Assert.Equal(asUpMadeIt, State(lab));
        Assert.Equal(0, lab.Tool("plan").ExitCode);
        lab.Flows(client, "after apply restored the instance's lines");

        using (var watch = new WatchProcess(lab.Router, ["--config", lab.PolicyPath]))
        {
            DeleteTheHooksObjects(lab);

            Eventually.True(() => State(lab) == asUpMadeIt, () => $"watch did not restore the instance's lines:\n{watch.Output}\n{State(lab)}");
            watch.WaitFor($"{Rule4} was deleted by someone else: restored");
        }
        lab.Flows(client, "after watch restored the instance's lines");

        client.Stop();
        // Down removes the restored objects as it would have removed up's own.
        Assert.DoesNotContain("proto 148", lab.Nyet() + lab.Nyet("-6") + lab.Router.Ip("rule") + lab.Router.Ip("-6", "rule"));
    }
}
