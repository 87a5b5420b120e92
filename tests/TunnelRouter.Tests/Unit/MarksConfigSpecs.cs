using TunnelRouter.Config;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>Marks and Sysctls as the configuration loader binds them (command-line overrides stand in for the file).</summary>
public class MarksConfigSpecs
{
    static TunnelRouterOptions Load(params (string Key, string Value)[] pairs) =>
        ConfigLoader.Load(new Dictionary<string, string>(), pairs.Select(p => KeyValuePair.Create(p.Key, p.Value)).ToList(), null).Options;

    static string Error(params (string Key, string Value)[] pairs) => Assert.Throws<InputException>(() => Load(pairs)).Message;

    [Fact]
    public void Mark_entries_and_sysctls_bind_with_dotted_keys_intact()
    {
        var o = Load(("Marks:0:Chain", "output"), ("Marks:0:SourcePorts", "80,443"), ("Marks:0:Mark", "0xf2"),
            ("Sysctls:net.ipv4.ip_forward", "1"));

        Assert.Equal("output", o.Marks[0].Chain);
        Assert.Equal("80,443", o.Marks[0].SourcePorts);
        Assert.Equal("0xf2", o.Marks[0].Mark);
        Assert.Equal("1", o.Sysctls["net.ipv4.ip_forward"]);
    }

    [Fact]
    public void An_unknown_key_in_a_mark_entry_is_refused_with_its_index()
    {
        Assert.Equal("command line: Marks[0].SourcePort: unknown key; did you mean 'SourcePorts'? (known: Chain, Family, Source, Destination, Protocol, SourcePorts, DestinationPorts, InputInterface, OutputInterface, Mark, Mask)",
            Error(("Marks:0:Chain", "output"), ("Marks:0:SourcePort", "80")));
    }

    [Fact]
    public void A_mark_entry_that_is_not_an_object_is_refused()
    {
        Assert.StartsWith("command line: Marks[0]: expected an object", Error(("Marks:0", "output 0xf2")));
    }

    [Fact]
    public void A_nested_sysctl_is_refused()
    {
        Assert.StartsWith("configuration: Sysctls.net: expected a value like \"1\", not an object", Error(("Sysctls:net:ipv4", "1")));
    }

    [Fact]
    public void A_missing_nft_says_what_to_install()
    {
        var e = Assert.Throws<EnvironmentException>(() => Tools.Find("nft", "/nonexistent/sbin/nft"));

        Assert.Equal("nft not found (looked in /nonexistent/sbin/nft); install it (Debian: apt-get install nftables)", e.Message);
    }
}
