using System.Net;
using System.Net.Sockets;
using TunnelRouter.Core;
using TunnelRouter.Interop;

namespace TunnelRouter.Kernel.Netlink;

/// <summary>
/// The rtnetlink backend (the default): routes and rules go to the kernel over one NETLINK_ROUTE socket,
/// many requests per send with one ack each, matched back by sequence number. No process is forked, and
/// every failure carries the kernel's own errno. The wire format of each object lives in <see cref="NetlinkRoutes"/>,
/// <see cref="NetlinkRules"/>, <see cref="NetlinkLinks"/> and <see cref="NetlinkAddresses"/>; the socket and the dump in
/// <see cref="NetlinkSocket"/>, the libc calls under it in Interop/.
/// </summary>
public sealed partial class NetlinkBackend : IKernel, IDisposable
{
    // Requests per send: their acks must fit the socket's receive buffer. An ack (NETLINK_CAP_ACK) takes
    // well under 1 KiB of it, so 1024 fit the 4 MiB asked for; 128 fit the default 208 KiB.
    const int LargeBatch = 1024, SmallBatch = 128;
    const int ReceiveBuffer = 4 << 20;
    // A send must stay below the socket's send buffer (default 208 KiB).
    const int MaxBatchBytes = 128 * 1024;

    NetlinkSocket? _socket;
    readonly NetlinkWriter _writer = new();
    int _batch = SmallBatch;
    bool _grown;

    public string Name => "netlink";

    NetlinkSocket Socket => _socket ??= NetlinkSocket.Open();

    public bool LinkExists(string name) => Libc.InterfaceIndex(name) != 0;

    public KernelState Read(StateQuery query)
    {
        var names = new InterfaceNames();
        uint? oif = null;
        if (query.Device is not null)
        {
            var index = Libc.InterfaceIndex(query.Device);
            // Routes on a device that does not exist do not exist either.
            oif = index == 0 ? null : index;
        }

        var routes = new PackedRoutes();
        if (query.Device is null || oif is not null)
            foreach (var family in (ReadOnlySpan<byte>)[Nl.AF_INET, Nl.AF_INET6])
            {
                if (query.Tables is null) DumpRoutes(routes, family, null, oif, names);
                else
                    foreach (var table in query.Tables) DumpRoutes(routes, family, table, oif, names);
            }

        var rules = new List<Rule>();
        if (query.Rules)
            foreach (var family in (ReadOnlySpan<byte>)[Nl.AF_INET, Nl.AF_INET6])
                DumpRules(rules, family);
        // A device's read (the hook's) has no use for them: nexthops are the policy's, by no device.
        return new KernelState(routes, rules) { Nexthops = query.Device is null ? DumpNexthops(names) : [] };
    }

    /// <summary>Equivalent to: ip nexthop show (every owner's). Empty on a kernel without nexthop objects (before 5.3).</summary>
    List<Nexthop> DumpNexthops(InterfaceNames names)
    {
        var into = new List<Nexthop>();
        try
        {
            Socket.Dump(_writer, "the nexthop list", (w, seq) => NetlinkNexthops.WriteDump(w, seq),
                (in nlmsghdr h, ReadOnlySpan<byte> payload) =>
                {
                    if (h.nlmsg_type == Nl.RTM_NEWNEXTHOP && NetlinkNexthops.Parse(payload, names) is { } n) into.Add(n);
                },
                () => into.Clear());
        }
        catch (NetlinkException e) when (e.Errno is Errno.EINVAL or Errno.EOPNOTSUPP) { }
        return into;
    }

    /// <summary>Equivalent to: ip -4 route show table TABLE [dev DEV] (every protocol, unicast and the
    /// blackhole-like types; the kernel's local/broadcast/multicast routes are not TunnelRouter's business).</summary>
    void DumpRoutes(PackedRoutes into, byte family, uint? table, uint? oif, InterfaceNames names)
    {
        var start = into.Count;
        try
        {
            Socket.Dump(_writer, "the routing table", (w, seq) => NetlinkRoutes.WriteDump(w, seq, family, table, oif),
                (in nlmsghdr h, ReadOnlySpan<byte> payload) =>
                {
                    if (h.nlmsg_type != Nl.RTM_NEWROUTE) return;
                    // Without strict checking the kernel ignores the filter: it is applied here as well.
                    if (!NetlinkRoutes.TryParse(payload, names, into)) return;
                    ref readonly var r = ref into.At(into.Count - 1);
                    if ((table is not null && r.Key.Table != table) || (oif is not null && r.Tail.Device != names.Of(oif.Value)))
                        into.Truncate(into.Count - 1);
                },
                () => into.Truncate(start));
        }
        // A table that never held a route does not exist yet: it is empty, not an error.
        catch (NetlinkException e) when (e.Errno == Errno.ENOENT && table is not null) { }
    }

