namespace TunnelRouter.Config;

/// <summary>One entry of <c>Tunnels</c> in the policy file: a GRE tunnel TunnelRouter creates and owns.
/// Strings where the policy may write more than one form (keys as numbers or dotted quads); everything is
/// checked in <see cref="TunnelConfig"/>.</summary>
public sealed class TunnelOptions
{
    /// <summary>The link's name, at most 15 bytes (e.g. "gre_black").</summary>
    public string? Name { get; set; }

    /// <summary>gre (default), gretap, ip6gre or ip6gretap.</summary>
    public string Mode { get; set; } = "gre";

    public string? Local { get; set; }
    public string? Remote { get; set; }

    /// <summary>One key both ways (GRE key extension, RFC 2890); unset for Cisco's default, keyless GRE.</summary>
    public string? Key { get; set; }
    public string? IKey { get; set; }
    public string? OKey { get; set; }

    /// <summary>Outer TTL (hop limit for ip6gre); 0 = inherit. Default: 0 for gre/gretap, 64 for ip6gre.</summary>
    public uint? Ttl { get; set; }

    /// <summary>Outer TOS (traffic class for ip6gre); default 0.</summary>
    public uint? Tos { get; set; }

    /// <summary>Path MTU discovery (DF set on the outer header); gre/gretap only, default on.</summary>
    public bool? PMtuDisc { get; set; }

    /// <summary>Default: the underlay's MTU minus the encapsulation's overhead.</summary>
    public uint? Mtu { get; set; }

    /// <summary>Bind the tunnel to this device; by default the kernel routes to Remote.</summary>
    public string? Underlay { get; set; }

    /// <summary>Same as <see cref="Underlay"/> (iproute2's word).</summary>
    public string? Dev { get; set; }

    /// <summary>Addresses on the tunnel, IPv4 and IPv6, with prefix length: "10.255.0.1/30".</summary>
    public List<string> Addresses { get; set; } = [];

    /// <summary>Routes over the tunnel: "192.168.50.0/24", "192.168.50.0/24 table vpn", "fd00:50::/64 metric 10".</summary>
    public List<string> Routes { get; set; } = [];
}
