namespace TunnelRouter.Cli;

/// <summary>Policy commands (apply, plan, doctor, explain, demo).</summary>
public static class Commands
{
    public static int Run(Context ctx) =>
        throw new InputException("command", $"'{ctx.Args.Command}' is not implemented yet");
}