    /// <summary>Equivalent to: ip -4 rule show</summary>
    void DumpRules(List<Rule> into, byte family)
    {
        var start = into.Count;
        Socket.Dump(_writer, "the rule list", (w, seq) => NetlinkRules.WriteDump(w, seq, family),
            (in nlmsghdr h, ReadOnlySpan<byte> payload) =>
            {
                if (h.nlmsg_type == Nl.RTM_NEWRULE && NetlinkRules.Parse(payload) is { } r) into.Add(r);
            },
            () => into.RemoveRange(start, into.Count - start));
    }

    /// <summary>
    /// Sends the changes in batches (one send, one ack per change). The kernel carries on after a failed
    /// request, so when change k of a batch fails, the later changes of that batch that did take effect are
    /// undone here: what this reports (k applied, change k failed) is then exactly the kernel's state, and
    /// the caller's rollback or "already so" handling stays right.
    /// </summary>
    public void Apply(IReadOnlyList<Change> changes)
    {
        if (changes.Count > SmallBatch && !_grown)
        {
            _grown = true;
            if (Socket.GrowReceiveBuffer(ReceiveBuffer)) _batch = LargeBatch;
        }
        var packed = changes as IPackedChanges;
        var done = 0;
        while (done < changes.Count)
        {
            _writer.Reset();
            // Interface indexes are resolved when a request is written, so a link made or removed in this
            // batch ends it: what uses that name goes in the next batch, resolved afresh.
            var devices = new DeviceIndexes();
            var relinked = new HashSet<string>(StringComparer.Ordinal);
            var firstSeq = Socket.ReserveSequences(_batch);
            var end = done;
            var refused = 0;
            while (end < changes.Count && end - done < _batch && _writer.Length < MaxBatchBytes)
            {
                string? reason;
                var seq = firstSeq + (uint)(end - done);
                // A route of a packed list is written from it, without a change and a route made for it.
                if (packed is not null && packed.TryPacked(end, out var route, out var delete))
                {
                    if (end > done && route.Tail.Device is { } d && relinked.Contains(d)) break;
                    refused = EncodeRoute(route, delete, seq, devices, out reason);
                }
                else
                {
                    var change = changes[end];
                    if (end > done && relinked.Count > 0 && DevicesOf(change).Any(relinked.Contains)) break;
                    if (change is AddLink made) relinked.Add(made.Tunnel.Name);
                    if (change is DeleteLink gone) relinked.Add(gone.Tunnel.Name);
                    refused = Encode(change, seq, devices, out reason);
                }
                if (refused != 0)
                {
                    if (end == done) throw Failed(changes, end, refused, reason);
                    break;
                }
                end++;
            }

            var errnos = new int[end - done];
            var kernelText = Socket.Exchange(_writer, firstSeq, errnos);
            var failed = Array.FindIndex(errnos, e => e != 0);
            if (failed >= 0)
            {
                var undone = Undo(changes, done + failed + 1, errnos.AsSpan(failed + 1), devices);
                throw Failed(changes, done + failed, errnos[failed], kernelText, undone);
            }
            done = end;
        }
    }

    /// <summary>The interface names a change's request refers to.</summary>
    static IEnumerable<string> DevicesOf(Change change) => change switch
    {
        AddRoute c when c.Route.Device is { } d => [d],
        DeleteRoute c when c.Route.Device is { } d => [d],
        ReplaceRoute c when c.New.Device is { } d => [d],
        AddNexthop c when c.Nexthop.Device is { } d => [d],
        ReplaceNexthop c when c.New.Device is { } d => [d],
        // The link an AddLink makes is no name to resolve yet; its underlay is.
        AddLink c => c.Tunnel.Underlay is { } u ? [u] : [],
        ChangeLink c => c.New.Underlay is { } u ? [c.New.Name, u] : [c.New.Name],
        _ => LinkDevice(change) is { } d ? [d] : [],
    };

    /// <summary>Reverts, newest first, the changes from <paramref name="from"/> on that took effect
    /// (<paramref name="errnos"/>[i] == 0). Returns null, or what could not be undone.</summary>
    string? Undo(IReadOnlyList<Change> changes, int from, ReadOnlySpan<int> errnos, DeviceIndexes devices)
    {
        var undo = new List<Change>();
        for (var i = errnos.Length - 1; i >= 0; i--)
            if (errnos[i] == 0) undo.AddRange(changes[from + i].Undo());
        if (undo.Count == 0) return null;
        _writer.Reset();
        var firstSeq = Socket.ReserveSequences(undo.Count);
        var results = new int[undo.Count];
        for (var i = 0; i < undo.Count; i++) results[i] = Encode(undo[i], firstSeq + (uint)i, devices, out _);
        Socket.Exchange(_writer, firstSeq, results);
        var left = Array.FindIndex(results, e => e != 0);
        return left < 0 ? null : $"'{undo[left]}' failed too ({NetlinkException.Describe(results[left])})";
    }

