using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;

namespace TunnelRouter.Policy;

/// <summary>
/// The one table resolver of the policy: a name the host's rt_tables files define, a name of the policy's
/// Tables, the hook's Table (so "lookup vpn" means the same table to apply as to the hook), or a number.
/// Names the host lacks are registered for the drop-in file (<see cref="Iproute2Files"/>).
/// </summary>
public sealed class PolicyTables
{
    readonly Iproute2Files _names;
    readonly string _hookTable;
    readonly uint? _hookTableId;
    HashSet<string> _broken = [];

    PolicyTables(Iproute2Files names, string hookTable, uint? hookTableId)
    {
        _names = names;
        _hookTable = hookTable;
        _hookTableId = hookTableId;
    }

    /// <summary>Checks and registers the policy's Tables (in name order, so errors come out the same each run).</summary>
    public static PolicyTables Create(Iproute2Files names, IReadOnlyDictionary<string, uint> tables, string hookTable, uint? hookTableId,
        string source, List<InputException>? errors = null)
    {
        var broken = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, id) in tables.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (errors is null) Check(names, source, name, id);
            else if (InputErrors.Collect(errors, () => { Check(names, source, name, id); return true; }) is false) broken.Add(name);
        }
        return new PolicyTables(names, hookTable, hookTableId) { _broken = broken };
    }

    static void Check(Iproute2Files names, string source, string name, uint id)
    {
        {
            var field = $"{source}: Tables.{name}";
            if (TableNames.TryParseNumber(name, out _)) throw new InputException(field, "a table name cannot be a number");
            if (id is 0 or > int.MaxValue or TableNames.Default or TableNames.Main or TableNames.Local)
                throw new InputException(field, $"{id} is not a free table number (1 to {int.MaxValue}, except 253-255: default, main, local)");
            if (names.Tables.TryGetId(name, out var existing) && existing != id)
                throw new InputException(field, $"{id}: the host's rt_tables files already define '{name}' as {existing}; use {existing}");
            names.ResolveTable(field, name, id);
        }
    }

    /// <summary>The table's number; null when nothing defines the name. <paramref name="field"/> names the
    /// line in errors (a bad hook table number, a name that cannot be written to the drop-in).</summary>
    public uint? Resolve(string field, string nameOrNumber)
    {
        if (_names.Tables.TryGetId(nameOrNumber, out var id)) return id;
        // A name whose Tables entry is already an error stands in as a valid table: one mistake, one message
        // (the policy is refused anyway).
        if (_broken.Contains(nameOrNumber)) return 1;
        if (nameOrNumber == _hookTable) return _names.ResolveAutoTable(field, nameOrNumber, _hookTableId);
        return null;
    }

    public TableResolver For(string field) => n => Resolve(field, n);

    /// <summary>The resolver with every name a line may use, for "did you mean" on a misspelt table.</summary>
    public PolicyLine.Tables ForLines(string field) => new(For(field), Names);

    /// <summary>Every name a line may use: the host's, the policy's and the hook's.</summary>
    public IEnumerable<string> Names => _names.Tables.ByName.Keys.Append(_hookTable);
}
