namespace TunnelRouter.Core;

/// <summary>
/// Replaces TunnelRouter's nftables table as a whole: <see cref="Old"/> and <see cref="New"/> are table
/// definitions (nft syntax), null for "no table". The inverse swaps them, so a rollback reloads the
/// previous table exactly as nft listed it.
/// </summary>
public sealed record ReplaceNftTable(string? Old, string? New) : Change
{
    /// <summary>Which of TunnelRouter's tables: the marks' (<see cref="NftMarks.QualifiedName"/>) or the fail-closed
    /// guard's (<see cref="NftGuard.QualifiedName"/>).</summary>
    public string Table { get; init; } = NftMarks.QualifiedName;

    public override Change Inverse() => new ReplaceNftTable(New, Old) { Table = Table };

    /// <summary>What a person would run: a here-document for nft, or the delete.</summary>
    public override string Display(TableNames tables, ProtocolNames protocols) =>
        New is null
            ? $"nft delete table {Table}"
            : $"nft -f - <<'EOF'\n{NftMarks.Transaction(New, Table).TrimEnd('\n')}\nEOF";

    /// <summary>The input for <c>nft -f -</c>.</summary>
    public string Script => NftMarks.Transaction(New, Table);
}
