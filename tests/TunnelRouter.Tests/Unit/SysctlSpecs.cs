using TunnelRouter.Core;
using Xunit;

namespace TunnelRouter.Tests.Unit;

public class SysctlSpecs
{
    [Theory]
    [InlineData("net.ipv4.ip_forward")]
    [InlineData("net.ipv4.conf.all.rp_filter")]
    [InlineData("net.ipv4.conf.br-lan.rp_filter")]
    [InlineData("net.ipv6.conf.default.forwarding")]
    public void Network_keys_in_dotted_form_are_accepted(string key)
    {
        Assert.Equal(key, Sysctl.ValidateKey("Sysctls", key));
    }

    [Theory]
    [InlineData("kernel.core_pattern", "is not a net.* sysctl; only network settings can be set (e.g. net.ipv4.ip_forward)")]
    [InlineData("net", "is not a net.* sysctl; only network settings can be set (e.g. net.ipv4.ip_forward)")]
    [InlineData("net..ipv4.ip_forward", "is not a sysctl key; expected dotted names of letters, digits, '_' and '-'")]
    [InlineData("net.ipv4.conf.eth0/100.rp_filter", "is not a sysctl key; expected dotted names of letters, digits, '_' and '-'")]
    [InlineData("net/ipv4/../../kernel/core_pattern", "is not a net.* sysctl; only network settings can be set (e.g. net.ipv4.ip_forward)")]
    [InlineData("net.ipv4.ip_forward.", "is not a sysctl key; expected dotted names of letters, digits, '_' and '-'")]
    [InlineData("net.ipv4.ip forward", "is not a sysctl key; expected dotted names of letters, digits, '_' and '-'")]
    public void Keys_outside_net_or_with_path_tricks_are_refused(string key, string message)
    {
        var e = Assert.Throws<InputException>(() => Sysctl.Parse(new Dictionary<string, string> { [key] = "1" }));

        Assert.Equal($"Sysctls.{key}: '{key}' {message}", e.Message);
    }

    [Theory]
    [InlineData("", "is empty; expected a value like '1'")]
    [InlineData("1\n2", "'1\\x0a2' is not a short printable value (at most 64 characters)")]
    public void Values_must_be_short_and_printable(string value, string message)
    {
        var e = Assert.Throws<InputException>(() => Sysctl.Parse(new Dictionary<string, string> { ["net.ipv4.ip_forward"] = value }));

        Assert.Equal($"Sysctls.net.ipv4.ip_forward: {message}", e.Message);
        Assert.Throws<InputException>(() => Sysctl.ValidateValue("v", new string('1', 65)));
    }

    [Fact]
    public void Values_compare_as_the_kernel_prints_them()
    {
        Assert.True(Sysctl.SameValue("32768\t60999\n", "32768 60999"));
        Assert.True(Sysctl.SameValue("1\n", "1"));
        Assert.False(Sysctl.SameValue("1\n", "2"));
    }

    [Fact]
    public void Setting_a_sysctl_displays_as_sysctl_w_and_inverts_to_the_old_value()
    {
        var set = new SetSysctl("net.ipv4.conf.all.rp_filter", "1", "2");

        Assert.Equal("sysctl -w net.ipv4.conf.all.rp_filter=2", set.Display(TableNames.Numeric, ProtocolNames.Numeric));
        Assert.Equal(new SetSysctl("net.ipv4.conf.all.rp_filter", "2", "1"), set.Inverse());
        Assert.Equal("sysctl -w 'net.ipv4.ip_local_port_range=32768 60999'", new SetSysctl("net.ipv4.ip_local_port_range", "1 2", "32768\t60999").Display(TableNames.Numeric, ProtocolNames.Numeric));
        Assert.Equal("net/ipv4/conf/all/rp_filter", Sysctl.RelativePath(set.Key));
    }
}
