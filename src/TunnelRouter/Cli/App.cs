using Serilog;
using Serilog.Events;
using TunnelRouter.Config;
using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;

namespace TunnelRouter.Cli;

/// <summary>Composition: arguments + environment → configuration, logging, backend → a command. Every
/// error becomes one line on stderr and a non-zero exit code here, and nowhere else.</summary>
public static class App
{
    public const int Ok = 0, Failed = 1, PlanHasChanges = 2, UsageError = 2;

    public static int Run(IReadOnlyList<string> argv, IReadOnlyDictionary<string, string> env, TextWriter stdout, TextWriter stderr)
    {
        StartupTrace.Enable(env, stderr);
        // One logger, built once (the hook's start-up time adds to every VPN start); -v/-q only move its level.
        var level = new Serilog.Core.LoggingLevelSwitch(LogEventLevel.Information);
        // Only the process's own stderr can be the journal's stream (a test's writer is not).
        var journal = ReferenceEquals(stderr, Console.Error) && JournalStream.IsStderr(env);
        ILogger log = CreateLogger(level, null, stderr, journal);
        StartupTrace.Mark("logger");
        try
        {
            var args = CliArgs.Parse(argv, CliArgs.OpenVpnWords(argv, env));
            level.MinimumLevel = args.Verbose ? LogEventLevel.Debug : args.Quiet ? LogEventLevel.Warning : LogEventLevel.Information;
            StartupTrace.Mark("args");

            switch (args.Command)
            {
                // Before the policy and the kernel: asking, generating a page or a script never acts.
                case "help": return Help(args.HelpFor, stdout, stderr, log);
                case "version": stdout.WriteLine($"tunnel-router {Version}"); return Ok;
                case "completion": return Generate("completion", args.Positional, Completion.Script, stdout);
                case "manpage": return Generate("manpage", args.Positional, ManPage.Source, stdout);
                // Without a command and without OpenVPN's environment nobody meant the hook: a typo ("aply") or a
                // bare call gets the usage, not "script_type: is not set".
                case null when !CliArgs.IsOpenVpnEnvironment(env):
                    if (args.Positional.Count > 0 || args.Extra.Count > 0)
                    {
                        var word = Net.Printable(args.Positional.Count > 0 ? args.Positional[0] : args.Extra[0]);
                        log.Error("tunnel-router: error: {Message}", args.Positional.Count > 0
                            ? $"unknown command '{word}'{Suggest.DidYouMean(word, CliArgs.Commands)}"
                            : $"unknown option '{word}'");
                    }
                    stderr.Write(Usage);
                    return UsageError;
            }

            var (policy, required) = ConfigLoader.Locate(args.ConfigPath, env);
            string? text = null;
            var onLastGood = false;
            var (options, configPath) = args.Command switch
            {
                // The revert must come whatever the policy file holds by then: it puts another text there anyway.
                "flush" or "confirm" or "rollback" => ConfigLoader.LoadOrSetAside(env, args.Overrides, policy, required,
                    warning => log.Warning("tunnel-router: warning: {Message}", warning)),
                // The demo brings its own policy (its steps run with --config); the host's is none of its business.
                "demo" => ConfigLoader.Load(env, args.Overrides, null),
                // A broken policy never takes a tunnel down: the hook, watch and apply run on the last good one
                // (docs/lifecycle.md); apply, which an admin runs after an edit, also exits 1 so the typo is not missed.
                null or "up" or "down" or "watch" or "apply" => ConfigLoader.LoadOrLastGood(env, args.Overrides, policy, required,
                    o => LastGoodPolicy.ForLock(o.LockFile).Path, Policy.PolicyParser.ErrorsOf, t => text = t,
                    warning =>
                    {
                        onLastGood = true;
                        log.Error("tunnel-router: error: {Message}", warning);
                    }),
                _ => ConfigLoader.Load(env, args.Overrides, policy, required, Policy.PolicyParser.ErrorsOf, t => text = t),
            };
            StartupTrace.Mark("configuration");
            if (options.LogFile is not null && LogFile.Wanted(args.Command, args.Extra))
            {
                (log as IDisposable)?.Dispose();
                log = CreateLogger(level, options.LogFile, stderr, journal);
            }

            if (args.Extra.FirstOrDefault(w => w.StartsWith('-') && !CommandTable.Takes(args.Command, w)) is { } unknown)
                throw new InputException(Net.Printable(unknown), $"unknown option{(args.Command is null ? "" : " for " + args.Command)}; see 'tunnel-router {args.Command ?? "help"}{(args.Command is null ? "" : " --help")}'");

            var ctx = new Context
            {
                Args = args,
                Environment = env,
                Options = options,
                ConfigPath = configPath,
                ConfigText = text,
                Log = log,
                Out = stdout,
                Names = Iproute2Files.Load(options.Iproute2Dir),
                KernelFactory = () => FaultPoint.Wrap(Backends.Create(options.Backend), env),
            };
            ctx.Handlers.Add(new NftHandler(ctx.Nft));
            ctx.Handlers.Add(new SysctlHandler(ctx.Sysctls));
            ctx.Handlers.Add(new RoutingConfigHandler(ctx.Log, () => ctx.Kernel));

            // Both owners' protocols are checked for every command: a bad one in the environment is an error
            // even for the hook, which only uses its own.
            _ = (ctx.Protocol, ctx.HookProtocol);
            StartupTrace.Mark("iproute2 names");

            return args.Command switch
            {
                "up" => HookCommand.Run(ctx, HookAction.Up),
                "down" => HookCommand.Run(ctx, HookAction.Down),
                null => HookCommand.Run(ctx, null),
                "status" => StatusCommand.Status(ctx),
                // The unit's start after a typo (its stop flushed the policy's routes): the last good policy goes back in,
                // and the run still fails, naming the file to mend.
                "apply" when onLastGood => Commands.Run(ctx) is var rc && rc != Ok ? rc : Failed,
                _ => Commands.Run(ctx),
            };
        }
        catch (InputErrors e)
        {
            foreach (var error in e.Errors) log.Error("tunnel-router: error: {Message}", OneLine(error.Message));
            if (e.More > 0) log.Error("tunnel-router: {Count} errors shown and {More} more; nothing was changed", e.Errors.Count, e.More);
            else if (e.Errors.Count > 1) log.Error("tunnel-router: {Count} errors; nothing was changed", e.Errors.Count);
            return Failed;
        }
        catch (ConflictException e)
        {
            foreach (var line in e.Conflicts) log.Error("tunnel-router: error: {Message}", OneLine(line));
            return Failed;
        }
        catch (TunnelRouterException e)
        {
            log.Error("tunnel-router: error: {Message}", OneLine(e.Message));
            return Failed;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log.Error("tunnel-router: error: {Message}", OneLine(FrameworkMessages.Of(e)));
            return Failed;
        }
        finally
        {
            Close(log, stderr);
        }
    }

