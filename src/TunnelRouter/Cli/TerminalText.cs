namespace TunnelRouter.Cli;

/// <summary>
/// Text for a terminal made of kernel strings (a link named <c>e\033[31m</c>, an alias) and the policy's words: every
/// control or format character but the line break is written as \xNN, so no name can drive the terminal or forge a
/// line. doctor's, explain's and status's text output goes through it; their JSON is escaped by the JSON writer.
/// </summary>
sealed class TerminalText(TextWriter inner) : TextWriter
{
    public override System.Text.Encoding Encoding => inner.Encoding;

    public override void Write(char value)
    {
        if (value != '\n' && (char.IsControl(value) || char.GetUnicodeCategory(value) == System.Globalization.UnicodeCategory.Format))
            inner.Write($"\\x{(int)value:x2}");
        else inner.Write(value);
    }

    public override void Write(string? value)
    {
        if (value is null) return;
        foreach (var c in value) Write(c);
    }

    public override void WriteLine(string? value)
    {
        Write(value);
        Write('\n');
    }

    public override void Flush() => inner.Flush();
}
