using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using TunnelRouter.Core;
using TunnelRouter.Interop;

namespace TunnelRouter.Host;

/// <summary>
/// iproute2's name files, read the way iproute2 reads them: DIR/rt_tables (else
/// /usr/share/iproute2/rt_tables) plus every rt_tables.d/*.conf; likewise rt_protos. Names TunnelRouter
/// introduces go to its own drop-in, DIR/rt_tables.d/tunnel-router.conf; rt_tables itself is never edited.
/// </summary>
public sealed class Iproute2Files
{
    public const string DropInName = "tunnel-router.conf";
    const string VendorDir = "/usr/share/iproute2";

    /// <summary>The directory the names came from; null for names given as data (specs), where no file names an id.</summary>
    readonly string? _dir;
    readonly List<NewName> _pending = [];

    Iproute2Files(string? dir, TableNames tables, ProtocolNames protocols)
    {
        _dir = dir;
        Tables = tables;
        Protocols = protocols;
    }

    public TableNames Tables { get; }
    public ProtocolNames Protocols { get; }

    /// <summary>Names given as data, read from no file: what specs parse a policy against.</summary>
    public static Iproute2Files Of(TableNames? tables = null, ProtocolNames? protocols = null) =>
        new(null, tables?.Copy() ?? new TableNames(), protocols?.Copy() ?? new ProtocolNames());

    /// <summary>A copy whose names grow without changing these: what a parse resolves against, so that parsing has no
    /// side effect. The names it adds are its <see cref="Pending"/>, which <see cref="Register"/> takes back here.</summary>
    public Iproute2Files Fork() => new(_dir, Tables.Copy(), Protocols.Copy());

    /// <summary>The names resolved here that the host's files lack, in the order they were given ids.</summary>
    public IReadOnlyList<NewName> Pending => [.. _pending];