    /// <summary>help, help COMMAND, COMMAND --help: the usage or the command's, on stdout, exit 0; an unknown command is
    /// named, with the usage on stderr, exit 2.</summary>
    static int Help(string? command, TextWriter stdout, TextWriter stderr, ILogger log)
    {
        if (command is null) { stdout.Write(Usage); return Ok; }
        if (CommandTable.Find(command) is { } spec) { stdout.Write(CommandTable.HelpText(spec)); return Ok; }
        var word = Net.Printable(command);
        log.Error("tunnel-router: error: {Message}", $"unknown command '{word}'{Suggest.DidYouMean(word, CliArgs.Commands)}");
        stderr.Write(Usage);
        return UsageError;
    }

    /// <summary>completion bash|zsh, manpage 8|5: a text made from the command table; a missing or unknown argument is
    /// one line naming what it takes.</summary>
    static int Generate(string command, IReadOnlyList<string> words, Func<string, string?> make, TextWriter stdout)
    {
        var takes = CommandTable.Find(command)!.Words!;
        if (words.Count != 1 || make(words[0]) is not { } text)
            throw new InputException(command, $"{(words.Count == 0 ? "needs" : "takes")} one of {string.Join(", ", takes)}");
        stdout.Write(text);
        return Ok;
    }

    /// <summary>Closing flushes the log file, which can fail (a full disk, a path that takes no writes): one line, not a crash.</summary>
    static void Close(ILogger log, TextWriter stderr)
    {
        try { (log as IDisposable)?.Dispose(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.Write($"tunnel-router: warning: log file: {OneLine(FrameworkMessages.Of(e))}\n");
        }
    }

    /// <summary>The error line as printed: one line, and whatever a name or value smuggled into it (ESC, other
    /// controls, bidi overrides) escaped, so an error can never drive the terminal or forge a second line. The
    /// last defence: the messages escape what they echo themselves.</summary>
    internal static string OneLine(string text) => string.Concat(text.ReplaceLineEndings(" ").Select(c =>
        char.IsControl(c) || char.GetUnicodeCategory(c) == System.Globalization.UnicodeCategory.Format ? $"\\x{(int)c:x2}" : c.ToString()));

    public static string Version => typeof(App).Assembly.GetName().Version?.ToString(3) ?? "0";

    static ILogger CreateLogger(Serilog.Core.LoggingLevelSwitch level, string? file, TextWriter stderr, bool journal)
    {
        var config = new LoggerConfiguration()
            .MinimumLevel.ControlledBy(level)
            // OpenVPN prefixes its own timestamps to what a hook prints on stderr.
            .WriteTo.Sink(new TextWriterSink(stderr, journal));
        if (file is not null && LogFile.Open(file, stderr) is { } sink)
            config = config.WriteTo.Sink(sink);
        return config.CreateLogger();
    }

    /// <summary>The usage screen, from the command table.</summary>
    public static string Usage => CommandTable.UsageText();
}

/// <summary>A console sink without templates or themes: the hook prints a handful of lines, and the
/// general-purpose console sink costs more to build than the hook's whole kernel work.</summary>
/// <paramref name="journal"/>: stderr is the journal (<see cref="JournalStream"/>); every line carries its priority.
sealed class TextWriterSink(TextWriter writer, bool journal = false) : Serilog.Core.ILogEventSink
{
    public void Emit(LogEvent logEvent)
    {
        var text = Render(logEvent);
        if (journal)
        {
            var prefix = JournalStream.Prefix(logEvent.Level);
            text = prefix + text.Replace("\n", "\n" + prefix);
        }
        writer.Write(text);
        writer.Write('\n');
        writer.Flush();
    }

    /// <summary>Strings unquoted (RenderMessage would quote them): these lines are meant to be pasted into a shell.</summary>
    public static string Render(LogEvent logEvent)
    {
        var text = new System.Text.StringBuilder();
        foreach (var token in logEvent.MessageTemplate.Tokens)
        {
            if (token is Serilog.Parsing.TextToken t) text.Append(t.Text);
            else if (token is Serilog.Parsing.PropertyToken p && logEvent.Properties.TryGetValue(p.PropertyName, out var value))
                text.Append(value is ScalarValue { Value: string s } ? s : value.ToString());
        }
        return text.ToString();
    }
}
