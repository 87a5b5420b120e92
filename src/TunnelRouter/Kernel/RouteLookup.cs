using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using TunnelRouter.Core;
using TunnelRouter.Host;

namespace TunnelRouter.Kernel;

/// <summary>What the kernel answered to "ip route get": the route entry that matched (fibmatch) and the
/// resolved next hop, or the kernel's error (the packet would be dropped).</summary>
public sealed record KernelAnswer(
    string? Error, string? Type, string? Destination, uint? Table, byte? Protocol, string? Gateway, string? Device, string? PreferredSource)
{
    public bool Routed => Error is null;
}

/// <summary>
/// The kernel's own policy-routing lookup and the raw rule list, for <c>explain</c> and <c>doctor</c>.
/// Read-only; iproute2 is the one tool that asks the kernel exactly this (RTM_GETROUTE with
/// RTM_F_FIB_MATCH), so it is used here whichever backend applies changes.
/// </summary>
public sealed class RouteLookup(ProcessRunner runner)
{
    /// <summary>Every rule of a family in the kernel's order, including goto and nop rules.</summary>
    // Equivalent to: ip -4 -j -N rule show
    public List<RuleEntry> Rules(AddressFamily family)
    {
        var json = runner.Run(Tools.Ip, [Net.FamilyFlag(family), "-j", "-N", "rule", "show"]).StandardOutput;
        var rules = IpBackend.ParseRules(json, family).ToList();
        var entries = new List<RuleEntry>(rules.Count);
        if (string.IsNullOrWhiteSpace(json)) return entries;
        using var doc = IpJson.Parse(json);
        var i = 0;
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            uint? target = e.TryGetProperty("goto", out var g) && g.ValueKind == JsonValueKind.Number ? g.GetUInt32() : null;
            entries.Add(new RuleEntry(rules[i++], target, e.TryGetProperty("nop", out _)));
        }
        return entries;
    }

    /// <summary>The local addresses' and connected routes' answer for one address: "local" when it is
    /// this host's, else the device it is reached through.</summary>
    // Equivalent to: ip -j route get ADDRESS
    public KernelAnswer RouteTo(IPAddress address) =>
        Get([Net.FamilyFlag(address.AddressFamily), "-N", "-j", "route", "get", address.ToString()]);

    /// <summary>The kernel's decision for a packet, as the route entry that matched (fibmatch) plus the
    /// resolved next hop.</summary>
    // Equivalent to: ip -j route get TO from FROM iif DEV mark N ipproto P sport S dport D [fibmatch]
    public (KernelAnswer Match, KernelAnswer NextHop) Get(Packet p)
    {
        var args = new List<string> { Net.FamilyFlag(p.Family), "-N", "-j", "route", "get", p.To.ToString() };
        if (p.From is not null) args.AddRange(["from", p.From.ToString()]);
        if (!p.IsLocal) args.AddRange(["iif", p.Iif]);
        if (p.Mark != 0) args.AddRange(["mark", p.Mark.ToString(CultureInfo.InvariantCulture)]);
        if (p.IpProto is { } proto) args.AddRange(["ipproto", proto.ToString(CultureInfo.InvariantCulture)]);
        if (p.SourcePort is { } sp) args.AddRange(["sport", sp.ToString(CultureInfo.InvariantCulture)]);
        if (p.DestinationPort is { } dp) args.AddRange(["dport", dp.ToString(CultureInfo.InvariantCulture)]);
        if (p.IsLocal && p.Uid != 0) args.AddRange(["uid", p.Uid.ToString(CultureInfo.InvariantCulture)]);
        var nextHop = Get(args);
        return (Get([.. args, "fibmatch"]), nextHop);
    }

    KernelAnswer Get(IReadOnlyList<string> args)
    {
        var result = runner.Run(Tools.Ip, args, check: false);
        if (result.ExitCode != 0)
        {
            var err = result.StandardError.Trim().Replace("RTNETLINK answers: ", "", StringComparison.Ordinal);
            if (err.StartsWith("Error: ", StringComparison.Ordinal)) err = err[7..];
            return new KernelAnswer(err.Split('\n')[0], null, null, null, null, null, null, null);
        }
        using var doc = IpJson.Parse(result.StandardOutput);
        var e = doc.RootElement.EnumerateArray().First();
        string? S(string name) => e.TryGetProperty(name, out var v) ? v.ValueKind == JsonValueKind.String ? v.GetString() : v.GetRawText() : null;
        uint? table = S("table") is { } t ? t switch { "main" => TableNames.Main, "local" => TableNames.Local, "default" => TableNames.Default, _ => uint.TryParse(t, out var id) ? id : null } : null;
        byte? proto = S("protocol") is { } pr && byte.TryParse(pr, out var pb) ? pb : null;
        return new KernelAnswer(null, TypeName(S("type")), S("dst"), table ?? TableNames.Main, proto, S("gateway"), S("dev"), S("prefsrc"));
    }

    /// <summary>ip -N prints route types as RTN_* numbers.</summary>
    static string TypeName(string? type) => type switch
    {
        null or "1" => "unicast", "2" => "local", "3" => "broadcast", "4" => "anycast", "5" => "multicast",
        "6" => "blackhole", "7" => "unreachable", "8" => "prohibit", "9" => "throw", "10" => "nat",
        _ => type,
    };
}
