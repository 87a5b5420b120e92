using TunnelRouter.Cli;
using TunnelRouter.Config;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>The one command table and what is made of it: per-command help, the usage, the man pages' source and the
/// completions. A command, an option or a policy key without its entry fails here.</summary>
public class CommandTableSpecs
{
    static (int Code, string Stdout, string Stderr) Run(params string[] argv)
    {
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        var code = App.Run(argv, new Dictionary<string, string> { ["TUNNEL_ROUTER_CONFIG"] = "" }, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    public static TheoryData<string> AllCommands => [.. CommandTable.Names];

    static IEnumerable<OptionSpec> Options(CommandSpec c) => c.Options.Where(o => !o.Hidden);

    [Theory]
    [MemberData(nameof(AllCommands))]
    public void Every_command_has_a_summary_a_usage_an_example_and_its_exit_codes(string name)
    {
        var c = CommandTable.Find(name)!;

        Assert.False(string.IsNullOrWhiteSpace(c.Summary));
        Assert.False(string.IsNullOrWhiteSpace(c.Description));
        Assert.StartsWith($"tunnel-router {name}", c.Synopsis);
        Assert.NotEmpty(c.Examples);
        Assert.Contains(c.Exits, x => x.Code == 0);
        foreach (var o in Options(c)) Assert.False(string.IsNullOrWhiteSpace(o.Help), $"{name} {o.Name}");
    }

    [Theory]
    [MemberData(nameof(AllCommands))]
    public void Help_and_help_COMMAND_print_that_commands_usage_options_and_examples(string name)
    {
        var c = CommandTable.Find(name)!;
        foreach (var argv in new[] { [name, "--help"], [name, "-h"], ["help", name], (string[])["--help", name] })
        {
            var (code, stdout, stderr) = Run(argv);

            Assert.Equal(0, code);
            Assert.Equal("", stderr);
            Assert.StartsWith($"Usage: {c.Synopsis}\n", stdout);
            foreach (var o in Options(c)) Assert.Contains(o.Synopsis, stdout);
            foreach (var e in c.Examples) Assert.Contains(e, stdout);
        }
    }

    [Fact]
    public void Help_among_OpenVPNs_arguments_is_the_usage_whatever_the_device_is_called()
    {
        var env = new Dictionary<string, string> { ["script_type"] = "up" };
        foreach (var argv in new[] { ["--help", "tun0", "1500", "0", "10.8.0.1", "255.255.255.0", "init"], (string[])["help", "flush", "1500", "0", "10.8.0.1", "255.255.255.0", "init"] })
        {
            var args = CliArgs.Parse(argv, CliArgs.OpenVpnWords(argv, env));

            Assert.Equal("help", args.Command);
            Assert.Null(args.HelpFor);
        }
    }

    [Fact]
    public void Help_for_an_unknown_command_names_it_with_the_closest_one_and_exits_2()
    {
        var (code, stdout, stderr) = Run("help", "flsuh");

        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.StartsWith("tunnel-router: error: unknown command 'flsuh'; did you mean 'flush'?\nUsage: tunnel-router COMMAND", stderr);
    }

    [Fact]
    public void The_usage_lists_every_command_but_the_hidden_ones_and_every_common_option()
    {
        var usage = Run("help").Stdout;

        foreach (var c in CommandTable.Commands)
            Assert.Equal(!c.Hidden, usage.Contains($"\n  {c.Name} "));
        foreach (var o in CommandTable.Common) Assert.Contains(o.Synopsis, usage);
    }

    [Fact]
    public void An_option_word_means_one_thing_whatever_the_command()
    {
        var all = CommandTable.Common.Concat(CommandTable.Commands.SelectMany(c => c.Options));

        foreach (var same in all.GroupBy(o => o.Name))
            Assert.Single(same.Select(o => (o.Short, o.Kind, o.Sets, o.ConfigKey)).Distinct());
        Assert.Empty(CommandTable.Commands.SelectMany(c => c.Options).Select(o => o.Name).Intersect(CommandTable.Common.Select(o => o.Name)));
    }

    [Fact]
    public void An_option_of_another_command_is_refused_naming_the_command_and_its_help()
    {
        var (code, _, stderr) = Run("status", "--to", "192.0.2.1");

        Assert.Equal(1, code);
        Assert.Equal("tunnel-router: error: --to: unknown option for status; see 'tunnel-router status --help'\n", stderr);
    }

    [Fact]
    public void The_command_man_page_has_an_entry_for_every_command_option_and_exit_code()
    {
        var page = ManPage.Source("8")!;

        foreach (var c in CommandTable.Commands)
        {
            Assert.Equal(!c.Hidden, page.Contains($"\n*{Scdoc(c.Synopsis["tunnel-router ".Length..])}*\n"));
            if (c.Hidden) continue;
            foreach (var o in Options(c)) Assert.Contains($"*{Scdoc(o.Name)}*", page);
            foreach (var x in c.Exits) Assert.Contains($"\n*{x.Code}*\n", page);
        }
        foreach (var o in CommandTable.Common) Assert.Contains($"*{Scdoc(o.Name)}*", page);
        foreach (var section in new[] { "# EXIT STATUS", "# ENVIRONMENT", "# FILES", "# THE OPENVPN HOOK", "# OPTIONS" })
            Assert.Contains($"\n{section}\n", page);
        Assert.Contains("*TUNNEL\\_ROUTER\\_CONFIG*", page);
    }

    [Fact]
    public void The_policy_reference_names_every_key_the_schema_accepts_and_no_other()
    {
        var documented = PolicyReference.Keys.Select(k => k.Key).ToList();

        Assert.Equal(documented.Distinct().Count(), documented.Count);
        Assert.Empty(ConfigSchema.AllKeys.Except(documented));
        Assert.Empty(documented.Except(ConfigSchema.AllKeys));
        foreach (var k in PolicyReference.Keys)
            Assert.True(k.Type.Length > 0 && k.Default.Length > 0 && k.Description.Length > 0 && k.Example.Length > 0, k.Key);
    }

    [Fact]
    public void The_documented_defaults_are_the_ones_the_options_start_with()
    {
        var (o, r, t) = (new TunnelRouterOptions(), new RoutingOptions(), new TunnelOptions());
        var actual = new Dictionary<string, object>
        {
            ["Table"] = o.Table, ["Protocol"] = o.Protocol, ["HookProtocol"] = o.HookProtocol, ["PoolRules"] = o.PoolRules,
            ["PoolRulePriority"] = o.PoolRulePriority, ["Backend"] = o.Backend, ["Iproute2Dir"] = o.Iproute2Dir, ["LockFile"] = o.LockFile,
            ["LockTimeoutSeconds"] = o.LockTimeoutSeconds, ["WatchResyncSeconds"] = o.WatchResyncSeconds, ["Routing.Protocol"] = r.Protocol,
            ["Routing.Area"] = r.Area, ["Routing.Hello"] = r.Hello, ["Routing.Dead"] = r.Dead, ["Routing.Settle"] = r.Settle, ["Tunnels.Mode"] = t.Mode,
        };

        foreach (var (key, value) in actual)
            Assert.Equal(string.Format(System.Globalization.CultureInfo.InvariantCulture, "{0}", value).ToLowerInvariant(),
                PolicyReference.Keys.Single(k => k.Key == key).Default);
    }

    [Fact]
    public void The_policy_man_page_has_every_key_with_its_type_default_and_example()
    {
        var page = ManPage.Source("5")!;

        foreach (var k in PolicyReference.Keys)
        {
            var dot = k.Key.IndexOf('.');
            var shown = dot < 0 ? k.Key : $"{k.Key[..dot]}[].{k.Key[(dot + 1)..]}";
            Assert.Contains($"\n*{Scdoc(shown)}* {Scdoc($"({k.Type}, default: {k.Default})")}\n", page);
            Assert.Contains(Scdoc($"\"{k.Key[(dot + 1)..]}\": {k.Example}"), page);
        }
    }

    [Theory]
    [InlineData("completion", "fish", "tunnel-router: error: completion: takes one of bash, zsh")]
    [InlineData("completion", null, "tunnel-router: error: completion: needs one of bash, zsh")]
    [InlineData("manpage", "1", "tunnel-router: error: manpage: takes one of 8, 5")]
    public void A_generator_without_its_one_word_says_which_it_takes(string command, string? word, string expected)
    {
        var (code, stdout, stderr) = Run(word is null ? [command] : [command, word]);

        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        Assert.Equal(expected + "\n", stderr);
    }

    [Fact]
    public void Completions_offer_every_visible_command_and_option_and_no_hidden_one()
    {
        foreach (var shell in new[] { "bash", "zsh" })
        {
            var script = Completion.Script(shell)!;
            // bash offers the commands in one compgen word list, zsh as 'name:summary' items.
            var bashCommands = script.Split('\n').FirstOrDefault(l => l.TrimStart().StartsWith("'') COMPREPLY", StringComparison.Ordinal))?
                .Split('"')[1].Split(' ') ?? [];
            foreach (var c in CommandTable.Commands)
            {
                Assert.Equal(!c.Hidden, shell == "bash" ? bashCommands.Contains(c.Name) : script.Contains($"'{c.Name}:"));
                foreach (var o in c.Options) Assert.Equal(!o.Hidden, script.Contains(o.Name));
            }
            foreach (var o in CommandTable.Common) Assert.Contains(o.Name, script);
        }
    }

    static string Scdoc(string text) => text.Replace("\\", "\\\\").Replace("*", "\\*").Replace("_", "\\_");
}
