using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace TunnelRouter.Core;

/// <summary>The four GRE link kinds the kernel offers (rtnl link kinds of ip_gre and ip6_gre).</summary>
public enum GreMode { Gre, GreTap, Ip6Gre, Ip6GreTap }

public static class GreModes
{
    public static string Kind(this GreMode mode) => mode switch
    {
        GreMode.Gre => "gre",
        GreMode.GreTap => "gretap",
        GreMode.Ip6Gre => "ip6gre",
        _ => "ip6gretap",
    };

    public static bool TryParse(string? kind, out GreMode mode)
    {
        foreach (var m in Enum.GetValues<GreMode>())
            if (m.Kind() == kind) { mode = m; return true; }
        mode = default;
        return false;
    }

    /// <summary>The family of the outer (underlay) header: Local and Remote are of this family.</summary>
    public static AddressFamily UnderlayFamily(this GreMode mode) =>
        mode is GreMode.Ip6Gre or GreMode.Ip6GreTap ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork;

    /// <summary>Tap modes carry Ethernet frames (bridgeable, with ARP); the others carry IP packets.</summary>
    public static bool IsTap(this GreMode mode) => mode is GreMode.GreTap or GreMode.Ip6GreTap;

    /// <summary>The kernel module that provides the mode.</summary>
    public static string Module(this GreMode mode) => mode.UnderlayFamily().IsV6() ? "ip6_gre" : "ip_gre";

    /// <summary>
    /// Bytes each packet costs on the underlay, as the kernel computes a new tunnel's MTU (measured on 6.1):
    /// IPv4 header 20 + GRE 4 = 24; IPv6 header 40 + GRE 4 + the 8-byte tunnel encapsulation limit option
    /// ip6gre sends by default = 52 (1448 on a 1500 link); a GRE key adds 4 (only the output key is on the
    /// wire); tap modes add the inner Ethernet header, 14.
    /// </summary>
    public static int Overhead(this GreMode mode, bool outputKey) =>
        (mode.UnderlayFamily().IsV6() ? 52 : 24) + (outputKey ? 4 : 0) + (mode.IsTap() ? 14 : 0);

    /// <summary>The hop limit the kernel gives a tunnel created without one: IPv4 GRE inherits the inner
    /// packet's TTL (0, what "ip tunnel add" does); ip6gre uses 64.</summary>
    public static byte DefaultTtl(this GreMode mode) => mode.UnderlayFamily().IsV6() ? (byte)64 : (byte)0;
}

/// <summary>
/// One GRE link as the kernel keeps it, normalised so that what is read back compares equal to what
/// was asked for: PMTU discovery is always on for the IPv6 modes (ip6gre has no such switch), an unset
/// TTL is the mode's default. Keys are null when the tunnel has none (Cisco's default, like no checksum
/// and no sequence numbers, which TunnelRouter never turns on).
/// </summary>
public sealed record GreTunnel
{
    public GreTunnel(string name, GreMode mode, IPAddress? local, IPAddress remote, uint? iKey = null, uint? oKey = null,
        byte? ttl = null, byte tos = 0, bool pmtuDisc = true, uint mtu = 0, string? underlay = null)
    {
        Name = name;
        Mode = mode;
        Local = local;
        Remote = remote;
        IKey = iKey;
        OKey = oKey;
        Ttl = ttl ?? mode.DefaultTtl();
        Tos = tos;
        PMtuDisc = pmtuDisc || mode.UnderlayFamily().IsV6();
        Mtu = mtu;
        Underlay = underlay;
    }

    public string Name { get; init; }
    public GreMode Mode { get; init; }
    public IPAddress? Local { get; init; }
    public IPAddress Remote { get; init; }
    public uint? IKey { get; init; }
    public uint? OKey { get; init; }
    public byte Ttl { get; init; }
    public byte Tos { get; init; }
    public bool PMtuDisc { get; init; }
    public uint Mtu { get; init; }

    /// <summary>The device the tunnel is bound to ("dev eth0"); null lets the kernel route to Remote.</summary>
    public string? Underlay { get; init; }

    public bool IsV6 => Mode.UnderlayFamily().IsV6();

    /// <summary>
    /// What <c>ip link set NAME type ...</c> cannot reach: iproute2 merges a change into the link's current
    /// parameters, so a key cannot be removed (or added to only one side) and the kind and the bound device
    /// are fixed at creation. Any of those changing means delete and add; everything else changes in place.
    /// </summary>
    public bool NeedsRecreate(GreTunnel next) =>
        Mode != next.Mode || Underlay != next.Underlay
        || (IKey is null) != (next.IKey is null) || (OKey is null) != (next.OKey is null)
        || (Local is null) != (next.Local is null);

    /// <summary>The "type gre local .. remote .. ikey .. okey .." part of ip link add/set. <paramref name="full"/>
    /// spells out every parameter (a change must, since iproute2 keeps what is not said); otherwise the
    /// kernel's defaults are left out, so a plain tunnel reads like the seed's "ip tunnel add ... mode gre remote".</summary>
    public string TypeArgs(bool full)
    {
        var sb = new StringBuilder("type ").Append(Mode.Kind());
        sb.Append(" remote ").Append(Remote);
        if (Local is not null) sb.Append(" local ").Append(Local);
        else if (full) sb.Append(" local any");
        if (IKey is { } ik) sb.Append(" ikey ").Append(ik.ToString(CultureInfo.InvariantCulture));
        if (OKey is { } ok) sb.Append(" okey ").Append(ok.ToString(CultureInfo.InvariantCulture));
        if (full || Ttl != Mode.DefaultTtl())
            sb.Append(IsV6 ? " hoplimit " : " ttl ").Append(Ttl == 0 && !IsV6 ? "inherit" : Ttl.ToString(CultureInfo.InvariantCulture));
        if (full || Tos != 0) sb.Append(IsV6 ? " tclass 0x" : " tos 0x").Append(Tos.ToString("x2", CultureInfo.InvariantCulture));
        if (!IsV6 && (full || !PMtuDisc)) sb.Append(PMtuDisc ? " pmtudisc" : " nopmtudisc");
        if (Underlay is not null && !full) sb.Append(" dev ").Append(Underlay);
        return sb.ToString();
    }

    /// <summary>For status and plan: "gre remote 203.0.113.2 local 203.0.113.1 key 42 mtu 1476".</summary>
    public override string ToString()
    {
        var text = TypeArgs(full: false)["type ".Length..];
        return $"{Name} {text} mtu {Mtu}";
    }
}
