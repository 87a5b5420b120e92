using System.Net;
using System.Net.Sockets;
using System.Text;

namespace TunnelRouter.Core;

/// <summary>
/// After an apply that wrote the daemon's file or made one of its interfaces (a new tunnel, a new address): waits,
/// within <see cref="Bound"/>, until the daemon runs OSPF on every configured interface that the kernel has with an
/// IPv4 address, and fails with one line naming each one it never took. FRR 8.4's zebra reads links and addresses on
/// two threads and can handle an address before its link, and then drops it for good ("can't find ifp",
/// FRRouting/frr#13288): ospfd never hears of the address and never runs on the interface, though its stanza is in
/// the running configuration. An address of a tunnel tunnel-router owns is then announced again
/// (<see cref="ReplaceAddress"/>), which changes nothing in the kernel; one it does not own is named with that fix.
/// Nothing to undo: a rollback does not run it again.
/// </summary>
public sealed record SettleOspf(RoutingDaemonKind Daemon, string? Control, OspfSettings Ospf,
    IReadOnlyDictionary<string, IReadOnlyList<InterfaceAddress>> Owned, TimeSpan Bound) : Change
{
    public override Change Inverse() => this;

    public override IEnumerable<Change> Undo() => [];

    public string DaemonName => Daemon == RoutingDaemonKind.Bird ? "BIRD" : "FRR";

    /// <summary>What a person would type to see the same.</summary>
    public string Show => Daemon == RoutingDaemonKind.Bird
        ? $"birdc{(Control is null ? "" : $" -s {Control}")} show ospf interface {OspfConfig.BirdProtocol}"
        : $"vtysh{(Control is null ? "" : $" --vty_socket {Control}")} -c 'show ip ospf interface'";

    public override string Display(TableNames tables, ProtocolNames protocols) =>
        $"check {DaemonName} runs OSPF on {string.Join(", ", Ospf.Interfaces.Select(i => i.Name))} (up to {Bound.TotalSeconds:0} s): {Show}";
}

/// <summary>A link as the routing daemon sees it (zebra's <c>show interface</c>, BIRD's <c>show interfaces</c>).</summary>
public sealed record DaemonLink(string Name, bool Usable, IReadOnlyList<InterfaceAddress> Ipv4);

/// <summary>What one look at the daemon asks for next.</summary>
/// <param name="Fix">interface → what a person does about it.</param>
public sealed record OspfTakeUpStep(IReadOnlyList<string> Missing, IReadOnlyList<(string Device, InterfaceAddress Address)> Reannounce,
    IReadOnlyList<string> Resend, IReadOnlyDictionary<string, string> Why, IReadOnlyDictionary<string, string> Fix)
{
    public bool Done => Missing.Count == 0;
}

