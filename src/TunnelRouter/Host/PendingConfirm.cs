using System.Text.Json;

namespace TunnelRouter.Host;

/// <summary>
/// An <c>apply --confirm</c> waiting for <c>tunnel-router confirm</c>: <c>confirm.json</c> in the run directory (the lock's,
/// /run/tunnel-router), root's, 0600. It holds what the revert puts back: the policy text of before (the last good policy
/// when the apply began) and the routing daemon's file as it was. Written before the apply changes anything, removed by
/// confirm, rollback or the revert; /run is emptied at boot, where the unit applies the policy on disk.
/// </summary>
/// <param name="Id">names this pending apply: the timer of an older one that finds another id here ends.</param>
/// <param name="Deadline">when the revert is due, in Unix milliseconds.</param>
/// <param name="PolicyPath">the policy file the apply read (and the revert rewrites).</param>
/// <param name="Previous">the policy's text before the apply.</param>
/// <param name="RoutingFile">the routing daemon's file the new policy writes; null when it has none.</param>
/// <param name="RoutingText">that file's text before the apply; null when there was no such file.</param>
public sealed record PendingConfirm(string Id, long Deadline, long Started, string PolicyPath, string Previous, string? RoutingFile, string? RoutingText)
{
    public const string FileName = "confirm.json";

    public static string PathFor(string lockFile) =>
        System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(lockFile))!, FileName);

    public DateTimeOffset Due => DateTimeOffset.FromUnixTimeMilliseconds(Deadline);

    /// <summary>The pending apply, or null when there is none.</summary>
    public static PendingConfirm? Read(string lockFile)
    {
        var path = PathFor(lockFile);
        var text = OwnedFile.Read(path, (int)Config.StrictModes.MaxPolicyBytes * 2);
        if (text is null) return null;
        try
        {
            using var doc = JsonDocument.Parse(text);
            var r = doc.RootElement;
            string? Opt(string name) => r.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            return new PendingConfirm(r.GetProperty("id").GetString()!, r.GetProperty("deadline").GetInt64(), r.GetProperty("started").GetInt64(),
                r.GetProperty("policy").GetString()!, r.GetProperty("previous").GetString()!, Opt("routingFile"), Opt("routingText"));
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new EnvironmentException($"{path} is not a pending confirm this version wrote; remove it ('tunnel-router confirm' does)");
        }
    }

    public void Write(string lockFile)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteString("id", Id);
            w.WriteNumber("deadline", Deadline);
            w.WriteNumber("started", Started);
            w.WriteString("policy", PolicyPath);
            w.WriteString("previous", Previous);
            if (RoutingFile is not null) w.WriteString("routingFile", RoutingFile);
            if (RoutingText is not null) w.WriteString("routingText", RoutingText);
            w.WriteEndObject();
        }
        OwnedFile.Replace(PathFor(lockFile), System.Text.Encoding.UTF8.GetString(stream.ToArray()), (UnixFileMode)0b110_000_000, durable: false);
    }

    public static void Delete(string lockFile) => File.Delete(PathFor(lockFile));
}
