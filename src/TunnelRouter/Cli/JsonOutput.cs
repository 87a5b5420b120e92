using System.Text.Json;

namespace TunnelRouter.Cli;

/// <summary>The one way a command prints JSON (status, doctor, explain, plan and apply with --json): one indented
/// document on stdout, written by <see cref="Utf8JsonWriter"/> (no reflection: native AOT).</summary>
public static class JsonOutput
{
    public static void Print(TextWriter output, Action<Utf8JsonWriter> write)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true })) write(w);
        output.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
    }

    /// <summary>A string, or null for none.</summary>
    public static void StringOrNull(this Utf8JsonWriter w, string name, string? value)
    {
        if (value is null) w.WriteNull(name);
        else w.WriteString(name, value);
    }
}
