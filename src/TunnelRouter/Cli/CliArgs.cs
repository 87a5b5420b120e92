namespace TunnelRouter.Cli;

/// <summary>The command line, parsed without reflection. Flags may come anywhere; "Key=Value" words
/// (or --set Key=Value) override configuration keys; the rest are positional (OpenVPN's arguments).</summary>
public sealed record CliArgs(
    string? Command,
    IReadOnlyList<string> Positional,
    IReadOnlyList<KeyValuePair<string, string>> Overrides,
    string? ConfigPath,
    bool DryRun,
    bool Verbose,
    bool Quiet,
    bool Json)
{
    /// <summary>The command names (<see cref="CommandTable"/>).</summary>
    public static IReadOnlyList<string> Commands => [.. CommandTable.Names];

    /// <summary>
    /// How many trailing words are OpenVPN's: it runs --up/--down as
    /// <c>cmd [the admin's words] dev tun_mtu link_mtu ifconfig_local ifconfig_remote|netmask init|restart</c>
    /// with script_type set. Those six words are data, never a command, a flag or Key=Value: a device named
    /// "flush" is a device.
    /// </summary>
    public static int OpenVpnWords(IReadOnlyList<string> args, IReadOnlyDictionary<string, string> env)
    {
        if (!env.TryGetValue("script_type", out var type) || type is not ("up" or "down") || args.Count < 6) return 0;
        var t = args.Count - 6;
        return IsDigits(args[t + 1]) && IsDigits(args[t + 2]) && args[t + 5] is "init" or "restart" ? 6 : 0;
    }

    /// <summary>Whether OpenVPN (or its down-root plugin, which passes no script_type but the tunnel's
    /// variables) ran this process: only then does a call without a command mean the hook.</summary>
    public static bool IsOpenVpnEnvironment(IReadOnlyDictionary<string, string> env) =>
        env.ContainsKey("script_type") || env.ContainsKey("dev");

    static bool IsDigits(string s) => s.Length > 0 && s.All(char.IsAsciiDigit);

    public static CliArgs Parse(IReadOnlyList<string> args, int openVpnWords = 0)
    {
        string? command = null, config = null;
        bool dryRun = false, verbose = false, quiet = false, json = false, all = false, adopt = false, help = false, version = false;
        var positional = new List<string>();
        var overrides = new List<KeyValuePair<string, string>>();
        var extra = new List<string>();

        var own = args.Count - openVpnWords;
        for (var i = 0; i < own; i++)
        {
            var a = args[i];
            string? inline = null;
            var eq = a.IndexOf('=');
            if (a.StartsWith("--", StringComparison.Ordinal) && eq > 0) { inline = a[(eq + 1)..]; a = a[..eq]; }
            string Value() => inline ?? (i + 1 < own ? args[++i] : throw new InputException(Core.Net.Printable(a), "needs a value"));

            // Every option word is in the command table: what it sets, whether it takes a value.
            switch (CommandTable.Option(a))
            {
                case { Sets: Sets.DryRun }: dryRun = true; break;
                case { Sets: Sets.Verbose }: verbose = true; break;
                case { Sets: Sets.Quiet }: quiet = true; break;
                case { Sets: Sets.Json }: json = true; break;
                case { Sets: Sets.All }: all = true; break;
                case { Sets: Sets.Adopt }: adopt = true; break;
                case { Sets: Sets.Help }: help = true; break;
                case { Sets: Sets.Version }: version = true; break;
                case { Sets: Sets.Config }: config = Value(); break;
                case { Sets: Sets.Override } o: overrides.Add(SplitOverride(o.Name, Value())); break;
                case { Sets: Sets.Key, ConfigKey: { } key }: overrides.Add(new(key, Value())); break;
                case { TakesValue: false }: extra.Add(a); break;
                case var o when o is not null || (a.StartsWith('-') && a.Length > 1 && !IsNumber(a)):
                    // A command's own option (explain --to ADDRESS), or an unknown one the command refuses: with its value,
                    // unless the next word is another option.
                    extra.Add(a);
                    if (inline is not null) extra.Add(inline);
                    else if (i + 1 < own && !args[i + 1].StartsWith(o is null ? "-" : "--", StringComparison.Ordinal)) extra.Add(args[++i]);
                    break;
                case null when command is null && positional.Count == 0 && CommandTable.Find(a) is not null:
                    command = a;
                    break;
                case null when a.Contains('=') && IsKey(a[..a.IndexOf('=')]):
                    overrides.Add(SplitOverride("argument", a));
                    break;
                default:
                    positional.Add(a);
                    break;
            }
        }
        // help COMMAND: the first word of the caller's own (never one of OpenVPN's six).
        string? helpFor = command == "help" && positional.Count > 0 ? positional[0] : null;
        for (var i = own; i < args.Count; i++) positional.Add(args[i]);
        // Asking is never acting: "flush --help" prints flush's usage and touches nothing, wherever the word stands.
        if (help) (helpFor, command) = (command == "help" ? helpFor ?? "help" : command, "help");
        else if (version) command = "version";
        return new CliArgs(command, positional, overrides, config, dryRun, verbose, quiet, json)
            { Extra = extra, All = all, Adopt = adopt, HelpFor = helpFor };
    }

    /// <summary>help COMMAND, COMMAND --help: the command whose usage is asked for; null for the general usage.</summary>
    public string? HelpFor { get; init; }

    /// <summary>flush --all: the hook's objects too, not only the policy's.</summary>
    public bool All { get; init; }

    /// <summary>Options a command reads itself (explain's --from, --to ...), as flag/value words.</summary>
    public IReadOnlyList<string> Extra { get; init; } = [];

    /// <summary>apply --adopt: take over foreign routes and rules identical to the policy's.</summary>
    public bool Adopt { get; init; }

    static KeyValuePair<string, string> SplitOverride(string field, string text)
    {
        var eq = text.IndexOf('=');
        if (eq <= 0 || !IsKey(text[..eq])) throw new InputException(field, $"'{Core.Net.Printable(text)}' is not Key=Value");
        return new(text[..eq], text[(eq + 1)..]);
    }

    static bool IsKey(string k) => k.Length > 0 && char.IsAsciiLetter(k[0]) && k.All(c => char.IsAsciiLetterOrDigit(c) || c is ':' or '_');

    static bool IsNumber(string s) => s.Length > 1 && s[1..].All(char.IsAsciiDigit);
}
