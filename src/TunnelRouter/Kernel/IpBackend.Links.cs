using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using TunnelRouter.Core;
using TunnelRouter.Host;

namespace TunnelRouter.Kernel;

public sealed partial class IpBackend
{
    public IReadOnlyList<Link> ReadLinks() =>
        // Equivalent to: ip -j -d address show
        ParseLinks(Ip(["-j", "-d", "address", "show"])).ToList();

    public string? RouteDevice(IPAddress destination)
    {
        // Equivalent to: ip -j -4 route get 203.0.113.2
        var result = runner.Run(Tools.Ip, [Net.FamilyFlag(destination.AddressFamily), "-j", "route", "get", destination.ToString()], check: false);
        if (result.ExitCode != 0 || string.IsNullOrWhiteSpace(result.StandardOutput)) return null;
        using var doc = IpJson.Parse(result.StandardOutput);
        foreach (var e in doc.RootElement.EnumerateArray())
            if (Str(e, "dev") is { } dev) return dev;
        return null;
    }

    internal static IEnumerable<Link> ParseLinks(string json)
    {
        if (string.IsNullOrWhiteSpace(json)) yield break;
        using var doc = IpJson.Parse(json);
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            var name = Str(e, "ifname");
            if (name is null) continue;
            var mtu = e.TryGetProperty("mtu", out var m) ? m.GetUInt32() : 0;
            var up = e.TryGetProperty("flags", out var flags) && flags.EnumerateArray().Any(f => f.GetString() == "UP");
            string? kind = null;
            GreTunnel? gre = null;
            if (e.TryGetProperty("linkinfo", out var info))
            {
                kind = Str(info, "info_kind");
                if (GreModes.TryParse(kind, out var mode) && info.TryGetProperty("info_data", out var data))
                    gre = ParseGre(name, mode, mtu, data);
            }
            var addresses = new List<InterfaceAddress>();
            if (e.TryGetProperty("addr_info", out var ai))
                foreach (var a in ai.EnumerateArray())
                    if (Str(a, "local") is { } local && IPAddress.TryParse(local, out var address) && a.TryGetProperty("prefixlen", out var pl))
                        addresses.Add(new InterfaceAddress(address, pl.GetInt32()));
            yield return new Link(name, e.TryGetProperty("ifindex", out var ix) ? ix.GetInt32() : 0, kind, mtu, up,
                Str(e, "ifalias"), gre, addresses);
        }
    }

    /// <summary>info_data as iproute2 6.1 prints it: "remote"/"local" (or "any"), "ttl" (the hop limit for
    /// ip6gre), "tos" (v4, absent when 0) or "tclass" (v6), "pmtudisc" (v4), "ikey"/"okey" as dotted quads
    /// only when the key flag is set, "link" when bound to a device.</summary>
    static GreTunnel? ParseGre(string name, GreMode mode, uint mtu, JsonElement d)
    {
        static IPAddress? Address(string? text) => text is null or "any" ? null : IPAddress.TryParse(text, out var a) ? a : null;
        static uint? Key(string? text) => text is null ? null
            : IPAddress.TryParse(text, out var a) && a.AddressFamily == AddressFamily.InterNetwork
                ? System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(a.GetAddressBytes()) : null;
        // iproute2 reports "tos inherit" for the value 1.
        static byte Byte(string? text) => text is null ? (byte)0 : text == "inherit" ? (byte)1
            : text.StartsWith("0x", StringComparison.Ordinal) ? byte.Parse(text.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture)
            : byte.Parse(text, CultureInfo.InvariantCulture);

        var remote = Address(Str(d, "remote"));
        if (remote is null) return null; // keyless, remoteless: a multipoint or fallback device, never one of ours
        var v6 = mode.UnderlayFamily().IsV6();
        return new GreTunnel(name, mode, Address(Str(d, "local")), remote,
            iKey: Key(Str(d, "ikey")), oKey: Key(Str(d, "okey")),
            ttl: d.TryGetProperty("ttl", out var ttl) ? (byte)ttl.GetInt32() : (byte)0,
            tos: Byte(Str(d, v6 ? "tclass" : "tos")),
            pmtuDisc: !d.TryGetProperty("pmtudisc", out var pm) || pm.ValueKind != JsonValueKind.False,
            mtu: mtu,
            underlay: Str(d, "link"));
    }
}
