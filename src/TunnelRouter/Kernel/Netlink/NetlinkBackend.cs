using System.Net;
using System.Net.Sockets;
using TunnelRouter.Core;
using TunnelRouter.Interop;

namespace TunnelRouter.Kernel;

/// <summary>
/// The rtnetlink backend (the default): routes and rules go to the kernel over one NETLINK_ROUTE socket,
/// many requests per send with one ack each, matched back by sequence number. No process is forked, and
/// every failure carries the kernel's own errno. The wire format of each object lives in
/// <see cref="NetlinkRoutes"/> and <see cref="NetlinkRules"/>; the socket and its errno in Interop/.
/// </summary>
public sealed partial class NetlinkBackend : IKernel, IDisposable
{
    // Requests per send: their acks must fit the socket's receive buffer. An ack (NETLINK_CAP_ACK) takes
    // well under 1 KiB of it, so 1024 fit the 4 MiB asked for; 128 fit the default 208 KiB.
    const int LargeBatch = 1024, SmallBatch = 128;
    const int ReceiveBuffer = 4 << 20;
    // A send must stay below the socket's send buffer (default 208 KiB).
    const int MaxBatchBytes = 128 * 1024;
    const int DumpAttempts = 5;

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

        var routes = new List<Route>();
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
        return new KernelState(routes, rules);
    }

    /// <summary>Equivalent to: ip -4 route show table TABLE [dev DEV] (every protocol, unicast and the
    /// blackhole-like types; the kernel's local/broadcast/multicast routes are not TunnelRouter's business).</summary>
    void DumpRoutes(List<Route> into, byte family, uint? table, uint? oif, InterfaceNames names)
    {
        var start = into.Count;
        for (var attempt = 1; ; attempt++)
        {
            _writer.Reset();
            var seq = Socket.NextSequence();
            NetlinkRoutes.WriteDump(_writer, seq, family, table, oif);
            try
            {
                if (Socket.Dump(_writer, seq, (in nlmsghdr h, ReadOnlySpan<byte> payload) =>
                    {
                        if (h.nlmsg_type != Nl.RTM_NEWROUTE) return;
                        // Without strict checking the kernel ignores the filter: it is applied here as well.
                        if (NetlinkRoutes.Parse(payload, names) is { } r && (table is null || r.Table == table)
                            && (oif is null || r.Device == names.Of(oif.Value)))
                            into.Add(r);
                    }))
                    return;
            }
            // A table that never held a route does not exist yet: it is empty, not an error.
            catch (NetlinkException e) when (e.Errno == Errno.ENOENT && table is not null)
            {
                into.RemoveRange(start, into.Count - start);
                return;
            }
            into.RemoveRange(start, into.Count - start);
            if (attempt == DumpAttempts)
                throw new NetlinkException($"the routing table kept changing while it was read ({DumpAttempts} attempts)") { Errno = Errno.EAGAIN };
        }
    }

    /// <summary>Equivalent to: ip -4 rule show</summary>
    void DumpRules(List<Rule> into, byte family)
    {
        var start = into.Count;
        for (var attempt = 1; ; attempt++)
        {
            _writer.Reset();
            var seq = Socket.NextSequence();
            NetlinkRules.WriteDump(_writer, seq, family);
            if (Socket.Dump(_writer, seq, (in nlmsghdr h, ReadOnlySpan<byte> payload) =>
                {
                    if (h.nlmsg_type == Nl.RTM_NEWRULE && NetlinkRules.Parse(payload) is { } r) into.Add(r);
                }))
                return;
            into.RemoveRange(start, into.Count - start);
            if (attempt == DumpAttempts)
                throw new NetlinkException($"the rules kept changing while they were read ({DumpAttempts} attempts)") { Errno = Errno.EAGAIN };
        }
    }

    /// <summary>
    /// Sends the changes in batches (one send, one ack per change). The kernel carries on after a failed
    /// request, so when change k of a batch fails, the later changes of that batch that did take effect are
    /// undone here: what this reports (k applied, change k failed) is then exactly the kernel's state, and
    /// the caller's rollback or "already so" handling stays right.
    /// </summary>
    public void Apply(IReadOnlyList<Change> changes)
    {
        // Runs of what rtnetlink here makes go out in batches; GRE links are made by iproute2 (see Links).
        var i = 0;
        while (i < changes.Count)
        {
            var native = IsNative(changes[i]);
            var j = i;
            while (j < changes.Count && IsNative(changes[j]) == native) j++;
            var run = i == 0 && j == changes.Count ? changes : changes.Skip(i).Take(j - i).ToList();
            try
            {
                if (native) ApplyNative(run);
                else Iproute2.Apply(run);
            }
            catch (ChangeFailedException e) when (i > 0)
            {
                throw new ChangeFailedException(e.Message, e.Applied + i, e.Failed, e) { Errno = e.Errno };
            }
            i = j;
        }
    }

    void ApplyNative(IReadOnlyList<Change> changes)
    {
        if (changes.Count > SmallBatch && !_grown)
        {
            _grown = true;
            if (Socket.GrowReceiveBuffer(ReceiveBuffer)) _batch = LargeBatch;
        }
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
                if (end > done && relinked.Count > 0 && DevicesOf(changes[end]).Any(relinked.Contains)) break;
                if (changes[end] is AddLink made) relinked.Add(made.Tunnel.Name);
                if (changes[end] is DeleteLink gone) relinked.Add(gone.Tunnel.Name);
                refused = Encode(changes[end], firstSeq + (uint)(end - done), devices, out var reason);
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
        AddLink c when c.Tunnel.Underlay is { } u => [u],
        ChangeLink c => c.New.Underlay is { } u ? [c.New.Name, u] : [c.New.Name],
        DeleteLink c => [c.Tunnel.Name],
        SetLinkUp c => [c.Name],
        SetLinkDown c => [c.Name],
        SetLinkMtu c => [c.Name],
        SetLinkAlias c => [c.Name],
        AddAddress c => [c.Device],
        DeleteAddress c => [c.Device],
        _ => [],
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
            case var link when IsNative(link):
                return EncodeLinkChange(link, seq, devices, out reason);
            default:
                reason = $"the netlink backend cannot apply {change.GetType().Name}";
                return Errno.EOPNOTSUPP;
        }
    }

    int EncodeRoute(Route route, ushort type, ushort flags, uint seq, DeviceIndexes devices, out string? reason)
    {
        reason = null;
        var oif = 0u;
        if (route.Device is not null && (oif = devices.Of(route.Device)) == 0)
        {
            reason = $"Cannot find device \"{route.Device}\"";
            // A route goes with its device: if the device is gone, so is the route.
            return type == Nl.RTM_DELROUTE ? Errno.ESRCH : Errno.ENODEV;
        }
        NetlinkRoutes.Write(_writer, type, flags, seq, route, oif);
        return 0;
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

/// <summary>if_indextoname, once per index per read: a dump of 10,000 routes names a handful of devices.</summary>
internal sealed class InterfaceNames
{
    readonly Dictionary<uint, string?> _known = [];

    public string? Of(uint index)
    {
        if (!_known.TryGetValue(index, out var name)) _known[index] = name = Libc.InterfaceName(index);
        return name;
    }
}

/// <summary>Routes as rtnetlink messages (rtmsg + RTA_* attributes), both ways.</summary>
internal static class NetlinkRoutes
{
    /// <summary>
    /// Equivalent to: ip route add|replace|del TYPE DST via GW dev DEV src PREFSRC table T proto P metric M onlink mtu MTU.
    /// The scope is what iproute2 picks: link for a unicast route without a gateway, universe otherwise,
    /// "nowhere" (any) for a delete.
    /// </summary>
    public static void Write(NetlinkWriter w, ushort type, ushort flags, uint seq, Route r, uint oif)
    {
        w.BeginMessage(type, (ushort)(Nl.NLM_F_REQUEST | Nl.NLM_F_ACK | flags), seq);
        var delete = type == Nl.RTM_DELROUTE;
        w.Put(new rtmsg
        {
            rtm_family = Family(r.Family),
            rtm_dst_len = (byte)r.Destination.PrefixLength,
            // Tables above 255 only fit RTA_TABLE; rtm_table then says "see the attribute".
            rtm_table = r.Table < 256 ? (byte)r.Table : Nl.RT_TABLE_UNSPEC,
            rtm_protocol = r.Protocol,
            rtm_scope = delete ? Nl.RT_SCOPE_NOWHERE
                : r.Type == RouteType.Unicast && r.Gateway is null ? Nl.RT_SCOPE_LINK : Nl.RT_SCOPE_UNIVERSE,
            rtm_type = (byte)r.Type,
            rtm_flags = r.OnLink ? Nl.RTNH_F_ONLINK : 0,
        });
        w.AttrU32(Nl.RTA_TABLE, r.Table);
        if (r.Destination.PrefixLength > 0) w.AttrAddress(Nl.RTA_DST, r.Destination.BaseAddress);
        if (r.Gateway is not null) w.AttrAddress(Nl.RTA_GATEWAY, r.Gateway);
        if (oif != 0) w.AttrU32(Nl.RTA_OIF, oif);
        if (r.Source is not null) w.AttrAddress(Nl.RTA_PREFSRC, r.Source);
        if (r.Metric != 0) w.AttrU32(Nl.RTA_PRIORITY, r.Metric);
        if (r.Mtu != 0)
        {
            var metrics = w.BeginNest(Nl.RTA_METRICS);
            w.AttrU32(Nl.RTAX_MTU, r.Mtu);
            w.EndNest(metrics);
        }
        w.EndMessage();
    }

    /// <summary>Equivalent to: ip -4 route show table TABLE [dev DEV]. With strict checking (Linux 4.20)
    /// the kernel dumps only that table and device.</summary>
    public static void WriteDump(NetlinkWriter w, uint seq, byte family, uint? table, uint? oif)
    {
        w.BeginMessage(Nl.RTM_GETROUTE, Nl.NLM_F_REQUEST | Nl.NLM_F_DUMP, seq);
        w.Put(new rtmsg { rtm_family = family });
        if (table is { } t) w.AttrU32(Nl.RTA_TABLE, t);
        if (oif is { } o) w.AttrU32(Nl.RTA_OIF, o);
        w.EndMessage();
    }

    /// <summary>A route of a dump, or null for what TunnelRouter does not model (local, broadcast,
    /// multicast and anycast routes, cached clones, source-specific IPv6 routes).</summary>
    public static Route? Parse(ReadOnlySpan<byte> payload, InterfaceNames names)
    {
        var m = NetlinkReader.Read<rtmsg>(payload);
        var type = (RouteType)m.rtm_type;
        if (!Enum.IsDefined(type) || (m.rtm_flags & Nl.RTM_F_CLONED) != 0 || m.rtm_src_len != 0) return null;
        if (m.rtm_family is not (Nl.AF_INET or Nl.AF_INET6)) return null;
        var family = m.rtm_family == Nl.AF_INET6 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork;

        IPAddress? dst = null, gateway = null, prefsrc = null;
        uint table = m.rtm_table, oif = 0, mtu = 0;
        uint? metric = null;
        var attrs = NetlinkReader.AttributesAfter(payload, System.Runtime.InteropServices.Marshal.SizeOf<rtmsg>());
        while (NetlinkReader.NextAttribute(ref attrs, out var t, out var value))
        {
            switch (t)
            {
                case Nl.RTA_DST: dst = NetlinkReader.Address(value); break;
                case Nl.RTA_GATEWAY: gateway = NetlinkReader.Address(value); break;
                case Nl.RTA_PREFSRC: prefsrc = NetlinkReader.Address(value); break;
                case Nl.RTA_OIF: oif = NetlinkReader.U32(value); break;
                case Nl.RTA_PRIORITY: metric = NetlinkReader.U32(value); break;
                case Nl.RTA_TABLE: table = NetlinkReader.U32(value); break;
                case Nl.RTA_METRICS:
                    var nested = value;
                    while (NetlinkReader.NextAttribute(ref nested, out var mt, out var mv))
                        if (mt == Nl.RTAX_MTU) mtu = NetlinkReader.U32(mv);
                    break;
            }
        }
        dst ??= family == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any;
        var device = type == RouteType.Unicast && oif != 0 ? names.Of(oif) : null;
        return new Route(Net.Masked(dst, m.rtm_dst_len), table, m.rtm_protocol, device, gateway, prefsrc,
            metric ?? (family == AddressFamily.InterNetworkV6 ? Route.DefaultV6Metric : 0), type,
            (m.rtm_flags & Nl.RTNH_F_ONLINK) != 0, mtu);
    }

    public static byte Family(AddressFamily family) => family == AddressFamily.InterNetworkV6 ? Nl.AF_INET6 : Nl.AF_INET;
}

/// <summary>Policy routing rules as rtnetlink messages (fib_rule_hdr + FRA_* attributes), both ways.</summary>
internal static class NetlinkRules
{
    /// <summary>
    /// Equivalent to: ip rule add|del [not] from SRC to DST fwmark M/MASK iif I oif O ipproto P sport A-B
    /// dport C-D uidrange U-V tos T suppress_prefixlength N pref PRIO lookup TABLE|blackhole|... protocol PROTO.
    /// </summary>
    public static void Write(NetlinkWriter w, ushort type, ushort flags, uint seq, Rule r)
    {
        w.BeginMessage(type, (ushort)(Nl.NLM_F_REQUEST | Nl.NLM_F_ACK | flags), seq);
        var lookup = r.Action == RuleAction.Lookup;
        w.Put(new fib_rule_hdr
        {
            family = NetlinkRoutes.Family(r.Family),
            dst_len = (byte)(r.To?.PrefixLength ?? 0),
            src_len = (byte)(r.From?.PrefixLength ?? 0),
            tos = r.Tos,
            table = lookup && r.Table < 256 ? (byte)r.Table : Nl.RT_TABLE_UNSPEC,
            action = (byte)r.Action,
            flags = r.Not ? Nl.FIB_RULE_INVERT : 0,
        });
        w.AttrU32(Nl.FRA_PRIORITY, r.Priority);
        if (lookup) w.AttrU32(Nl.FRA_TABLE, r.Table);
        if (r.From is { } from) w.AttrAddress(Nl.FRA_SRC, from.BaseAddress);
        if (r.To is { } to) w.AttrAddress(Nl.FRA_DST, to.BaseAddress);
        if (r.FwMark is { } mark)
        {
            if (mark != 0) w.AttrU32(Nl.FRA_FWMARK, mark);
            // Always explicit: for "fwmark 0" the kernel would otherwise keep no mask, and no match at all.
            w.AttrU32(Nl.FRA_FWMASK, r.FwMask ?? uint.MaxValue);
        }
        if (r.Iif is not null) w.AttrString(Nl.FRA_IIFNAME, r.Iif);
        if (r.Oif is not null) w.AttrString(Nl.FRA_OIFNAME, r.Oif);
        if (r.IpProto is { } proto) w.AttrU8(Nl.FRA_IP_PROTO, proto);
        if (r.SourcePort is { } sp) w.AttrStruct(Nl.FRA_SPORT_RANGE, new fib_rule_port_range { start = sp.Start, end = sp.End });
        if (r.DestinationPort is { } dp) w.AttrStruct(Nl.FRA_DPORT_RANGE, new fib_rule_port_range { start = dp.Start, end = dp.End });
        if (r.UidRange is { } uid) w.AttrStruct(Nl.FRA_UID_RANGE, new fib_rule_uid_range { start = uid.Start, end = uid.End });
        if (r.SuppressPrefixLength is { } spl) w.AttrU32(Nl.FRA_SUPPRESS_PREFIXLEN, unchecked((uint)spl));
        w.AttrU8(Nl.FRA_PROTOCOL, r.Protocol);
        w.EndMessage();
    }

    /// <summary>Equivalent to: ip -4 rule show</summary>
    public static void WriteDump(NetlinkWriter w, uint seq, byte family)
    {
        w.BeginMessage(Nl.RTM_GETRULE, Nl.NLM_F_REQUEST | Nl.NLM_F_DUMP, seq);
        w.Put(new fib_rule_hdr { family = family });
        w.EndMessage();
    }

    public static Rule? Parse(ReadOnlySpan<byte> payload)
    {
        var h = NetlinkReader.Read<fib_rule_hdr>(payload);
        if (h.family is not (Nl.AF_INET or Nl.AF_INET6)) return null;
        var family = h.family == Nl.AF_INET6 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork;

        uint priority = 0, table = h.table;
        byte protocol = 0;
        IPNetwork? from = null, to = null;
        uint? mark = null, mask = null;
        string? iif = null, oif = null;
        PortRange? sport = null, dport = null;
        byte? ipProto = null;
        UidRange? uid = null;
        int? suppress = null;
        var attrs = NetlinkReader.AttributesAfter(payload, System.Runtime.InteropServices.Marshal.SizeOf<fib_rule_hdr>());
        while (NetlinkReader.NextAttribute(ref attrs, out var t, out var value))
        {
            switch (t)
            {
                case Nl.FRA_PRIORITY: priority = NetlinkReader.U32(value); break;
                case Nl.FRA_TABLE: table = NetlinkReader.U32(value); break;
                case Nl.FRA_PROTOCOL: protocol = value.Length > 0 ? value[0] : (byte)0; break;
                case Nl.FRA_SRC: from = Net.Masked(NetlinkReader.Address(value), h.src_len); break;
                case Nl.FRA_DST: to = Net.Masked(NetlinkReader.Address(value), h.dst_len); break;
                case Nl.FRA_FWMARK: mark = NetlinkReader.U32(value); break;
                case Nl.FRA_FWMASK: mask = NetlinkReader.U32(value); break;
                case Nl.FRA_IIFNAME: iif = NetlinkReader.String(value); break;
                case Nl.FRA_OIFNAME: oif = NetlinkReader.String(value); break;
                case Nl.FRA_IP_PROTO: ipProto = value.Length > 0 ? value[0] : null; break;
                case Nl.FRA_SPORT_RANGE: sport = Ports(value); break;
                case Nl.FRA_DPORT_RANGE: dport = Ports(value); break;
                case Nl.FRA_UID_RANGE:
                    var u = NetlinkReader.Read<fib_rule_uid_range>(value);
                    uid = new UidRange(u.start, u.end);
                    break;
                case Nl.FRA_SUPPRESS_PREFIXLEN: suppress = unchecked((int)NetlinkReader.U32(value)); break;
            }
        }
        return new Rule(family, priority, (RuleAction)h.action, table, protocol, from, to,
            not: (h.flags & Nl.FIB_RULE_INVERT) != 0, fwMark: mark, fwMask: mask, iif: iif, oif: oif,
            sourcePort: sport, destinationPort: dport, ipProto: ipProto, uidRange: uid, tos: h.tos,
            suppressPrefixLength: suppress);
    }

    static PortRange Ports(ReadOnlySpan<byte> value)
    {
        var p = NetlinkReader.Read<fib_rule_port_range>(value);
        return new PortRange(p.start, p.end);
    }
}
