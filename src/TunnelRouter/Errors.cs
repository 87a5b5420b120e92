namespace TunnelRouter;

/// <summary>Root of every error TunnelRouter reports. <see cref="Cli.App.Run"/> turns each into one line on stderr and
/// the exit code <see cref="Cli.App.Failed"/>, in one place.</summary>
public class TunnelRouterException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Bad input: an OpenVPN variable, a policy key, a command-line value. Nothing was changed.</summary>
public sealed class InputException(string field, string message)
    : TunnelRouterException($"{field}: {message}")
{
    public string Field { get; } = field;
}

/// <summary>The kernel (or a tool talking to it) refused or failed a change or a read.</summary>
public class KernelException(string message, Exception? inner = null) : TunnelRouterException(message, inner)
{
    /// <summary>errno when known (EEXIST 17, ESRCH 3, ENODEV 19, EPERM 1 ...), else 0.</summary>
    public int Errno { get; init; }

    /// <summary>True for failures that succeed when tried again: EBUSY, EAGAIN, ENOBUFS, EINTR.</summary>
    public bool IsTransient => Errno is TunnelRouter.Errno.EBUSY or TunnelRouter.Errno.EAGAIN or TunnelRouter.Errno.ENOBUFS or TunnelRouter.Errno.EINTR;
}

/// <summary>A batch of changes failed part-way. <see cref="Applied"/> changes had taken effect before it.</summary>
public sealed class ChangeFailedException(string message, int applied, Core.Change? failed, KernelException inner)
    : KernelException(message, inner)
{
    public int Applied { get; } = applied;
    public Core.Change? Failed { get; } = failed;

    /// <summary>How many changes after the failed one were never sent (ip -batch stops at the line the kernel refused;
    /// netlink sends them all and takes back what took effect).</summary>
    public int NotSent { get; init; }
}

/// <summary>Another owner holds something TunnelRouter would have to change.</summary>
public sealed class ConflictException(string message) : TunnelRouterException(message)
{
    /// <summary>Every conflict at once, one line each.</summary>
    public ConflictException(IReadOnlyList<string> conflicts) : this(string.Join("\n", conflicts)) => Conflicts = conflicts;

    public IReadOnlyList<string> Conflicts { get; } = [message];
}

/// <summary>The caller lacks a privilege (CAP_NET_ADMIN) or a tool/kernel feature is missing.</summary>
public sealed class EnvironmentException(string message) : TunnelRouterException(message);

/// <summary>Every mistake of one policy at once (each an <see cref="InputException"/> naming where the value came
/// from, the key and the word), so a policy with three typos takes one run to fix, not three.</summary>
public sealed class InputErrors(IReadOnlyList<InputException> errors)
    : TunnelRouterException(string.Join("\n", errors.Select(e => e.Message)))
{
    public IReadOnlyList<InputException> Errors { get; } = errors;

    /// <summary>The most errors reported (and collected, where a section is checked line by line): a policy of a million
    /// bad lines costs twenty errors, not a million exceptions and lines of output.</summary>
    public const int Max = 20;

    /// <summary>Errors found beyond <see cref="Max"/>, not shown.</summary>
    public int More { get; init; }

    /// <summary>Whether a section checked line by line stops here; it then says how many lines it left unchecked
    /// (<see cref="NotChecked"/>).</summary>
    public static bool Full(List<InputException> errors) => errors.Count >= Max;

    public static InputException NotChecked(string section, int lines) =>
        new(section, $"{lines} more line(s) not checked: stopped after {Max} errors");

    /// <summary>One error is thrown as itself, several together (the first <see cref="Max"/>); none: nothing.</summary>
    public static void ThrowIfAny(IReadOnlyList<InputException> errors)
    {
        if (errors.Count == 1) throw errors[0];
        // One more than Max: a section that stopped says so in its last line.
        if (errors.Count > Max + 1) throw new InputErrors(errors.Take(Max + 1).ToList()) { More = errors.Count - Max - 1 };
        if (errors.Count > 1) throw new InputErrors(errors);
    }

    /// <summary>Runs <paramref name="parse"/>, adding what it throws to <paramref name="errors"/>; default when it failed.</summary>
    public static T? Collect<T>(List<InputException> errors, Func<T> parse)
    {
        try { return parse(); }
        catch (InputException e) { errors.Add(e); }
        catch (InputErrors e)
        {
            errors.AddRange(e.Errors);
            if (e.More > 0) errors.Add(new InputException("policy", $"and {e.More} more error(s)"));
        }
        return default;
    }
}
