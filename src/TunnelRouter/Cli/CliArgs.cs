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
    public static readonly string[] Commands =
        ["up", "down", "apply", "plan", "status", "flush", "watch", "demo", "doctor", "explain", "export", "version", "help"];

    /// <summary>Flags that take a value and the configuration key they set.</summary>
    static readonly Dictionary<string, string> ValueFlags = new(StringComparer.Ordinal)
    {
        ["--log-file"] = "LogFile", ["--backend"] = "Backend", ["--table"] = "Table", ["--lock-file"] = "LockFile",
    };

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

            switch (a)
            {
                case "-n" or "--dry-run": dryRun = true; break;
                case "-v" or "--verbose": verbose = true; break;
                case "-q" or "--quiet": quiet = true; break;
                case "--json": json = true; break;
                case "--all": all = true; break;
                case "--adopt": adopt = true; break;
                case "-h" or "--help": help = true; break;
                case "--version": version = true; break;
                case "-c" or "--config": config = Value(); break;
                case "--set":
                    overrides.Add(SplitOverride("--set", Value()));
                    break;
                case var f when ValueFlags.TryGetValue(f, out var key):
                    overrides.Add(new(key, Value()));
                    break;
                case var f when f.StartsWith('-') && f.Length > 1 && !IsNumber(f):
                    extra.Add(f);
                    if (inline is not null) extra.Add(inline);
                    else if (i + 1 < own && !args[i + 1].StartsWith('-')) extra.Add(args[++i]);
                    break;
                case var w when command is null && positional.Count == 0 && Commands.Contains(w):
                    command = w;
                    break;
                case var w when w.Contains('=') && IsKey(w[..w.IndexOf('=')]):
                    overrides.Add(SplitOverride("argument", w));
                    break;
                default:
                    positional.Add(a);
                    break;
            }
        }
        for (var i = own; i < args.Count; i++) positional.Add(args[i]);
        // Asking is never acting: "flush --help" prints the usage and touches nothing, wherever the word stands.
        if (help) command = "help";
        else if (version) command = "version";
        return new CliArgs(command, positional, overrides, config, dryRun, verbose, quiet, json) { Extra = extra, All = all, Adopt = adopt };
    }

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
