namespace TunnelRouter.Cli;

/// <summary>What an option's value is: the help shows it, completions offer candidates for it.</summary>
public enum ValueKind { None, Path, Directory, Device, Table, Address, Number, Choice, Text }

/// <summary>What <see cref="CliArgs.Parse"/> does with an option: a flag of its own, a configuration key, or
/// (<see cref="Own"/>) a word the command reads itself from <see cref="CliArgs.Extra"/>.</summary>
public enum Sets { Own, DryRun, Verbose, Quiet, Json, All, Adopt, Help, Version, Config, Override, Key }

/// <summary>One option: its words, its value and what it sets.</summary>
public sealed record OptionSpec(string Name, string? Short, ValueKind Kind, string Help, Sets Sets = Sets.Own,
    string? Value = null, string[]? Choices = null, string? ConfigKey = null, bool Hidden = false)
{
    public bool TakesValue => Kind != ValueKind.None;

    /// <summary>"-c, --config PATH", "--format networkd|ifcfg|uci|nmcli".</summary>
    public string Synopsis => (Short is null ? "" : Short + ", ") + Name + (TakesValue ? " " + ValueText : "");

    public string ValueText => Choices is { } c ? string.Join('|', c) : Value ?? Kind.ToString().ToUpperInvariant();
}

/// <summary>One exit status of a command and what it means.</summary>
public sealed record ExitStatus(int Code, string Meaning);

/// <summary>One command: its name, the line in the usage screen, its own options, what it does, examples, exit codes.
/// <see cref="Hidden"/>: neither in the usage nor in completions (a tool for packaging, not for admins).</summary>
public sealed record CommandSpec(string Name, string Group, string Summary, string Synopsis, string Description,
    OptionSpec[] Options, string[] Examples, ExitStatus[] Exits, bool Hidden = false, string[]? Words = null)
{
    /// <summary>The words the command takes after it (completion: bash, zsh); help takes a command's name.</summary>
    public string[]? Words { get; init; } = Words;
}

/// <summary>
/// Every command and option of <c>tunnel-router</c>, in one place: parsing (<see cref="CliArgs"/>), the usage screen,
/// <c>COMMAND --help</c>, the man page (<see cref="ManPage"/>) and the shell completions (<see cref="Completion"/>)
/// all read this table, so none of them can name a command or an option the others do not know.
/// </summary>
public static class CommandTable
{
    static readonly ExitStatus Success = new(App.Ok, "success");
    static readonly ExitStatus Error = new(App.Failed, "an error, named on stderr in one line; for bad input nothing was changed");
    static readonly ExitStatus Usage = new(App.UsageError, "an unknown command or option (the usage goes to stderr)");
    static readonly ExitStatus[] Plain = [Success, Error, Usage];

    const string Formats = "networkd|ifcfg|uci|nmcli";

    /// <summary>Options every command takes; they may stand anywhere on the command line.</summary>
    public static readonly OptionSpec[] Common =
    [
        new("--config", "-c", ValueKind.Path, "policy file (default /etc/tunnel-router/tunnel-router.json, or $TUNNEL_ROUTER_CONFIG)", Sets.Config, "PATH"),
        new("--dry-run", "-n", ValueKind.None, "print the changes as ip lines, change nothing", Sets.DryRun),
        new("--verbose", "-v", ValueKind.None, "more detail", Sets.Verbose),
        new("--quiet", "-q", ValueKind.None, "errors and warnings only", Sets.Quiet),
        new("--log-file", null, ValueKind.Path, "also log to a file (the LogFile key)", Sets.Key, "PATH", ConfigKey: "LogFile"),
        new("--backend", null, ValueKind.Choice, "how the kernel is changed: rtnetlink over a socket (default) or iproute2's ip", Sets.Key, Choices: ["netlink", "ip"], ConfigKey: "Backend"),
        new("--table", null, ValueKind.Table, "the OpenVPN hook's policy table, a name or a number (the Table key)", Sets.Key, "TABLE", ConfigKey: "Table"),
        new("--lock-file", null, ValueKind.Path, "the host-wide lock (the LockFile key)", Sets.Key, "PATH", ConfigKey: "LockFile"),
        new("--set", null, ValueKind.Text, "override a configuration key, the same as a Key=Value word", Sets.Override, "KEY=VALUE"),
        new("--help", "-h", ValueKind.None, "print the usage (of COMMAND) and exit; never acts", Sets.Help),
        new("--version", null, ValueKind.None, "print the version and exit", Sets.Version),
    ];

