using TunnelRouter.Core;
using TunnelRouter.Host;
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

    [Fact]
    public void Two_namespaces_each_keep_their_own_record_of_the_same_device()
    {
        new TunnelRecords(_dir, 4026531840).Write(Tun0() with { Ifindex = 7 });
        new TunnelRecords(_dir, 4026532999).Write(Tun0() with { Ifindex = 9 });

        Assert.Equal(7, new TunnelRecords(_dir, 4026531840).Read("tun0")!.Ifindex);
        Assert.Equal(9, new TunnelRecords(_dir, 4026532999).Read("tun0")!.Ifindex);
        Assert.Equal(9, Assert.Single(new TunnelRecords(_dir, 4026532999).ReadAll()).Ifindex);

        new TunnelRecords(_dir, 4026532999).Delete("tun0");

        Assert.Equal(7, new TunnelRecords(_dir, 4026531840).Read("tun0")!.Ifindex);
        Assert.Null(new TunnelRecords(_dir, 4026532999).Read("tun0"));
    }

    [Fact]
    public void A_record_an_older_version_wrote_under_tunnels_is_read_and_moved_to_its_namespace_at_the_next_write()
    {
        var legacy = Path.Combine(_dir, "tunnels", "tun0");
        Directory.CreateDirectory(Path.GetDirectoryName(legacy)!);
        File.WriteAllText(legacy, (Tun0() with { NetNs = 4026531840 }).Format());
        File.SetUnixFileMode(legacy, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var mine = new TunnelRecords(_dir, 4026531840);
        var other = new TunnelRecords(_dir, 4026532999);

        Assert.Equal(7, mine.Read("tun0")!.Ifindex);
        Assert.Single(mine.ReadAll());
        Assert.Empty(other.ReadAll());
        other.Delete("tun0"); // another namespace's delete leaves this namespace's old record alone
        Assert.True(File.Exists(legacy));

        mine.Write(mine.Read("tun0")! with { Ifindex = 8 });

        Assert.False(File.Exists(legacy));
        Assert.True(File.Exists(Path.Combine(_dir, "tunnels", "4026531840", "tun0")));
        Assert.Equal(8, Assert.Single(mine.ReadAll()).Ifindex);
    }
}
