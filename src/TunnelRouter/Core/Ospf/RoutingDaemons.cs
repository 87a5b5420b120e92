namespace TunnelRouter.Core;

/// <summary>The route protocol numbers routing daemons put on the routes they install, with whose they are:
/// explain names the daemon when its route decides, whatever this host's rt_protos says.</summary>
public static class RoutingDaemons
{
    /// <summary>"BIRD (bird)" for 12; null for a number no routing daemon uses.</summary>
    public static string? Of(byte protocol) => protocol switch
    {
        11 => "FRR's zebra (zebra)",
        12 => "BIRD (bird)",
        42 => "babeld (babel)",
        186 => "FRR's BGP (bgp)",
        187 => "FRR's IS-IS (isis)",
        188 => "FRR's OSPF (ospf)",
        189 => "FRR's RIP (rip)",
        192 => "FRR's EIGRP (eigrp)",
        _ => null,
    };
}