    static OptionSpec Json(string what) => new("--json", null, ValueKind.None, $"machine-readable output: {what}", Sets.Json);

    static readonly OptionSpec Adopt = new("--adopt", null, ValueKind.None, "take over foreign routes and rules identical to the policy's", Sets.Adopt);

    const string HookDescription =
        "OpenVPN runs the hook as --up and --down: with script_type set to up or down and its arguments " +
        "(dev tun_mtu 0 ifconfig_local NETMASK|PEER init|restart), or as 'tunnel-router up|down' from the environment alone " +
        "(the down-root plugin, the /etc/openvpn/up shim). Up installs the tunnel's networks on the device in the policy " +
        "table (and with PoolRules a rule from each pool); down removes exactly what up recorded in /run/tunnel-router/tunnels/NETNS/DEV.";

    public static readonly CommandSpec[] Commands =
    [
        new("up", "hook", "the OpenVPN hook: install the tunnel's routes (and pool rules)", "tunnel-router up [options] [OpenVPN's arguments]",
            HookDescription, [],
            ["up /usr/sbin/tunnel-router            (in the OpenVPN configuration, with script-security 2)",
             "tunnel-router up                            (the /etc/openvpn/up shim: OpenVPN's environment)"],
            [Success, Error]),
        new("down", "hook", "the OpenVPN hook: remove what up installed for the device", "tunnel-router down [options] [OpenVPN's arguments]",
            HookDescription,
            [],
            ["plugin /usr/lib/x86_64-linux-gnu/openvpn/plugins/openvpn-plugin-down-root.so \"/usr/sbin/tunnel-router down\""],
            [Success, Error]),
        new("apply", "policy", "make the kernel match the policy file", "tunnel-router apply [--adopt] [--confirm SECONDS] [--json] [options] [Key=Value ...]",
            "Parses the policy, reads the kernel once and applies the difference: the kill switches of FailClosed tables first " +
            "and on their own, then everything else, all or nothing. A policy that does not parse changes nothing (the unit's " +
            "start then applies the last good policy and exits 1). With --confirm SECONDS the policy of before (its file, the " +
            "kernel's owned state, the routing daemon's file) comes back after SECONDS unless 'tunnel-router confirm' arrives; " +
            "a second --confirm while one is pending is refused.",
            [Adopt, new("--confirm", null, ValueKind.Number, "revert to the policy of before after SECONDS unless confirmed (docs/remote-changes.md)", Value: "SECONDS"),
             Json("every change with what wants it and its result (docs/apply.schema.json)")],
            ["tunnel-router apply", "tunnel-router apply -n", "tunnel-router apply -c /etc/tunnel-router/site-a.json", "tunnel-router apply --json", "tunnel-router apply --confirm 120"],
            Plain),
        new("plan", "policy", "print what apply would change (exit 0: nothing, 2: changes, 1: error)", "tunnel-router plan [--adopt] [--json] [options] [Key=Value ...]",
            "Prints the changes apply would make, one ip command a line (a prefix file's routes as one line, unless -v; -v also " +
            "names the file and line of the policy, or the conf.d fragment, that wants each). Changes nothing.",
            [Adopt, Json("every change: operation, object, owner, the file, section and line that want it, reason (docs/plan.schema.json)")],
            ["tunnel-router plan", "tunnel-router plan -v -c contrib/examples/eduvpn-nat-router.json", "tunnel-router plan --json"],
            [new(App.Ok, "nothing to change"), Error, new(App.PlanHasChanges, "apply would change something (also: an unknown command or option)")]),
        new("confirm", "policy", "keep what apply --confirm applied", "tunnel-router confirm [options]",
            "Ends the wait of a pending apply --confirm: the applied policy stays and its timer ends. Exits 1 when none is pending.",
            [],
            ["tunnel-router apply --confirm 120 && tunnel-router confirm"],
            Plain),
        new("rollback", "policy", "revert a pending apply --confirm now", "tunnel-router rollback [options]",
            "Reverts a pending apply --confirm at once, as its timer would: the policy file of before comes back (the abandoned one " +
            "as FILE.rolled-back, conf.d fragments as NAME.json.rolled-back), the routing daemon's file as it was, a running watch " +
            "re-reads the policy, and the policy of before is applied. Exits 1 when none is pending.",
            [new("--due", null, ValueKind.Text, "(the timer) wait for the deadline of the pending apply ID first", Value: "ID", Hidden: true)],
            ["tunnel-router rollback"],
            Plain),
        new("status", "policy", "what tunnel-router owns, table by table", "tunnel-router status [--json | --format prometheus] [options]",
            "What tunnel-router owns, from one reading of the kernel: the live tunnels, the routes and rules of both owners, " +
            "its nftables table and the policy's sysctls. Works on a broken policy too.",
            [Json("an object per table"),
             // Hidden until completion knows per-command values: bash completes an option word the same for every command, and
             // export's --format takes other values.
             new("--format", null, ValueKind.Choice, "text (default) or prometheus: the text exposition format for node_exporter's textfile collector", Choices: ["text", "prometheus"])],
            ["tunnel-router status", "tunnel-router status --json", "tunnel-router status --format prometheus"],
            Plain),
        new("flush", "policy", "remove the policy's objects; the live tunnels' stay", "tunnel-router flush [--all] [options]",
            "Removes what apply added. The OpenVPN hook's routes and rules stay, so a restart of the unit keeps every VPN client " +
            "routed, and so do the FailClosed kill switches and the rules into them. Works on a broken policy (it is not parsed).",
            [new("--all", null, ValueKind.None, "the hook's objects and kill switches too; forgets the live tunnels' records", Sets.All)],
            ["tunnel-router flush", "tunnel-router flush --all -n"],
            Plain),
        new("watch", "policy", "keep the kernel true: restore what others delete, add what waited for its device", "tunnel-router watch [options]",
            "Listens to rtnetlink and nftables and restores what tunnel-router owns when something else deletes it, and adds what " +
            "waited for its device when the device appears. SIGHUP re-reads the policy; runs under systemd as Type=notify. " +
            "With --json each thing it does is one JSON object a line on stdout (docs/watch.schema.json); with --metrics it serves " +
            "GET /metrics in Prometheus' text format: what status --format prometheus shows, plus restores, back-off and its last pass.",
            [Json("one event a line on stdout: changes and restores, back-off, uplinks, reloads, each pass (docs/watch.schema.json)"),
             new("--metrics", null, ValueKind.Text, "serve GET /metrics on a loopback ADDRESS:PORT or unix:PATH (off by default)", Value: "LISTEN"),
             new("--metrics-remote", null, ValueKind.None, "let --metrics listen on an address that is not loopback (no authentication: a firewall's or proxy's job)")],
            ["tunnel-router watch", "systemctl enable --now tunnel-router-watch", "tunnel-router watch --json",
             "tunnel-router watch --metrics 127.0.0.1:9477", "tunnel-router watch --metrics unix:/run/tunnel-router/metrics.sock"],
            Plain),
        new("doctor", "policy", "check the host for what breaks policy routing", "tunnel-router doctor [--json] [options]",
            "Checks the host: rp_filter, forwarding, the policy against the kernel, tables that fall through, routing daemons. " +
            "Changes nothing.",
            [Json("the findings")],
            ["tunnel-router doctor", "tunnel-router doctor --json"],
            [new(App.Ok, "no problem found (warnings may be printed)"), new(App.Failed, "a problem was found, or an error"), Usage]),
        new("explain", "policy", "which rule, table and route a packet takes", "tunnel-router explain --to ADDRESS [--from ADDRESS] [--iif DEVICE] [...]",
            "Walks the rules and tables as the kernel does for one packet and says which rule, table and route it takes, and " +
            "what the policy meant for it. Changes nothing.",
            [
                new("--to", null, ValueKind.Address, "the destination (required)", Value: "ADDRESS"),
                new("--from", null, ValueKind.Address, "the source; without --iif, where the host reaches it is taken as the way in", Value: "ADDRESS"),
                new("--iif", null, ValueKind.Device, "the device the packet arrives on (default: sent by this host)", Value: "DEVICE"),
                new("--mark", null, ValueKind.Number, "the packet's fwmark", Value: "MARK"),
                new("--proto", null, ValueKind.Text, "tcp, udp, icmp or a number", Value: "PROTO"),
                new("--sport", null, ValueKind.Number, "the source port (needs --proto)", Value: "PORT"),
                new("--dport", null, ValueKind.Number, "the destination port (needs --proto)", Value: "PORT"),
                new("--uid", null, ValueKind.Number, "the sending user (rules with uidrange)", Value: "UID"),
            ],
            ["tunnel-router explain --from 10.10.10.5 --to 1.1.1.1", "tunnel-router explain --to 192.168.50.7 --iif tun0 --proto tcp --dport 22"],
            [new(App.Ok, "the packet is routed, or refused as the policy means"), new(App.Failed, "the packet is not routed, or an error"), Usage]),
        new("export", "policy", "the policy as networkd, ifcfg, uci or nmcli configuration", $"tunnel-router export --format {Formats} [--out DIRECTORY] [options]",
            "Writes the policy's rules, routes and tables as another tool's configuration; changes nothing. Without --out every " +
            "file is printed after a '# PATH' line; what the format cannot express goes to stderr and into the output as a comment.",
            [
                new("--format", null, ValueKind.Choice, "the configuration to write (required)", Choices: Formats.Split('|')),
                new("--out", null, ValueKind.Directory, "write the files into this directory", Value: "DIRECTORY"),
                new("--interface", null, ValueKind.Text, "uci: OpenWrt's logical interface of a device, e.g. br-vpn=vpn", Value: "DEV=NAME"),
                new("--connection", null, ValueKind.Text, "nmcli: NetworkManager's connection of a device, e.g. eth1='Wired connection 1'", Value: "DEV=NAME"),
            ],
            ["tunnel-router export --format networkd --out /etc/systemd/network", "tunnel-router export --format uci --interface br-vpn=vpn"],
            Plain),
        new("demo", "policy", "a lab in throwaway network namespaces, shown step by step", "tunnel-router demo",
            "Builds the eduVPN lab in four throwaway network namespaces and shows, running itself inside them, the policy, plan, " +
            "apply, the hook, status, where packets go and pings; then removes the lab, also on Ctrl-C. Never changes the host's routing.",
            [
                new("--lab-ping-from", null, ValueKind.Address, "(inside the lab) ping source", Value: "ADDRESS", Hidden: true),
                new("--lab-ping-to", null, ValueKind.Address, "(inside the lab) ping destination", Value: "ADDRESS", Hidden: true),
                new("--lab-forwarding", null, ValueKind.None, "(inside the lab) enable forwarding", Hidden: true),
            ],
            ["tunnel-router demo"],
            [Success, Error, new(130, "interrupted (the lab is removed)")]),
        new("completion", "other", "print the shell completion script", "tunnel-router completion bash|zsh",
            "Prints the completion script for bash or zsh: commands, options, --format values, table names from rt_tables, " +
            "devices for --iif.",
            [],
            ["tunnel-router completion bash > /etc/bash_completion.d/tunnel-router", "tunnel-router completion zsh > \"${fpath[1]}/_tunnel-router\""],
            [Success, Error], Words: ["bash", "zsh"]),
        new("help", "other", "print the usage, or a command's", "tunnel-router help [COMMAND]",
            "Prints the usage, or COMMAND's usage, options and examples. Never acts.",
            [], ["tunnel-router help flush", "tunnel-router flush --help"], [Success, Usage]),
        new("version", "other", "print the version", "tunnel-router version", "Prints 'tunnel-router VERSION'.", [], ["tunnel-router --version"], [Success]),
        new("manpage", "other", "print a man page's scdoc source", "tunnel-router manpage 8|5",
            "Prints the scdoc source of tunnel-router(8) or tunnel-router.json(5); scripts/docs.sh renders them.",
            [], ["tunnel-router manpage 8 | scdoc > tunnel-router.8"], [Success, Error], Hidden: true, Words: ["8", "5"]),
    ];

