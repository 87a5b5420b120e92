using System.Net;
using System.Net.Sockets;
using TunnelRouter.Core;
using TunnelRouter.Policy;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>doctor's analysis as findings from plain data: the kernel's own rules, rt_tables files, rules typed by hand,
/// the reverse-path filter (its sysctls given as a dictionary).</summary>
public class DiagnosisSpecs
{
    static Rule Lookup(AddressFamily family, uint table, uint priority, byte protocol = 2) => new(family, priority, RuleAction.Lookup, table, protocol);

    static IReadOnlyList<Rule> KernelDefaults() =>
    [
        Lookup(AddressFamily.InterNetwork, TableNames.Local, 0), Lookup(AddressFamily.InterNetwork, TableNames.Main, 32766),
        Lookup(AddressFamily.InterNetwork, TableNames.Default, 32767),
        Lookup(AddressFamily.InterNetworkV6, TableNames.Local, 0), Lookup(AddressFamily.InterNetworkV6, TableNames.Main, 32766),
    ];

    static Rule R(string line, byte protocol = 147, uint pref = 2000) =>
        PolicyLine.ParseRule("Rules[0]", line, new PolicyLine.Tables(_ => 200, ["vpn"]), protocol, pref);

    [Fact]
    public void The_kernels_own_rules_in_place_are_ok()
    {
        var finding = Diagnosis.KernelRules(KernelDefaults());

        Assert.Equal(FindingLevel.Ok, finding.Level);
    }

    [Fact]
    public void A_flushed_rule_list_names_each_missing_rule_and_how_to_add_it_back()
    {
        var finding = Diagnosis.KernelRules([Lookup(AddressFamily.InterNetwork, TableNames.Local, 0), Lookup(AddressFamily.InterNetworkV6, TableNames.Local, 0)]);

        Assert.Equal(FindingLevel.Problem, finding.Level);
        Assert.StartsWith("3 of the kernel's own rules are missing (main (IPv4); default (IPv4); main (IPv6))", finding.Message);
        Assert.Equal("ip -4 rule add from all lookup main pref 32766; ip -4 rule add from all lookup default pref 32767; ip -6 rule add from all lookup main pref 32766", finding.Fix);
    }

    [Fact]
    public void A_table_name_with_two_numbers_across_rt_tables_files_is_a_problem_naming_both_files()
    {
        var findings = Diagnosis.Tables([("rt_tables", "255 local\n200 vpn # ours\n"), ("rt_tables.d/other.conf", "201 vpn\n")], undefined: null);

        var finding = Assert.Single(findings);
        Assert.Equal(FindingLevel.Problem, finding.Level);
        Assert.Equal("table names defined twice: 'vpn' is 200 (rt_tables) and 201 (rt_tables.d/other.conf)", finding.Message);
    }

    [Fact]
    public void Tables_defined_once_are_ok_and_an_undefined_hook_table_is_its_own_problem()
    {
        Assert.Equal(FindingLevel.Ok, Assert.Single(Diagnosis.Tables([("rt_tables", "200 vpn\n201 vpn2\n")], null)).Level);

        var finding = Assert.Single(Diagnosis.Tables([("rt_tables", "200 vpn\n")], "Table: no id"));
        Assert.Equal("table not defined: Table: no id", finding.Message);
    }

    [Fact]
    public void A_foreign_rule_with_the_policys_selectors_is_named_as_hand_made()
    {
        var ours = R("from 10.10.10.0/24 lookup vpn");
        var typed = R("from 10.10.10.0/24 lookup vpn", protocol: 4, pref: 100);

        var finding = Diagnosis.HandMade(new KernelState([], [typed]), [ours], Ownership.ByProtocol(147, 148), 147, new TableNames(), new ProtocolNames());

        Assert.NotNull(finding);
        Assert.Equal(FindingLevel.Note, finding.Level);
        Assert.Contains("duplicates the policy's at priority 2000 (remove it: ip -4 rule del pref 100)", finding.Message);
        Assert.Null(Diagnosis.HandMade(new KernelState([], [ours]), [ours], Ownership.ByProtocol(147, 148), 147, new TableNames(), new ProtocolNames()));
    }

    [Fact]
    public void A_mark_rule_under_strict_rp_filter_is_a_problem_naming_the_device_and_the_loose_mode_fix()
    {
        var sysctls = new Dictionary<string, string>
        {
            ["net/ipv4/conf/all/rp_filter"] = "1", ["net/ipv4/conf/wan/rp_filter"] = "0", ["net/ipv4/conf/all/log_martians"] = "1",
        };
        var route = new Route(new IPNetwork(IPAddress.Any, 0), 200, 147, "wan");

        var findings = Diagnosis.ReversePath(KernelState.Empty, [route], [R("fwmark 0x1 lookup vpn")], k => sysctls.GetValueOrDefault(k));

        Assert.Equal(FindingLevel.Problem, findings[0].Level);
        Assert.Equal("loose mode: sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.wan.rp_filter=2", findings[0].Fix);
        Assert.Equal(new Finding("log_martians", FindingLevel.Ok, "martian packets are logged"), findings[1]);
    }

    [Fact]
    public void Rules_on_addresses_alone_pass_the_reverse_path_check_whatever_rp_filter_says()
    {
        var route = new Route(new IPNetwork(IPAddress.Any, 0), 200, 147, "wan");

        var findings = Diagnosis.ReversePath(KernelState.Empty, [route], [R("from 10.10.10.0/24 lookup vpn")], _ => "1");

        Assert.Equal([FindingLevel.Ok, FindingLevel.Ok], findings.Select(f => f.Level));
    }
}
