namespace TunnelRouter.Config;

/// <summary>
/// One entry of <c>Marks</c>: an <c>iptables -t mangle -A OUTPUT|PREROUTING ... -j MARK --set-mark</c> line
/// as a JSON object. Every property is a string so that the parser (<see cref="Core.MarkRules"/>) can name
/// the entry, key and value of a mistake; the binder would only say "failed to convert".
/// </summary>
public sealed class MarkOptions
{
    /// <summary>The keys an entry may have; anything else is a typo the binder would silently ignore.</summary>
    public static readonly string[] Keys =
    [
        "Chain", "Family", "Source", "Destination", "Protocol", "SourcePorts", "DestinationPorts",
        "InputInterface", "OutputInterface", "Mark", "Mask",
    ];

    /// <summary>"output" (packets this host sends) or "prerouting" (packets it receives or forwards).</summary>
    public string? Chain { get; set; }

    /// <summary>"ipv4" or "ipv6" for an entry without addresses; otherwise the addresses decide.</summary>
    public string? Family { get; set; }

    /// <summary>"5.5.5.2", "192.168.192.0/24", "!192.168.192.0/24" (negated), IPv6 alike.</summary>
    public string? Source { get; set; }

    public string? Destination { get; set; }

    /// <summary>"tcp", "udp", "sctp", "icmp", "icmpv6", ... or a number.</summary>
    public string? Protocol { get; set; }

    /// <summary>"80", "80,443", "1000-2000", "80,1000-2000" (tcp, udp and sctp only).</summary>
    public string? SourcePorts { get; set; }

    public string? DestinationPorts { get; set; }

    /// <summary>prerouting only (iptables -i); a trailing "+" matches every name with that prefix.</summary>
    public string? InputInterface { get; set; }

    /// <summary>output only (iptables -o).</summary>
    public string? OutputInterface { get; set; }

    /// <summary>"0xf2", "242"; "0" or "clear" clears the mark.</summary>
    public string? Mark { get; set; }

    /// <summary>Bits of the mark this entry sets (iptables --set-mark VALUE/MASK); default all 32.</summary>
    public string? Mask { get; set; }
}