    /// <summary>The commands the usage, the man page and completions show.</summary>
    public static IEnumerable<CommandSpec> Visible => Commands.Where(c => !c.Hidden);

    public static IEnumerable<string> Names => Commands.Select(c => c.Name);

    public static CommandSpec? Find(string? name)
    {
        foreach (var c in Commands)
            if (c.Name == name) return c;
        return null;
    }

    /// <summary>An option by its word, among the common ones and every command's: a word means one thing whatever
    /// the command (a spec holds the table to that). Loops, not LINQ: "tunnel-router up" parses its word on every VPN start.</summary>
    public static OptionSpec? Option(string word)
    {
        foreach (var o in Common)
            if (o.Name == word || o.Short == word) return o;
        foreach (var c in Commands)
            if (Own(c, word) is { } o) return o;
        return null;
    }

    static OptionSpec? Own(CommandSpec c, string word)
    {
        foreach (var o in c.Options)
            if (o.Name == word || o.Short == word) return o;
        return null;
    }

    /// <summary>Whether <paramref name="command"/> takes <paramref name="word"/> as an option of its own.</summary>
    public static bool Takes(string? command, string word) => Find(command) is { } c && Own(c, word) is not null;

    const int Column = 22;

    static string Row(string left, string right) => "  " + (left.Length + 2 >= Column ? left + "\n" + new string(' ', Column) : left.PadRight(Column - 2)) + right + "\n";

