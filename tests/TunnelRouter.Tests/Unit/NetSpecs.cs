using System.Net;
using System.Net.Sockets;
using TunnelRouter.Core;
using Xunit;

namespace TunnelRouter.Tests.Unit;

public class NetSpecs
{
    [Theory]
    [InlineData("255.255.255.255", 32)]
    [InlineData("255.255.255.0", 24)]
    [InlineData("255.255.254.0", 23)]
    [InlineData("255.255.255.252", 30)]
    [InlineData("128.0.0.0", 1)]
    [InlineData("0.0.0.0", 0)]
    public void A_contiguous_netmask_gives_its_prefix_length(string mask, int prefix) =>
        Assert.Equal(prefix, Net.NetmaskToPrefix("m", mask));

    [Theory]
    [InlineData("255.0.255.0")]
    [InlineData("0.255.255.255")]
    [InlineData("255.255.255.253")]
    public void A_non_contiguous_netmask_is_refused(string mask) =>
        Assert.Contains("contiguous", Assert.Throws<InputException>(() => Net.NetmaskToPrefix("m", mask)).Message);

    [Theory]
    [InlineData("10.10.10.1", 24, "10.10.10.0/24")]
    [InlineData("10.10.10.255", 23, "10.10.10.0/23")]
    [InlineData("192.168.1.6", 32, "192.168.1.6/32")]
    [InlineData("fd00:4242:4242:4242::1", 64, "fd00:4242:4242:4242::/64")]
    [InlineData("2001:db8:ffff:ffff::1", 33, "2001:db8:8000::/33")]
    public void Masking_clears_the_host_bits_like_ipcalc(string address, int prefix, string network) =>
        Assert.Equal(network, Net.Format(Net.Masked(IPAddress.Parse(address), prefix)));

    [Theory]
    [InlineData("1")]
    [InlineData("1.2.3")]
    [InlineData("1.2.3.4.5")]
    [InlineData("0x1.2.3.4")]
    [InlineData("1.2.3.04")]
    [InlineData(" 1.2.3.4")]
    [InlineData("1.2.3.4 ")]
    [InlineData("1..3.4")]
    public void Loose_IPv4_forms_that_inet_aton_accepts_are_refused(string text) =>
        Assert.False(Net.TryParseAddress(text, out _));

    [Fact]
    public void Default_is_the_zero_prefix_of_the_family() =>
        Assert.Equal("::/0", Net.Format(Net.ParsePrefix("to", "default", AddressFamily.InterNetworkV6)));

    [Fact]
    public void A_prefix_with_host_bits_is_refused_when_strict()
    {
        var e = Assert.Throws<InputException>(() => Net.ParsePrefix("from", "10.10.10.1/24", strictHostBits: true));
        Assert.Contains("10.10.10.0/24", e.Message);
    }

    [Fact]
    public void Destinations_print_as_iproute2_prints_them()
    {
        Assert.Equal("default", Net.FormatDestination(Net.ParsePrefix("d", "0.0.0.0/0")));
        Assert.Equal("10.10.10.2", Net.FormatDestination(Net.ParsePrefix("d", "10.10.10.2/32")));
        Assert.Equal("10.10.10.0/24", Net.FormatDestination(Net.ParsePrefix("d", "10.10.10.0/24")));
    }

    [Theory]
    [InlineData("tun0")]
    [InlineData("tun63")]
    [InlineData("eth0.100")]
    [InlineData("gre_black")]
    [InlineData("abcdefghijklmno")]
    public void Valid_interface_names_pass(string name) => Assert.Equal(name, InterfaceName.Validate("dev", name));

    [Theory]
    [InlineData("abcdefghijklmnop")]
    [InlineData("a/b")]
    [InlineData("a b")]
    [InlineData("$(reboot)")]
    [InlineData("`id`")]
    [InlineData(".")]
    [InlineData("..")]
    public void Invalid_interface_names_fail(string name) =>
        Assert.Equal("dev", Assert.Throws<InputException>(() => InterfaceName.Validate("dev", name)).Field);
}
