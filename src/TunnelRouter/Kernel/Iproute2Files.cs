using TunnelRouter.Core;

namespace TunnelRouter.Kernel;

/// <summary>
/// iproute2's name files, read the way iproute2 reads them: DIR/rt_tables (else
/// /usr/share/iproute2/rt_tables) plus every rt_tables.d/*.conf; likewise rt_protos. Names TunnelRouter
/// introduces go to its own drop-in, DIR/rt_tables.d/tunnel-router.conf; rt_tables itself is never edited.
/// </summary>
public sealed class Iproute2Files
{
    public const string DropInName = "tunnel-router.conf";
    const string VendorDir = "/usr/share/iproute2";

    readonly string _dir;
    readonly List<(uint Id, string Name)> _pendingTables = [];
    readonly List<(uint Id, string Name)> _pendingProtocols = [];

    Iproute2Files(string dir, TableNames tables, ProtocolNames protocols)
    {
        _dir = dir;
        Tables = tables;
        Protocols = protocols;
    }

    public TableNames Tables { get; }
    public ProtocolNames Protocols { get; }

    public static Iproute2Files Load(string dir)
    {
        var tables = new TableNames();
        LoadInto(tables, dir, "rt_tables");
        var protocols = new ProtocolNames();
        LoadInto(protocols, dir, "rt_protos");
        return new Iproute2Files(dir, tables, protocols);
    }

    static void LoadInto(NameMap map, string dir, string name)
    {
        foreach (var f in Files(dir, name)) map.Load(File.ReadAllText(f));
    }

    /// <summary>The files iproute2 reads for rt_tables or rt_protos, in the order it reads them.</summary>
    public static IEnumerable<string> Files(string dir, string name)
    {
        var main = Path.Combine(dir, name);
        if (!File.Exists(main)) main = Path.Combine(VendorDir, name);
        if (File.Exists(main)) yield return main;
        foreach (var d in new[] { Path.Combine(VendorDir, name + ".d"), Path.Combine(dir, name + ".d") })
            if (Directory.Exists(d))
                foreach (var f in Directory.GetFiles(d, "*.conf").Order(StringComparer.Ordinal))
                    yield return f;
    }

    /// <summary>Resolves a table name or number. An undefined name takes <paramref name="idIfUndefined"/>
    /// and is remembered for <see cref="WriteDropIns"/>.</summary>
    public uint ResolveTable(string field, string nameOrId, uint? idIfUndefined)
    {
        if (Tables.TryGetId(nameOrId, out var id))
        {
            if (id is 0 or > int.MaxValue) throw new InputException(field, $"table {nameOrId} is out of range (1 to {int.MaxValue})");
            return id;
        }
        if (!IsValidName(nameOrId))
            throw new InputException(field, $"'{Net.Printable(nameOrId)}' is not a table number or a valid table name");
        if (idIfUndefined is not { } fresh)
            throw new InputException(field, $"table '{nameOrId}' is not defined in rt_tables; give it a number under Tables");
        if (fresh is 0 or > int.MaxValue or TableNames.Default or TableNames.Main or TableNames.Local)
            throw new InputException(field, $"table '{nameOrId}' cannot take id {fresh}: a table id (TableId, Tables) is 1 to {int.MaxValue}, except 253-255 (default, main, local)");
        if (Tables.TryGetName(fresh, out var other))
            throw new InputException(field, $"table '{nameOrId}' would take id {fresh}, which rt_tables already names '{other}'; choose another id");
        Tables.Add(fresh, nameOrId);
        _pendingTables.Add((fresh, nameOrId));
        return fresh;
    }

    public byte ResolveProtocol(string field, uint id, string name)
    {
        if (id is 0 or > 255) throw new InputException(field, $"{id} is not a route protocol number (1 to 255)");
        if (Protocols.TryGetName(id, out var existing))
        {
            if (existing != name && existing is "kernel" or "boot" or "static" or "redirect" or "unspec")
                throw new InputException(field, $"{id} is iproute2's '{existing}'; TunnelRouter must own its own number");
        }
        else
        {
            Protocols.Add(id, name);
            _pendingProtocols.Add((id, name));
        }
        return (byte)id;
    }

    public bool HasPendingNames => _pendingTables.Count + _pendingProtocols.Count > 0;

    /// <summary>Writes names the host lacked to TunnelRouter's drop-ins (atomically, by rename).</summary>
    public void WriteDropIns()
    {
        Write("rt_tables.d", _pendingTables);
        Write("rt_protos.d", _pendingProtocols);
        _pendingTables.Clear();
        _pendingProtocols.Clear();
    }

    void Write(string sub, List<(uint Id, string Name)> entries)
    {
        if (entries.Count == 0) return;
        var dir = Path.Combine(_dir, sub);
        Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                                       | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        var path = Path.Combine(dir, DropInName);
        var text = File.Exists(path) ? File.ReadAllText(path) : "# Written by tunnel-router: names it introduced. Safe to edit.\n";
        if (!text.EndsWith('\n')) text += "\n";
        foreach (var (id, name) in entries) text += $"{id}\t{name}\n";
        var tmp = path + ".tmp." + Environment.ProcessId;
        // 0644 whatever the umask (OpenVPN may run hooks with umask 0): a table name others could edit
        // would let them redirect what a rule looks up.
        using (var f = new FileStream(tmp, new FileStreamOptions
               {
                   Mode = FileMode.Create, Access = FileAccess.Write,
                   UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
               }))
            f.Write(System.Text.Encoding.UTF8.GetBytes(text));
        File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        File.Move(tmp, path, overwrite: true);
    }

    static bool IsValidName(string name) =>
        name.Length is > 0 and <= 64 && char.IsAsciiLetter(name[0]) && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');
}
