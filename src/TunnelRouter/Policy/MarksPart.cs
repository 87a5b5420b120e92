using System.Text.Json;
using TunnelRouter.Core;
using TunnelRouter.Kernel;

namespace TunnelRouter.Cli;

/// <summary>
/// The policy's <c>Marks</c>: TunnelRouter's own nftables table <c>inet tunnel_router</c>, replaced as a
/// whole in one transaction whenever its fingerprint differs from the policy's, removed when the policy has
/// no marks. Other tables (firewalls, Docker, fail2ban) are never read or touched.
/// </summary>
public sealed class MarksPart(Nftables? nft = null) : IPolicyPart
{
    readonly Nftables _nft = nft ?? new Nftables();

    public string Name => "marks";

    public void Validate(Context ctx) => MarkRules.Parse(ctx.Options.Marks);

    public IReadOnlyList<Change> Plan(Context ctx)
    {
        var desired = NftMarks.Render(MarkRules.Parse(ctx.Options.Marks));
        // Without nft no table of ours can be there to remove. With marks wanted, Read() reports the
        // missing nft ("nft not found ...; apt-get install nftables") before anything changes.
        if (desired is null && !Nftables.IsInstalled()) return [];
        var current = _nft.Read();
        if (desired is null) return current is null ? [] : [new ReplaceNftTable(current.Definition, null)];
        return current?.Fingerprint == desired.Fingerprint ? [] : [new ReplaceNftTable(current?.Definition, desired.Definition)];
    }

    public IReadOnlyList<Change> Flush(Context ctx)
    {
        if (!Nftables.IsInstalled()) return [];
        var current = _nft.Read();
        return current is null ? [] : [new ReplaceNftTable(current.Definition, null)];
    }

    public void Status(Context ctx, TextWriter o)
    {
        var current = Nftables.IsInstalled() ? _nft.Read() : null;
        if (current is null) return;
        o.WriteLine($"nftables table {NftMarks.QualifiedName} ({SyncState(ctx, current)}):");
        // The chains, one level in: the table's own first and last lines and its comment say nothing new.
        foreach (var line in current.Definition.Split('\n'))
            if (line.StartsWith('\t') && line.Trim() is { Length: > 0 } t && !t.StartsWith("comment ", StringComparison.Ordinal))
                o.WriteLine("  " + line.TrimEnd()[1..].Replace("\t", "  "));
    }

    public void WriteJson(Context ctx, Utf8JsonWriter json)
    {
        var current = Nftables.IsInstalled() ? _nft.Read() : null;
        json.WritePropertyName("marks");
        if (current is null) { json.WriteNullValue(); return; }
        json.WriteStartObject();
        json.WriteString("table", NftMarks.QualifiedName);
        json.WriteString("fingerprint", current.Fingerprint);
        json.WriteString("state", SyncState(ctx, current));
        json.WriteString("ruleset", current.Definition);
        json.WriteEndObject();
    }

    /// <summary>Whether the table is what the policy asks for; status works even on a broken policy.</summary>
    static string SyncState(Context ctx, NftTableState current)
    {
        try
        {
            var desired = NftMarks.Render(MarkRules.Parse(ctx.Options.Marks));
            return desired?.Fingerprint == current.Fingerprint ? "as in the policy" : "differs from the policy; run apply";
        }
        catch (InputException) { return "the policy's Marks are invalid"; }
    }
}
