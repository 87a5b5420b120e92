using TunnelRouter.Core;
using TunnelRouter.Kernel;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>Issue 21, invariant 7: tunnel records are per network namespace — two namespaces on one host, each with its
/// own OpenVPN tun0, never install nor forget each other's.</summary>
public class RecordNamespaceSpecs : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("tunnel-router-records-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static TunnelRecord Tun0() => TunnelRecord.Of(OpenVpnTunnel.Parse(new Dictionary<string, string>
    {
        ["script_type"] = "up", ["dev"] = "tun0", ["ifconfig_local"] = "10.10.10.1", ["ifconfig_netmask"] = "255.255.255.0",
    }, [], null), KernelState.Empty) with { Ifindex = 7 };

    [Fact]
    public void A_record_carries_its_namespace_and_ifindex_and_another_namespace_does_not_read_it()
    {
        new TunnelRecords(_dir, 4026531840).Write(Tun0());

        var mine = new TunnelRecords(_dir, 4026531840).Read("tun0");

        Assert.NotNull(mine);
        Assert.Equal(4026531840UL, mine.NetNs);
        Assert.Equal(7, mine.Ifindex);
        Assert.Null(new TunnelRecords(_dir, 4026532999).Read("tun0"));
        Assert.Empty(new TunnelRecords(_dir, 4026532999).ReadAll());
    }

    [Fact]
    public void A_record_of_an_older_writer_without_a_namespace_is_taken_as_this_ones()
    {
        var old = Tun0() with { NetNs = 0 };

        Assert.True(TunnelRecord.Parse("tun0", old.Format())!.InNamespace(4026532999));
        Assert.DoesNotContain("NetNs", old.Format());
    }
}