/// <summary>Reads the daemons' views and decides (pure: their output in, what to do out).</summary>
public static class OspfTakeUp
{
    /// <summary>
    /// Which configured interfaces the daemon runs OSPF on, and what to do about the others.
    /// </summary>
    /// <param name="kernel">each configured interface that exists → its IPv4 addresses in the kernel.</param>
    /// <param name="running">the interfaces the daemon lists in its OSPF interface table.</param>
    /// <param name="links">the daemon's view of each configured interface (null: it does not know it yet).</param>
    /// <param name="owned">tunnels tunnel-router owns → the addresses it gave them.</param>
    /// <param name="nudge">true when this look may re-announce and resend (not on every look: the daemon needs a moment).</param>
    public static OspfTakeUpStep Step(SettleOspf s, IReadOnlyDictionary<string, IReadOnlyList<InterfaceAddress>> kernel,
        IReadOnlySet<string> running, Func<string, DaemonLink?> links, bool nudge)
    {
        var missing = new List<string>();
        var reannounce = new List<(string, InterfaceAddress)>();
        var resend = new List<string>();
        var why = new Dictionary<string, string>(StringComparer.Ordinal);
        var fix = new Dictionary<string, string>(StringComparer.Ordinal);
        var restart = s.Daemon == RoutingDaemonKind.Bird ? "systemctl restart bird" : "systemctl restart frr";
        foreach (var i in s.Ospf.Interfaces)
        {
            // No link, or no IPv4 address: OSPFv2 has nothing to run on there (doctor names a missing tunnel).
            if (!kernel.TryGetValue(i.Name, out var addresses) || addresses.Count == 0 || running.Contains(i.Name)) continue;
            var link = links(i.Name);
            if (s.Daemon == RoutingDaemonKind.Bird && link is { Usable: false }) continue; // BIRD runs OSPF on links that are up
            missing.Add(i.Name);
            if (link is null)
            {
                why[i.Name] = $"{Seer(s)} does not know {i.Name}";
                fix[i.Name] = restart;
                continue;
            }
            var lacks = addresses.Where(a => !link.Ipv4.Contains(a)).ToList();
            if (lacks.Count == 0)
            {
                why[i.Name] = $"{Seer(s)} knows {i.Name} and {string.Join(", ", addresses)}, yet OSPF does not run on it";
                fix[i.Name] = $"have the daemon read tunnel-router's file again ({(s.Daemon == RoutingDaemonKind.Bird ? "birdc configure" : "vtysh -f FILE")}; tunnel-router apply writes it where plan shows it differs), or {restart}";
                if (nudge && s.Daemon == RoutingDaemonKind.Frr) resend.Add(i.Name);
                continue;
            }
            why[i.Name] = $"{Seer(s)} does not know {string.Join(", ", lacks)} on {i.Name}";
            fix[i.Name] = $"{string.Join("; ", lacks.Select(a => $"ip address replace {a} dev {i.Name}"))} (announces it again, changes nothing), or {restart}";
            if (s.Daemon == RoutingDaemonKind.Bird) continue; // BIRD reads the kernel's events itself: it is only late
            var owned = s.Owned.TryGetValue(i.Name, out var own) ? own : [];
            why[i.Name] += lacks.All(owned.Contains)
                ? " (zebra drops an address made an instant after its link, FRRouting/frr#13288; tunnel-router announces it again)"
                : $" (zebra drops an address made an instant after its link, FRRouting/frr#13288; 'ip address replace {lacks[0]} dev {i.Name}' announces it again)";
            if (nudge) reannounce.AddRange(lacks.Where(owned.Contains).Select(a => (i.Name, a)));
        }
        return new OspfTakeUpStep(missing, reannounce, resend, why, fix);
    }

    static string Seer(SettleOspf s) => s.Daemon == RoutingDaemonKind.Bird ? "BIRD" : "zebra";

    /// <summary>The one line a run that never converged fails with.</summary>
    public static string Failure(SettleOspf s, OspfTakeUpStep last, IReadOnlySet<string> running) =>
        $"{s.DaemonName} did not run OSPF on {string.Join(", ", last.Missing)} within {s.Bound.TotalSeconds:0} s: " +
        string.Join("; ", last.Missing.Select(m => last.Why.TryGetValue(m, out var w) ? w : m)) +
        $"; it runs OSPF on {(running.Count == 0 ? "no interface" : string.Join(", ", running.Order(StringComparer.Ordinal)))} (see '{s.Show}'; Routing.Settle sets the wait)";

    /// <summary>The vtysh lines that take an interface out of the area and put its stanza in again: ospfd looks at
    /// the interface's addresses afresh.</summary>
    public static IReadOnlyList<string> FrrResend(SettleOspf s, string name)
    {
        var stanza = OspfConfig.FrrStanzas(OspfConfig.Render(s.Ospf, "")).TryGetValue(name, out var lines) ? lines : [];
        return ["configure terminal", $"interface {name}", $"no ip ospf area {s.Ospf.Area}", .. stanza, "exit"];
    }