    /// <summary>The usage screen: every command that is not hidden and the common options.</summary>
    public static string UsageText()
    {
        var text = new System.Text.StringBuilder();
        text.Append("Usage: tunnel-router COMMAND [options] [Key=Value ...]\n\n");
        text.Append("OpenVPN hook:\n");
        text.Append(Row("tunnel-router", "as --up/--down: OpenVPN's arguments, script_type in the environment"));
        foreach (var c in Commands.Where(c => c.Group == "hook")) text.Append(Row(c.Name, c.Summary));
        foreach (var (group, title) in new[] { ("policy", "Policy"), ("other", "Other") })
        {
            text.Append($"\n{title}:\n");
            foreach (var c in Visible.Where(c => c.Group == group)) text.Append(Row(c.Name, c.Summary));
        }
        text.Append("\nOptions:\n");
        foreach (var o in Common) text.Append(Row(o.Synopsis, o.Help));
        text.Append(Row("Key=Value", "override a configuration key (also TUNNEL_ROUTER_Key=Value in the environment)"));
        text.Append("\n'tunnel-router COMMAND --help' for a command's options and examples; man tunnel-router, man tunnel-router.json.\n");
        return text.ToString();
    }

    /// <summary><c>tunnel-router COMMAND --help</c>: the command's usage, what it does, its options, examples and exit codes.</summary>
    public static string HelpText(CommandSpec c)
    {
        var text = new System.Text.StringBuilder();
        text.Append($"Usage: {c.Synopsis}\n\n{Sentence(c.Summary)}\n\n{Wrap(c.Description, 100)}\n");
        var own = c.Options.Where(o => !o.Hidden).ToList();
        if (own.Count > 0)
        {
            text.Append("\nOptions:\n");
            foreach (var o in own) text.Append(Row(o.Synopsis, o.Help));
        }
        text.Append("\nCommon options (any command): ");
        text.Append(string.Join(", ", Common.Select(o => o.Short ?? o.Name)));
        text.Append(", Key=Value; see 'tunnel-router help'.\n");
        text.Append("\nExamples:\n");
        foreach (var e in c.Examples) text.Append($"  {e}\n");
        text.Append("\nExit status:\n");
        foreach (var x in c.Exits) text.Append($"  {x.Code,-4}{x.Meaning}\n");
        return text.ToString();
    }

    /// <summary>A summary as a sentence: capitalised, with its full stop.</summary>
    internal static string Sentence(string text) => char.ToUpperInvariant(text[0]) + text[1..] + (text.EndsWith('.') ? "" : ".");

    static string Wrap(string text, int width)
    {
        var lines = new List<string>();
        var line = new System.Text.StringBuilder();
        foreach (var word in text.Split(' '))
        {
            if (line.Length > 0 && line.Length + 1 + word.Length > width)
            {
                lines.Add(line.ToString());
                line.Clear();
            }
            if (line.Length > 0) line.Append(' ');
            line.Append(word);
        }
        lines.Add(line.ToString());
        return string.Join('\n', lines);
    }
}
