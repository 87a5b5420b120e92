namespace TunnelRouter.Config;

/// <summary>One entry of <c>Instances</c>: rules and routes the OpenVPN hook installs for a tunnel whose device
/// matches <see cref="Dev"/>, with <c>${NAME}</c> placeholders for OpenVPN's variables at up.</summary>
public sealed class InstanceOptions
{
    /// <summary>A device name ("tun2") or a pattern with * and ? ("tun*"); the first entry that matches wins.</summary>
    public string? Dev { get; set; }

    /// <summary>ip rule lines: "from 192.168.10.0/24 to 198.51.100.7 lookup nyet".</summary>
    public List<string> Rules { get; set; } = [];

    /// <summary>ip route lines: "default via ${route_vpn_gateway} dev ${dev} table nyet".</summary>
    public List<string> Routes { get; set; } = [];
}
