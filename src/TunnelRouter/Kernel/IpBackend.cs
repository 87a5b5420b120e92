using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using TunnelRouter.Core;
using TunnelRouter.Host;

namespace TunnelRouter.Kernel;

/// <summary>
/// The iproute2 backend: reads with <c>ip -j -d -N</c>, applies with <c>ip -4|-6 -batch -</c> (one
/// process per run of same-family changes, since a batch line cannot carry its own family and
/// "from all"/"default" would otherwise be read as IPv4).
/// </summary>
public sealed partial class IpBackend(ProcessRunner runner) : IKernel
{
    public string Name => "ip";

    public KernelState Read(StateQuery query)
    {
        var routes = new List<Route>();
        foreach (var family in (ReadOnlySpan<string>)["-4", "-6"])
        {
            if (query.Tables is null)
                routes.AddRange(ParseRoutes(Ip([family, "-j", "-d", "-N", "route", "show", "table", "all"]), null));
            else
                foreach (var table in query.Tables)
                {
                    // Equivalent to: ip -j -d -N -4 route show table 200
                    var args = new List<string> { family, "-j", "-d", "-N", "route", "show", "table", table.ToString(CultureInfo.InvariantCulture) };
                    if (query.Device is not null)
                    {
                        if (!LinkExists(query.Device)) continue;
                        args.AddRange(["dev", query.Device]);
                    }
                    routes.AddRange(ParseRoutes(Ip(args), table, query.Device));
                }
        }
        var rules = new List<Rule>();
        if (query.Rules)
        {
            // Equivalent to: ip -j -N -4 rule show
            rules.AddRange(ParseRules(Ip(["-4", "-j", "-N", "rule", "show"]), AddressFamily.InterNetwork));
            rules.AddRange(ParseRules(Ip(["-6", "-j", "-N", "rule", "show"]), AddressFamily.InterNetworkV6));
        }
        // A device's read (the hook's) has no use for them: nexthops are the policy's, by no device.
        return new KernelState(routes, rules) { Nexthops = query.Device is null ? ReadNexthops() : [] };
    }

    /// <summary>Equivalent to: ip -j -N nexthop show (every owner's); empty where the kernel has no nexthop objects.</summary>
    List<Nexthop> ReadNexthops()
    {
        var result = runner.Run(Tools.Ip, ["-j", "-N", "nexthop", "show"], check: false);
        return result.ExitCode == 0 ? [.. ParseNexthops(result.StandardOutput)] : [];
    }