    /// <summary>
    /// Takes the names a parse gave ids (<see cref="Pending"/> of its <see cref="Fork"/>) into these, for
    /// <see cref="WriteDropIns"/>. Checked again: names read afresh under the host lock may have given the name another
    /// id, or the id to another name, meanwhile.
    /// </summary>
    public void Register(IReadOnlyList<NewName> names)
    {
        foreach (var n in names)
        {
            if (n.Kind == NewName.Kinds.Protocol)
            {
                ResolveProtocol(n.Field, n.Id, n.Name);
                continue;
            }
            if (Tables.TryGetId(n.Name, out var existing) && existing != n.Id)
                throw new InputException(n.Field, $"{n.Id}: the host's rt_tables files already define '{n.Name}' as {existing}; use {existing}");
            ResolveTable(n.Field, n.Name, n.Id);
        }
    }

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
        foreach (var f in Files(dir, name)) map.Load(ReadNames(f));
    }

    /// <summary>rt_tables and rt_protos files are bounded; iproute2's own are a few kilobytes.</summary>
    const int MaxNameFileBytes = 1 << 20;

    /// <summary>One names file, read as <see cref="SafeFile.ReadSystemFile"/> does (a FIFO or /dev/zero at its name cannot
    /// hang or exhaust a hook); one that is refused stops the run with one line naming it.</summary>
    static string ReadNames(string path)
    {
        try { return System.Text.Encoding.UTF8.GetString(SafeFile.ReadSystemFile(path, MaxNameFileBytes) ?? []); }
        catch (FileRefusedException e) { throw new EnvironmentException($"{path} {e.Message}; iproute2's name files are small regular files of root's"); }
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
            throw new InputException(field, $"table '{nameOrId}' would take id {fresh}, which {FileNaming(fresh) ?? "rt_tables"} already names '{other}'; " +
                                            $"leave TableId unset (a free id from {AutoTableFirst}-{AutoTableLast} is taken) or set it to a free one, e.g. setenv TUNNEL_ROUTER_TABLEID {FreeTableId() ?? AutoTableLast}");
        Tables.Add(fresh, nameOrId);
        _pending.Add(new NewName(NewName.Kinds.Table, fresh, nameOrId, field));
        return fresh;
    }

    /// <summary>Where a new table name without a number takes its id: the first one no rt_tables file names.
    /// 200 is the eduVPN how-to's "vpn"; the range stays clear of 252 and of the reserved 253-255.</summary>
    public const uint AutoTableFirst = 200, AutoTableLast = 249;

    /// <summary>The hook's table: its id when a file names it; otherwise <paramref name="id"/>, or with none the
    /// first free id of <see cref="AutoTableFirst"/>-<see cref="AutoTableLast"/>.</summary>
    public uint ResolveAutoTable(string field, string nameOrId, uint? id)
    {
        if (id is not null || Tables.TryGetId(nameOrId, out _) || !IsValidName(nameOrId)) return ResolveTable(field, nameOrId, id);
        return ResolveTable(field, nameOrId, FreeTableId()
            ?? throw new InputException(field, $"table '{nameOrId}' needs an id, and every one of {AutoTableFirst}-{AutoTableLast} is named already; set TableId"));
    }

    uint? FreeTableId()
    {
        for (var id = AutoTableFirst; id <= AutoTableLast; id++)
            if (!Tables.TryGetName(id, out _)) return id;
        return null;
    }

    /// <summary>The rt_tables file that names a table id (the drop-in of an earlier tunnel, or rt_tables itself).</summary>
    string? FileNaming(uint id)
    {
        if (_dir is null) return null;
        foreach (var f in Files(_dir, "rt_tables"))
        {
            var one = new TableNames(numeric: true);
            try { one.Load(ReadNames(f)); }
            catch (Exception e) when (e is IOException or EnvironmentException) { continue; }
            if (one.TryGetName(id, out _) && id is not (TableNames.Default or TableNames.Main or TableNames.Local)) return f;
        }
        return null;
    }

    /// <summary>
    /// Route protocol numbers taken by others, whether or not this host's rt_protos names them: 0–18 (the
    /// kernel's RTPROT_* up to zebra 11, bird 12, dnrouted 13, xorp 14, ntk 15, dhcp 16, mrouted 17, keepalived 18),
    /// 42 (babel), 84 (openr), 99 (the reserved 99 of rt_protos), 186–192 (bgp, isis, ospf, rip, eigrp and their
    /// neighbours). flush deletes every route and rule carrying our number: one of theirs would delete theirs.
    /// </summary>
    public static bool IsReservedProtocol(uint id) => id is <= 18 or 42 or 84 or 99 or (>= 186 and <= 192);

    public byte ResolveProtocol(string field, uint id, string name)
    {
        if (id is 0 or > 255) throw new InputException(field, $"{id} is not a route protocol number (1 to 255)");
        if (Protocols.TryGetName(id, out var existing))
        {
            if (existing != name)
                throw new InputException(field, $"{id} is '{Net.Printable(existing)}' in rt_protos; tunnel-router deletes every route and rule " +
                                                "with its own number, so it must be one nobody else uses (the defaults: Protocol 147, HookProtocol 148)");
        }
        else if (IsReservedProtocol(id))
            throw new InputException(field, $"{id} is reserved for another routing daemon (0-18, 42, 84, 99, 186-192 are taken); tunnel-router " +
                                            "deletes every route and rule with its own number, so it must be one nobody else uses (the defaults: Protocol 147, HookProtocol 148)");
        else
        {
            Protocols.Add(id, name);
            _pending.Add(new NewName(NewName.Kinds.Protocol, id, name, field));
        }
        return (byte)id;
    }

    public bool HasPendingNames => _pending.Count > 0;

    /// <summary>
    /// Writes names the host lacked to TunnelRouter's drop-ins, and returns how to take them back (a run whose
    /// kernel changes fail leaves no name behind). Written before the kernel changes, under the host lock:
    /// names read under the same lock, so only what is still missing is appended.
    /// </summary>
    public Action WriteDropIns()
    {
        var undo = new List<Action>();
        try
        {
            Write("rt_tables.d", NewName.Kinds.Table, undo);
            Write("rt_protos.d", NewName.Kinds.Protocol, undo);
        }
        catch
        {
            Undo(undo);
            throw;
        }
        _pending.Clear();
        return () => Undo(undo);
    }

    static void Undo(List<Action> undo)
    {
        for (var i = undo.Count - 1; i >= 0; i--)
        {
            try { undo[i](); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or TunnelRouterException) { }
        }
        undo.Clear();
    }

    /// <summary>The largest drop-in read back: a few lines per table; anything near this is not ours.</summary>
    const int MaxDropInBytes = 1 << 20;

    void Write(string sub, NewName.Kinds kind, List<Action> undo)
    {
        var entries = _pending.Where(n => n.Kind == kind).Select(n => (n.Id, n.Name)).ToList();
        if (entries.Count == 0) return;
        if (_dir is null) throw new InvalidOperationException("names given as data have no directory to write to");
        // Root writes here on every VPN start: a directory someone else can write would let them put a symlink
        // at the drop-in's name (or its temporary name) and have root write, or chmod, any file.
        foreach (var d in new[] { _dir, Path.Combine(_dir, sub) })
        {
            if (Host.SafeDirectory.Ensure(d, Host.SafeDirectory.Mode755, "table or protocol names")) undo.Add(() => Directory.Delete(d));
        }
        var dir = Path.Combine(_dir, sub);
        var path = Path.Combine(dir, DropInName);
        var old = OwnedFile.Read(path, MaxDropInBytes);
        var text = old ?? "# Written by tunnel-router: names it introduced. Safe to edit.\n";
        if (!text.EndsWith('\n')) text += "\n";
        NameMap present = sub.StartsWith("rt_tables", StringComparison.Ordinal) ? new TableNames() : new ProtocolNames();
        present.Load(text);
        var added = 0;
        foreach (var (id, name) in entries)
        {
            if (present.TryGetName(id, out var existing) && existing == name) continue;
            text += $"{id}\t{name}\n";
            added++;
        }
        if (added == 0) return;
        OwnedFile.Replace(path, text);
        undo.Add(old is null ? () => File.Delete(path) : () => OwnedFile.Replace(path, old));
    }

    static bool IsValidName(string name) =>
        name.Length is > 0 and <= 64 && char.IsAsciiLetter(name[0]) && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');
}