    static ChangeFailedException Failed(IReadOnlyList<Change> changes, int index, int errno, string? kernelText, string? undone = null)
    {
        var change = changes[index];
        var message = $"{change}: {NetlinkException.Describe(errno)}{(string.IsNullOrEmpty(kernelText) ? "" : $" ({kernelText})")}";
        if (undone is not null) message += $"; undoing the rest of its batch: {undone}";
        return new ChangeFailedException(message, index, change, new NetlinkException(message) { Errno = errno }) { Errno = errno };
    }

    /// <summary>Appends the request of <paramref name="change"/>; returns 0, or the errno it cannot be
    /// sent with (a device that does not exist).</summary>
    int Encode(Change change, uint seq, DeviceIndexes devices, out string? reason)
    {
        reason = null;
        switch (change)
        {
            case AddRoute a: return EncodeRoute(a.Route, Nl.RTM_NEWROUTE, Nl.NLM_F_CREATE | Nl.NLM_F_EXCL, seq, devices, out reason);
            case ReplaceRoute r: return EncodeRoute(r.New, Nl.RTM_NEWROUTE, Nl.NLM_F_CREATE | Nl.NLM_F_REPLACE, seq, devices, out reason);
            case DeleteRoute d: return EncodeRoute(d.Route, Nl.RTM_DELROUTE, 0, seq, devices, out reason);
            case AddRule a:
                NetlinkRules.Write(_writer, Nl.RTM_NEWRULE, Nl.NLM_F_CREATE | Nl.NLM_F_EXCL, seq, a.Rule);
                return 0;
            case DeleteRule d:
                NetlinkRules.Write(_writer, Nl.RTM_DELRULE, 0, seq, d.Rule);
                return 0;
            case AddNexthop a: return EncodeNexthop(a.Nexthop, Nl.NLM_F_CREATE | Nl.NLM_F_EXCL, seq, devices, out reason);
            case ReplaceNexthop r: return EncodeNexthop(r.New, Nl.NLM_F_CREATE | Nl.NLM_F_REPLACE, seq, devices, out reason);
            case DeleteNexthop d:
                NetlinkNexthops.WriteDelete(_writer, seq, d.Nexthop.Id);
                return 0;
            default:
                return EncodeLinkChange(change, seq, devices, out reason);
        }
    }

    int EncodeNexthop(Nexthop n, ushort flags, uint seq, DeviceIndexes devices, out string? reason)
    {
        var refused = DeviceOf(n.Device, false, devices, out var oif, out reason);
        if (refused == 0) NetlinkNexthops.Write(_writer, flags, seq, n, oif);
        return refused;
    }

    int EncodeRoute(Route route, ushort type, ushort flags, uint seq, DeviceIndexes devices, out string? reason)
    {
        var refused = DeviceOf(route.Device, type == Nl.RTM_DELROUTE, devices, out var oif, out reason);
        if (refused == 0) NetlinkRoutes.Write(_writer, type, flags, seq, route, oif);
        return refused;
    }

    int EncodeRoute(in PackedRoute route, bool delete, uint seq, DeviceIndexes devices, out string? reason)
    {
        var refused = DeviceOf(route.Tail.Device, delete, devices, out var oif, out reason);
        if (refused == 0)
            NetlinkRoutes.Write(_writer, delete ? Nl.RTM_DELROUTE : Nl.RTM_NEWROUTE, delete ? (ushort)0 : (ushort)(Nl.NLM_F_CREATE | Nl.NLM_F_EXCL), seq, route, oif);
        return refused;
    }

    /// <summary>The index of a route's device (0 for none); an errno when the device does not exist.</summary>
    static int DeviceOf(string? device, bool delete, DeviceIndexes devices, out uint oif, out string? reason)
    {
        reason = null;
        oif = 0;
        if (device is null || (oif = devices.Of(device)) != 0) return 0;
        reason = $"Cannot find device \"{device}\"";
        // A route goes with its device: if the device is gone, so is the route.
        return delete ? Errno.ESRCH : Errno.ENODEV;
    }

    public void Dispose()
    {
        _socket?.Dispose();
        _socket = null;
    }

    /// <summary>if_nametoindex, once per name per apply.</summary>
    sealed class DeviceIndexes
    {
        readonly Dictionary<string, uint> _known = new(StringComparer.Ordinal);

        public uint Of(string name)
        {
            if (!_known.TryGetValue(name, out var index)) _known[name] = index = Libc.InterfaceIndex(name);
            return index;
        }
    }
}