    internal static IEnumerable<Nexthop> ParseNexthops(string json)
    {
        if (string.IsNullOrWhiteSpace(json)) yield break;
        using var doc = IpJson.Parse(json);
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            if (e.TryGetProperty("blackhole", out _)) continue;
            List<NexthopMember>? group = null;
            if (e.TryGetProperty("group", out var members))
                group = [.. members.EnumerateArray().Select(m => new NexthopMember(m.GetProperty("id").GetUInt32(),
                    m.TryGetProperty("weight", out var w) ? w.GetUInt16() : (ushort)1))];
            var onlink = e.TryGetProperty("flags", out var flags) && flags.EnumerateArray().Any(f => f.GetString() == "onlink");
            yield return new Nexthop(e.GetProperty("id").GetUInt32(), byte.Parse(Str(e, "protocol") ?? "0", CultureInfo.InvariantCulture),
                Str(e, "dev"), Str(e, "gateway") is { } g ? IPAddress.Parse(g) : null, onlink, group);
        }
    }

    public void Apply(IReadOnlyList<Change> changes)
    {
        var done = 0;
        while (done < changes.Count)
        {
            var family = changes[done].Family;
            var end = done;
            var batch = new StringBuilder();
            string? missing = null;
            while (end < changes.Count && changes[end].Family == family)
            {
                // ip's nexthop parser exits at once on a device that does not exist, without "Command failed -:N": the
                // lines before it would be applied and not counted. Such a line ends the batch here instead.
                if (changes[end] is AddNexthop { Nexthop.Device: { } a } && !LinkExists(a)) missing = a;
                else if (changes[end] is ReplaceNexthop { New.Device: { } r } && !LinkExists(r)) missing = r;
                if (missing is not null) break;
                batch.Append(IpCommand.Batch(changes[end++])).Append('\n');
            }
            if (batch.Length == 0 && missing is not null)
            {
                var why = $"ip at '{IpCommand.Batch(changes[end])}': Cannot find device \"{missing}\"";
                throw new ChangeFailedException(why, done, changes[end], new KernelException(why)) { Errno = Errno.ENODEV, NotSent = changes.Count - end - 1 };
            }
            try
            {
                // Equivalent to: ip -4 -batch - (stops at the first failing line)
                runner.Run(Tools.Ip, family == AddressFamily.Unspecified ? ["-batch", "-"] : [Net.FamilyFlag(family), "-batch", "-"], batch.ToString());
            }
            catch (ProcessException e)
            {
                var failedLine = FailedLine(e.StandardError);
                var applied = done + Math.Max(0, failedLine - 1);
                var failed = applied < changes.Count ? changes[applied] : null;
                var what = failed is null ? "" : $" at '{IpCommand.Batch(failed)}'";
                throw new ChangeFailedException($"ip{what}: {Reason(e.StandardError)}", applied, failed, e)
                {
                    Errno = e.Errno,
                    // ip -batch stops at the refused line: nothing after it, in this family or the next, was sent.
                    NotSent = failed is null ? 0 : changes.Count - applied - 1,
                };
            }
            // A line with a missing device starts the next batch, which refuses it before sending anything.
            done = end;
        }
    }

    public bool LinkExists(string name) => Interop.Libc.InterfaceIndex(name) != 0;

    public IReadOnlyList<InterfaceAddress> ReadAddresses(string device)
    {
        if (!LinkExists(device)) return [];
        // Equivalent to: ip -j addr show dev eth0 scope global
        return ParseAddresses(Ip(["-j", "addr", "show", "dev", device, "scope", "global"])).ToList();
    }

    internal static IEnumerable<InterfaceAddress> ParseAddresses(string json)
    {
        if (string.IsNullOrWhiteSpace(json)) yield break;
        using var doc = IpJson.Parse(json);
        foreach (var link in doc.RootElement.EnumerateArray())
        {
            if (!link.TryGetProperty("addr_info", out var infos)) continue;
            foreach (var a in infos.EnumerateArray())
            {
                if (Str(a, "family") is not ("inet" or "inet6") || Str(a, "local") is not { } local) continue;
                if (Str(a, "scope") is { } scope && scope != "global") continue;
                yield return new InterfaceAddress(IPAddress.Parse(local), a.GetProperty("prefixlen").GetInt32());
            }
        }
    }

    string Ip(IReadOnlyList<string> args)
    {
        var result = runner.Run(Tools.Ip, args, check: false);
        if (result.ExitCode == 0) return result.StandardOutput;
        // A table that never held a route does not exist yet: it is empty, not an error.
        if (result.StandardError.Contains("FIB table does not exist", StringComparison.Ordinal)) return "";
        throw ProcessException.Failed(Tools.Ip, args, result);
    }

    static int FailedLine(string stderr)
    {
        // iproute2: "Command failed -:3"
        const string marker = "Command failed -:";
        var i = stderr.LastIndexOf(marker, StringComparison.Ordinal);
        return i >= 0 && int.TryParse(stderr.AsSpan(i + marker.Length).Trim(), out var n) ? n : 1;
    }

    static string Reason(string stderr)
    {
        foreach (var line in stderr.Split('\n'))
            if (line.Length > 0 && !line.StartsWith("Command failed", StringComparison.Ordinal))
                return line.Replace("RTNETLINK answers: ", "", StringComparison.Ordinal).Trim();
        return stderr.Trim();
    }

    internal static IEnumerable<Route> ParseRoutes(string json, uint? table, string? device = null)
    {
        if (string.IsNullOrWhiteSpace(json)) yield break;
        using var doc = IpJson.Parse(json);
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            var type = (RouteType)byte.Parse(Str(e, "type") ?? "1", CultureInfo.InvariantCulture);
            if (!Enum.IsDefined(type)) continue; // local, broadcast, multicast: the kernel's own
            var dst = Str(e, "dst")!;
            var nhid = e.TryGetProperty("nhid", out var nh) ? nh.GetUInt32() : 0;
            // A route by a nexthop object is that object: what ip shows of its gateways is the object's.
            var gateway = nhid == 0 && Str(e, "gateway") is { } g ? IPAddress.Parse(g) : null;
            var dev = nhid == 0 ? Str(e, "dev") ?? device : null;
            var family = dst.Contains(':') || gateway?.AddressFamily == AddressFamily.InterNetworkV6
                         || (dst == "default" && e.TryGetProperty("pref", out _))
                ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork;
            var destination = Net.ParsePrefix("dst", dst, family);
            var t = Str(e, "table") is { } ts ? uint.Parse(ts, CultureInfo.InvariantCulture) : table ?? TableNames.Main;
            var proto = byte.Parse(Str(e, "protocol") ?? "0", CultureInfo.InvariantCulture);
            uint? metric = e.TryGetProperty("metric", out var m) ? m.GetUInt32() : null;
            var mtu = 0u;
            if (e.TryGetProperty("metrics", out var ms))
                foreach (var item in ms.EnumerateArray())
                    if (item.TryGetProperty("mtu", out var mv)) mtu = mv.GetUInt32();
            var onlink = nhid == 0 && e.TryGetProperty("flags", out var flags) && flags.EnumerateArray().Any(f => f.GetString() == "onlink");
            IPAddress? src = Str(e, "prefsrc") is { } s ? IPAddress.Parse(s) : null;
            yield return new Route(destination, t, proto, type == RouteType.Unicast ? dev : null, gateway, src,
                metric ?? (family.IsV6() ? Route.DefaultV6Metric : 0), type, onlink, mtu, nhid);
        }
    }

    internal static IEnumerable<Rule> ParseRules(string json, AddressFamily family)
    {
        if (string.IsNullOrWhiteSpace(json)) yield break;
        using var doc = IpJson.Parse(json);
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            IPNetwork? Prefix(string addr, string len) =>
                Str(e, addr) is { } a && a != "all" ? Net.Masked(IPAddress.Parse(a), e.TryGetProperty(len, out var l) ? l.GetInt32() : Net.MaxPrefix(family)) : null;
            PortRange? Ports(string name) =>
                e.TryGetProperty(name, out var p) ? new PortRange(p.GetUInt16(), p.GetUInt16())
                : e.TryGetProperty(name + "_start", out var s) ? new PortRange(s.GetUInt16(), e.GetProperty(name + "_end").GetUInt16())
                : null;

            var action = Str(e, "action") is { } act ? (RuleAction)byte.Parse(act, CultureInfo.InvariantCulture) : RuleAction.Lookup;
            var table = Str(e, "table") is { } t ? uint.Parse(t, CultureInfo.InvariantCulture) : 0;
            byte? ipproto = Str(e, "ipproto") is { } ip ? byte.Parse(ip.Replace("ipproto-", ""), CultureInfo.InvariantCulture) : null;
            UidRange? uid = e.TryGetProperty("uid_start", out var us) ? new UidRange(us.GetUInt32(), e.GetProperty("uid_end").GetUInt32()) : null;
            yield return new Rule(family,
                priority: e.GetProperty("priority").GetUInt32(),
                action: action,
                table: table,
                protocol: byte.Parse(Str(e, "protocol") ?? "0", CultureInfo.InvariantCulture),
                from: Prefix("src", "srclen"),
                to: Prefix("dst", "dstlen"),
                not: e.TryGetProperty("not", out _),
                fwMark: Str(e, "fwmark") is { } fm ? Hex(fm) : null,
                fwMask: Str(e, "fwmask") is { } fk ? Hex(fk) : null,
                iif: Str(e, "iif"),
                oif: Str(e, "oif"),
                sourcePort: Ports("sport"),
                destinationPort: Ports("dport"),
                ipProto: ipproto,
                uidRange: uid,
                tos: Str(e, "tos") is { } tos ? (byte)Hex(tos) : (byte)0,
                suppressPrefixLength: e.TryGetProperty("suppress_prefixlen", out var sp) ? sp.GetInt32() : null);
        }
    }

    static uint Hex(string text) => text.StartsWith("0x", StringComparison.Ordinal)
        ? uint.Parse(text.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture)
        : uint.Parse(text, CultureInfo.InvariantCulture);

    static string? Str(JsonElement e, string name) => e.TryGetProperty(name, out var v)
        ? v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Number => v.GetRawText(),
            _ => null,
        }
        : null;
}