    /// <summary>
    /// FRR's <c>show ip ospf interface</c>: one block per interface ospfd has taken into OSPF, headed
    /// "NAME is up" or "NAME is down" at the start of a line (a down one says "OSPF is enabled, but not running on
    /// this interface": taken all the same; it runs when the link comes up).
    /// </summary>
    public static IReadOnlySet<string> ParseFrrOspfInterfaces(string output)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in output.Split('\n'))
        {
            if (line.Length == 0 || char.IsWhiteSpace(line[0])) continue;
            var words = line.TrimEnd().Split(' ');
            if (words.Length == 3 && words[1] == "is" && words[2] is "up" or "down") names.Add(words[0]);
        }
        return names;
    }

    /// <summary>zebra's <c>show interface NAME</c>: "Interface NAME is up, line protocol is up", its addresses as
    /// "  inet 10.0.0.1/30"; "% Can't find interface NAME" when zebra does not know it (null).</summary>
    public static DaemonLink? ParseZebraInterface(string name, string output)
    {
        var known = false;
        var up = false;
        var v4 = new List<InterfaceAddress>();
        foreach (var raw in output.Split('\n'))
        {
            var line = raw.Trim();
            if (line.StartsWith($"Interface {name} is ", StringComparison.Ordinal))
            {
                known = true;
                up = line.Contains(" is up,", StringComparison.Ordinal);
            }
            else if (line.StartsWith("inet ", StringComparison.Ordinal) && Address(line[5..]) is { } a) v4.Add(a);
        }
        return known ? new DaemonLink(name, up, v4) : null;
    }

    /// <summary>
    /// BIRD's <c>show ospf interface PROTOCOL</c>: "Interface NAME (10.8.0.0/30)" heads each OSPF interface.
    /// </summary>
    public static IReadOnlySet<string> ParseBirdOspfInterfaces(string output)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in output.Split('\n'))
            if (line.StartsWith("Interface ", StringComparison.Ordinal) && line.Split(' ') is { Length: >= 2 } w) names.Add(w[1]);
        return names;
    }

    /// <summary>
    /// BIRD's <c>show interfaces</c>: "NAME up (index=3)" heads a block; its flags line says AdminUp/LinkUp; address
    /// lines are "10.8.0.1/30 (Preferred, ...)".
    /// </summary>
    public static IReadOnlyDictionary<string, DaemonLink> ParseBirdInterfaces(string output)
    {
        var links = new Dictionary<string, DaemonLink>(StringComparer.Ordinal);
        string? name = null;
        var usable = false;
        var v4 = new List<InterfaceAddress>();
        void Flush()
        {
            if (name is not null) links[name] = new DaemonLink(name, usable, v4);
        }
        foreach (var raw in output.Split('\n'))
        {
            if (raw.Length == 0) continue;
            if (!char.IsWhiteSpace(raw[0]))
            {
                var w = raw.Split(' ');
                if (w.Length < 3 || !w[2].StartsWith("(index=", StringComparison.Ordinal)) continue;
                Flush();
                name = w[0];
                usable = false;
                v4 = [];
                continue;
            }
            var line = raw.Trim();
            if (line.Contains("MTU=", StringComparison.Ordinal))
                usable = line.Split(' ').Contains("AdminUp") && line.Split(' ').Contains("LinkUp");
            else if (Address(line) is { } a) v4.Add(a);
        }
        Flush();
        return links;
    }

    /// <summary>"10.0.0.1/30" at the start of <paramref name="text"/> (up to a space), IPv4 only.</summary>
    static InterfaceAddress? Address(string text)
    {
        var end = text.IndexOf(' ');
        var word = end < 0 ? text : text[..end];
        var slash = word.IndexOf('/');
        if (slash < 0 || !IPAddress.TryParse(word[..slash], out var ip) || ip.AddressFamily != AddressFamily.InterNetwork) return null;
        return int.TryParse(word[(slash + 1)..], out var length) && length is >= 0 and <= 32 ? new InterfaceAddress(ip, length) : null;
    }
}
