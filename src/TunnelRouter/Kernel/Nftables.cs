using TunnelRouter.Core;
using TunnelRouter.Host;

namespace TunnelRouter.Kernel;


/// <summary>
/// nft, run by absolute path with the script on stdin (never a shell). Reads and replaces only the table
/// <c>inet tunnel_router</c>; every other table in the ruleset is someone else's.
/// </summary>
public sealed class Nftables(ProcessRunner? runner = null)
{
    readonly ProcessRunner _runner = runner ?? new ProcessRunner();

    /// <summary>False when nft is not installed; then no table of ours can exist to be read or removed.</summary>
    public static bool IsInstalled()
    {
        try { _ = Tools.Nft; return true; }
        catch (EnvironmentException) { return false; }
    }

    /// <summary>Null when the table does not exist. Equivalent to: nft list table inet tunnel_router
    /// (the text listing, not <c>-j</c>: nft 1.0.6's JSON leaves out the table's comment, where the fingerprint is).
    /// nf_tables is asked over netlink first whether the table is there at all: nft is started only to list a table
    /// that exists (or when the kernel gives no answer).</summary>
    public NftTableState? Read() => Read(NftMarks.Name);

    /// <summary>One of our tables by name: the marks' (<see cref="NftMarks.Name"/>) or the guard's (<see cref="NftGuard.Name"/>).</summary>
    public NftTableState? Read(string name)
    {
        var nft = Tools.Nft; // a missing nft is reported before anything changes, whatever the kernel holds
        if (Netlink.NetlinkNftTables.Exists(Netlink.NetlinkNftTables.Inet, name) == false) return null;
        string[] args = ["list", "table", NftMarks.Family, name];
        var result = _runner.Run(nft, args, check: false);
        if (result.ExitCode == 0)
            return new NftTableState(result.StandardOutput, NftMarks.FingerprintOf(result.StandardOutput));
        var err = result.StandardError.Trim();
        if (err.Contains("No such file or directory")) return null;
        // A kernel without nf_tables (a minimal or User-Mode Linux kernel) cannot hold our table either;
        // a policy with marks still fails there, when the table is loaded, with the kernel's own words.
        if (err.Contains("Protocol not supported") || err.Contains("Operation not supported")) return null;
        throw ProcessException.Failed(nft, args, result);
    }

    /// <summary>Loads one script as one transaction. Equivalent to: nft -f - &lt;&lt;EOF ... EOF</summary>
    public void Load(string script) => _runner.Run(Tools.Nft, ["-f", "-"], script);

    /// <summary>Whether the guard's table is there, asked over netlink (no nft process); null when nf_tables gives no answer.</summary>
    public static bool? GuardExists() => Netlink.NetlinkNftTables.Exists(Netlink.NetlinkNftTables.Inet, NftGuard.Name);

    /// <summary>Loads one script; false (and nft's words) when nft refuses it.</summary>
    public bool TryLoad(string script, out string error)
    {
        var result = _runner.Run(Tools.Nft, ["-f", "-"], script, check: false);
        error = result.StandardError.Trim();
        return result.ExitCode == 0;
    }
}

/// <summary>Applies <see cref="ReplaceNftTable"/> with one <c>nft -f -</c> transaction.</summary>
public sealed class NftHandler(Nftables nft) : IChangeHandler
{
    public bool Handles(Change change) => change is ReplaceNftTable;

    public void Apply(Change change) => nft.Load(((ReplaceNftTable)change).Script);
}
