using System.Net.Sockets;
using System.Text.Json;
using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;

namespace TunnelRouter.Cli;

public enum FindingLevel { Ok, Note, Problem }

/// <summary>One line of the doctor's checklist, with what to do about it.</summary>
public sealed record Finding(string Check, FindingLevel Level, string Message, string? Fix = null);

/// <summary>
/// <c>doctor</c>: the host settings that silently break policy routing, checked in the current network
/// namespace, each with a fix — the troubleshooting sections of the seeds as a checklist. Exit 0 when
/// nothing is a problem (notes do not count), 1 otherwise; --json for scripts.
/// </summary>
public static class DoctorCommand
{
    /// <summary>Probe rules sit far past the main (32766) and default (32767) rules, where only packets
    /// that found no route anyway could reach them, and carry tunnel-router's protocol so a leftover is ours.</summary>
    const uint ProbePriorityBase = 4_000_000_000;

    public static int Run(Context ctx)
    {
        var findings = Check(ctx);
        if (ctx.Args.Json) WriteJson(ctx, findings);
        else WriteText(ctx, findings);
        return findings.Any(f => f.Level == FindingLevel.Problem) ? App.Failed : App.Ok;
    }

    public static List<Finding> Check(Context ctx)
    {
        var findings = new List<Finding>();
        // One snapshot for the checks and the apply plan: what the policy adds, and whether the kernel has drifted from it.
        // A policy that cannot be parsed is the file's fault; one that parses but cannot be planned is the kernel's
        // (a missing module, device or address, a foreign route in the way): either way every other check still runs.
        ParsedPolicy? policy = null;
        KernelSnapshot? snapshot = null;
        IReadOnlyList<Change>? plan = null;
        PolicyPlan? planned = null;
        try { policy = Commands.ParsePolicy(ctx); }
        catch (TunnelRouterException e) when (e is InputException or InputErrors)
        {
            findings.Add(new Finding("policy", FindingLevel.Problem, $"the policy cannot be read: {e.Message.Replace("\n", "; ")}", "fix the policy file; 'tunnel-router plan' shows the same error"));
        }
        if (policy is not null)
        {
            try
            {
                snapshot = ctx.ReadSnapshot(Reconciler.QueryFor(policy));
                planned = Commands.PlanPolicy(ctx, policy, ctx.Records.ReadAll(), snapshot, stated: false);
                plan = planned.Changes;
            }
            catch (TunnelRouterException e)
            {
                findings.Add(new Finding("policy", FindingLevel.Problem, $"the policy is valid, but apply would fail on this kernel: {e.Message}", KernelFix(e)));
            }
        }
        snapshot ??= ctx.ReadSnapshot(new SnapshotQuery(NftRequired: false));
        var state = snapshot.State;
        var owned = ctx.Owned;
        var ownedRoutes = state.Routes.Where(owned.Route).ToList();
        var ownedRules = state.Rules.Where(owned.Rule).ToList();
        var plannedRoutes = plan?.OfType<AddRoute>().Select(a => a.Route).ToList() ?? [];
        var plannedRules = plan?.OfType<AddRule>().Select(a => a.Rule).ToList() ?? [];
        // What the policy wants, whether or not the plan could be made, plus what is owned now.
        var routes = ownedRoutes.Concat(plannedRoutes).Concat(policy?.Routes ?? []).Distinct().ToList();
        var rules = ownedRules.Concat(plannedRules).Concat(policy?.Rules ?? []).Distinct().ToList();

        KernelRules(findings, state.Rules);
        Forwarding(findings, Forwards(ctx, policy, rules, state, out var unknownMarks), unknownMarks);
        ReversePath(findings, state, routes, rules);
        Managers(findings, failClosed: policy?.FailClosed.Count > 0 || routes.Any(r => r.Type != RouteType.Unicast));
        Waiting(findings, planned);
        Selectors(ctx, findings, rules, state);
        Tables(ctx, findings);
        Nft(findings, rules, ctx.Options.Marks.Count);
        HandMade(ctx, findings, state, rules);
        foreach (var finding in LiveInstances.Recursion(ctx, LiveInstances.Records(ctx), policy))
            findings.Add(new Finding("recursive-routing", FindingLevel.Note, finding,
                $"add '{RecursiveRouting.Option}' to that OpenVPN client's configuration (or route the server's address elsewhere)"));
        if (policy is not null)
        {
            foreach (var leak in Lifecycle.Findings(policy))
                findings.Add(new Finding("fail-closed", FindingLevel.Problem, leak.Message, leak.Fix));
            foreach (var leak in Lifecycle.FallThrough(policy, LiveInstances.Records(ctx), snapshot))
                findings.Add(new Finding("fall-through", FindingLevel.Problem, leak.Message, leak.Fix));
            foreach (var leak in Lifecycle.ClosedWhileUp(policy, LiveInstances.Records(ctx), snapshot))
                findings.Add(new Finding("fail-closed", FindingLevel.Problem, leak.Message, leak.Fix));
        }
        foreach (var text in planned?.NeedRestart ?? [])
            findings.Add(new Finding("tunnels", FindingLevel.Problem, text, "restart that OpenVPN instance, or register the table's name first (apply it once with a Tables entry)"));
        if (policy?.Routing is { } routing) RoutingDaemonCheck.Add(findings, routing, snapshot, policy.Tunnels);
        if (plan is not null)
        {
            findings.Add(plan.Count == 0
                ? new Finding("drift", FindingLevel.Ok, "the kernel matches the policy")
                : new Finding("drift", FindingLevel.Problem,
                    $"the kernel differs from the policy by {plan.Count} change(s), e.g. '{plan[0].Display(ctx.Names.Tables, ctx.Names.Protocols)}'",
                    "the policy is fine; the kernel is what differs: 'tunnel-router plan' lists the changes, 'tunnel-router apply' makes them"));
        }
        return findings;
    }

    /// <summary>The kernel's own rules: without "lookup local" the host stops receiving its own traffic, without
    /// "lookup main" it routes nothing, without "lookup default" (IPv4) the default table is never consulted. An
    /// `ip rule flush` leaves only the local rule; policy routing needs all of them behind its own.</summary>
    internal static void KernelRules(List<Finding> findings, IReadOnlyList<Rule> rules)
    {
        var missing = new List<string>();
        foreach (var family in (ReadOnlySpan<AddressFamily>)[AddressFamily.InterNetwork, AddressFamily.InterNetworkV6])
        {
            var f = family.IsV6() ? "-6" : "-4";
            // IPv6 has no rule for table default: the kernel never installs one.
            foreach (var (table, name, pref) in family.IsV6()
                         ? [(TableNames.Local, "local", 0u), (TableNames.Main, "main", 32766u)]
                         : new[] { (TableNames.Local, "local", 0u), (TableNames.Main, "main", 32766u), (TableNames.Default, "default", 32767u) })
            {
                if (rules.Any(r => r.Family == family && r.Action == RuleAction.Lookup && r.Table == table && IsUnconditional(r))) continue;
                missing.Add($"ip {f} rule add from all lookup {name} pref {pref}");
            }
        }
        findings.Add(missing.Count == 0
            ? new Finding("kernel rules", FindingLevel.Ok, "the local, main and default rules are in place in both families")
            : new Finding("kernel rules", FindingLevel.Problem,
                $"{missing.Count} of the kernel's own rules are missing ({string.Join("; ", missing.Select(m => m[(m.IndexOf("lookup", StringComparison.Ordinal))..].Split(' ')[1] + (m.Contains("-6") ? " (IPv6)" : " (IPv4)")))}): without them this host does not route (an 'ip rule flush' does this)",
                string.Join("; ", missing)));
    }

    static bool IsUnconditional(Rule r) =>
        r is { From: null, To: null, Not: false, FwMark: null, Iif: null, Oif: null, IpProto: null, SourcePort: null, DestinationPort: null, UidRange: null, Tos: 0, SuppressPrefixLength: null };

    /// <summary>What waits for a device that does not exist yet, and tunnel records whose device is gone.</summary>
    static void Waiting(List<Finding> findings, PolicyPlan? plan)
    {
        if (plan is null) return;
        foreach (var w in plan.Waiting)
            findings.Add(new Finding("waiting", FindingLevel.Note, w.ToString(),
                $"they go in when {w.Device} appears: through the OpenVPN hook, tunnel-router watch, or the next apply"));
        foreach (var device in plan.Forgotten)
            findings.Add(new Finding("tunnels", FindingLevel.Note, $"{device} is gone without a down (OpenVPN killed?); its tunnel record is stale",
                "'tunnel-router apply' (or watch) forgets it and removes its leftover rules"));
    }

    /// <summary>What to do when a valid policy cannot be applied: the kernel, not the file, is what to change.</summary>
    static string KernelFix(TunnelRouterException e) => e switch
    {
        ConflictException => "the kernel holds someone else's route or rule where the policy's goes: remove it, or let 'tunnel-router apply --adopt' take over one identical to the policy's",
        EnvironmentException => "the kernel or the host lacks what the message names (a module: modprobe it; a tool: install it; a route to a tunnel's remote: add it); then 'tunnel-router apply'",
        _ => "the kernel lacks what the message names (a device, an address, a route): create it or wait for it, then 'tunnel-router apply'",
    };

    /// <summary>
    /// Why the policy forwards other hosts' traffic, per family; empty when it only routes the host's own
    /// (reply routing of its addresses, seed 004), where forwarding is none of the policy's business. What a rule
    /// selects decides: a source that is not one of this host's addresses (a pool, a LAN), an input interface other
    /// than lo, or a mark the policy sets in prerouting means packets of other hosts; "iif lo", a uidrange (only this
    /// host's sockets have a uid) and a mark the policy sets only in output mean this host's own. A rule on the
    /// destination, protocol, ports, tos or oif alone matches whatever reaches the lookup — this host's packets, and
    /// others' only if it forwards already — so it asks for nothing. Also: the hook's pool routes, prerouting marks, GRE
    /// tunnels that carry routes, and forwarding the policy's Sysctls switch on. <paramref name="unknownMarks"/>: rules
    /// on a mark none of the policy's Marks sets (another firewall's), per family: only that firewall knows whose
    /// packets it marks.
    /// </summary>
    static Dictionary<AddressFamily, string> Forwards(Context ctx, ParsedPolicy? policy, List<Rule> rules, KernelState state,
        out Dictionary<AddressFamily, string> unknownMarks)
    {
        var lookup = new RouteLookup(new ProcessRunner());
        IReadOnlyList<MarkRule> marks = [];
        try { marks = Policy.MarkRules.Parse(ctx.Options.Marks); }
        catch (TunnelRouterException e) when (e is InputException or InputErrors) { } // reported as the policy finding
        var why = RuleReasons(rules, marks, policy?.Instances ?? [], from => IsOwnAddress(from, lookup), out var unknown);
        void Because(AddressFamily f, string reason) => why.TryAdd(f, reason);
        if (ctx.Options.PoolRules || state.Routes.Any(r => r.Protocol == ctx.HookProtocol))
            foreach (var f in new[] { AddressFamily.InterNetwork, AddressFamily.InterNetworkV6 })
                if (ctx.Options.PoolRules || state.Routes.Any(r => r.Protocol == ctx.HookProtocol && r.Family == f))
                    Because(f, "OpenVPN tunnels carry their clients' traffic (the hook's pool routes)");
        foreach (var m in marks.Where(m => m.Chain == MarkChain.Prerouting))
            foreach (var f in m.Family is { } fam ? [fam] : new[] { AddressFamily.InterNetwork, AddressFamily.InterNetworkV6 })
                Because(f, "prerouting marks steer packets arriving from other hosts");
        foreach (var t in policy?.Tunnels ?? [])
            foreach (var route in t.Routes)
                Because(route.Family, $"{t.Field} ({t.Link.Name}) carries routes between sites");
        foreach (var (key, value) in policy?.Sysctls ?? [])
            if (value == "1" && key is "net.ipv4.ip_forward" or "net.ipv4.conf.all.forwarding") Because(AddressFamily.InterNetwork, "the policy's Sysctls switch it on");
            else if (value == "1" && key == "net.ipv6.conf.all.forwarding") Because(AddressFamily.InterNetworkV6, "the policy's Sysctls switch it on");
        foreach (var f in why.Keys) unknown.Remove(f);
        unknownMarks = unknown;
        return why;
    }

    /// <summary>
    /// What the rules themselves say about forwarding, per family (pure: <paramref name="isOwn"/> says whether a host
    /// prefix is one of this host's addresses). A source that is not this host's, an input interface other than lo, or
    /// (in an Instances line) the tunnel's device or a placeholder source other than the tunnel's own address mean
    /// other hosts' packets; "iif lo", a uidrange, and rules on the destination, protocol, ports, tos or oif alone do not
    /// (they match whatever reaches the lookup). A rule on a mark none of <paramref name="marks"/> sets goes to
    /// <paramref name="unknownMarks"/>; one the marks set only in output is this host's own.
    /// </summary>
    internal static Dictionary<AddressFamily, string> RuleReasons(IEnumerable<Rule> rules, IReadOnlyList<MarkRule> marks,
        IReadOnlyList<InstanceSpec> instances, Func<System.Net.IPNetwork, bool> isOwn, out Dictionary<AddressFamily, string> unknownMarks)
    {
        var why = new Dictionary<AddressFamily, string>();
        var unknown = new Dictionary<AddressFamily, string>();
        void Because(AddressFamily f, string reason) => why.TryAdd(f, reason);
        static bool Sets(MarkRule m, Rule r) =>
            (m.Family is null || m.Family == r.Family) && m.Mark != 0 && (m.Mark & r.FwMask!.Value) == (r.FwMark!.Value & m.Mask & r.FwMask!.Value);
        foreach (var r in rules)
        {
            if (r.Iif is { } iif)
            {
                if (iif != "lo" || r.Not) Because(r.Family, $"rule {r.Priority} matches packets arriving on {(r.Not ? "any interface but " : "")}{iif}");
                continue;
            }
            if (r.UidRange is not null) continue;
            if (r.From is { } from && from.PrefixLength > 0)
            {
                if (r.Not || !isOwn(from))
                    Because(r.Family, $"rule {r.Priority} routes packets from {(r.Not ? "anywhere but " : "")}{Net.Format(from)}, which is not an address of this host");
                continue;
            }
            // Marks the policy sets in prerouting count as prerouting marks; in output they are this host's own packets.
            if (r.FwMark is not null && r.FwMark != 0 && !marks.Any(m => Sets(m, r)))
                unknown.TryAdd(r.Family, $"rule {r.Priority} matches fwmark 0x{r.FwMark:x}, which none of the policy's Marks sets");
        }
        // Instances' rules by their words (their values come at up): a placeholder source is the tunnel's clients unless it
        // is the tunnel's own address (${ifconfig_local}, ${ifconfig_ipv6_local}).
        foreach (var spec in instances)
            foreach (var line in spec.Rules)
            {
                var words = line.Text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                var at = line.Field[(line.Field.LastIndexOf(": ", StringComparison.Ordinal) + 2)..];
                var families = line.Family is { } lf ? [lf] : new[] { AddressFamily.InterNetwork, AddressFamily.InterNetworkV6 };
                for (var k = 0; k + 1 < words.Length; k++)
                {
                    var value = words[k + 1];
                    var forwards = words[k] switch
                    {
                        "iif" => value != "lo",
                        "from" => InstanceLine.HasPlaceholder(value) ? !value.EndsWith("local}", StringComparison.Ordinal)
                            : value is not ("all" or "default") && (!Net.TryParseAddress(value.Split('/')[0], out _) || !isOwn(Net.ParsePrefix(at, value))),
                        _ => false,
                    };
                    if (forwards)
                        foreach (var f in families) Because(f, $"{at} routes packets {(words[k] == "iif" ? "arriving on" : "from")} {value}");
                }
            }
        unknownMarks = unknown;
        return why;
    }

    /// <summary>A host prefix that is one of this host's addresses: a reply-routing rule, not a pool.</summary>
    static bool IsOwnAddress(System.Net.IPNetwork from, RouteLookup lookup) =>
        from.PrefixLength == Net.MaxPrefix(from.BaseAddress.AddressFamily) && lookup.RouteTo(from.BaseAddress).Type == "local";

    static void Forwarding(List<Finding> findings, Dictionary<AddressFamily, string> forwards, Dictionary<AddressFamily, string> unknownMarks)
    {
        // A mark another firewall sets: forwarding matters only if it marks other hosts' packets, which only it knows.
        foreach (var (family, reason) in unknownMarks.OrderBy(kv => kv.Key))
        {
            var (path, key) = family.IsV6() ? ("net/ipv6/conf/all/forwarding", "net.ipv6.conf.all.forwarding") : ("net/ipv4/ip_forward", "net.ipv4.ip_forward");
            if (ProcSys.Read(path) is "1") continue;
            findings.Add(new Finding("forwarding", FindingLevel.Note,
                $"{key} = 0: {reason}; if the firewall that sets it marks packets of other hosts (mangle PREROUTING), this host must forward them",
                family.IsV6() ? Ipv6ForwardingFix() : $"only then: sysctl -w {key}=1, and put '{key} = 1' in /etc/sysctl.d/90-tunnel-router.conf"));
        }
        if (forwards.Count == 0)
        {
            if (unknownMarks.Count == 0)
                findings.Add(new Finding("forwarding", FindingLevel.Ok, "the policy routes only this host's own traffic; forwarding is not needed"));
            return;
        }
        foreach (var (family, reason) in forwards.OrderBy(kv => kv.Key))
        {
            var (path, key) = family.IsV6()
                ? ("net/ipv6/conf/all/forwarding", "net.ipv6.conf.all.forwarding")
                : ("net/ipv4/ip_forward", "net.ipv4.ip_forward");
            var value = ProcSys.Read(path);
            findings.Add(value == "1"
                ? new Finding("forwarding", FindingLevel.Ok, $"{key} = 1")
                : new Finding("forwarding", FindingLevel.Problem,
                    $"{key} = {value ?? "?"}: the policy forwards {(family.IsV6() ? "IPv6" : "IPv4")} traffic ({reason}), but this host does not forward it",
                    family.IsV6() ? Ipv6ForwardingFix() : $"sysctl -w {key}=1, and put '{key} = 1' in /etc/sysctl.d/90-tunnel-router.conf"));
        }
    }

    /// <summary>IPv6 forwarding=1 makes the kernel ignore router advertisements wherever accept_ra is 1: a SLAAC
    /// host loses its default route. accept_ra=2 keeps them; the fix says so first, naming such interfaces.</summary>
    static string Ipv6ForwardingFix()
    {
        var ra = new List<string>();
        if (Directory.Exists("/proc/sys/net/ipv6/conf"))
            foreach (var dir in Directory.GetDirectories("/proc/sys/net/ipv6/conf").Order(StringComparer.Ordinal))
            {
                var dev = Path.GetFileName(dir);
                if (dev is "all" or "default" or "lo") continue;
                if (ProcSys.Read($"net/ipv6/conf/{dev}/accept_ra") == "1" && ProcSys.Read($"net/ipv6/conf/{dev}/autoconf") == "1") ra.Add(dev);
            }
        var first = ra.Count == 0
            ? "first, on every interface that learns its default route from router advertisements, sysctl -w net.ipv6.conf.IF.accept_ra=2 (forwarding=1 makes the kernel ignore them where accept_ra is 1, and the host loses that route)"
            : $"first sysctl -w {string.Join(" ", ra.Select(d => $"net.ipv6.conf.{d}.accept_ra=2"))} (forwarding=1 makes the kernel ignore router advertisements where accept_ra is 1, and {string.Join(", ", ra)} would lose the default route they give)";
        return $"{first}; then sysctl -w net.ipv6.conf.all.forwarding=1, both in /etc/sysctl.d/90-tunnel-router.conf";
    }

    /// <summary>Strict reverse-path filtering (rp_filter=1) checks a packet's source against the route back
    /// to it in the main lookup; policy routing sends replies another way, and the kernel drops the packet
    /// as a martian without a word (seed 001's "packet seems to disappear").</summary>
    static void ReversePath(List<Finding> findings, KernelState state, List<Route> routes, List<Rule> rules)
    {
        var tables = rules.Where(r => r.Action == RuleAction.Lookup).Select(r => r.Table).ToHashSet();
        var devices = routes.Select(r => r.Device)
            .Concat(rules.Select(r => r.Iif))
            .Concat(state.Routes.Where(r => tables.Contains(r.Table) && r.Table != TableNames.Main).Select(r => r.Device))
            .OfType<string>().Where(d => d != "lo").Distinct().Order(StringComparer.Ordinal).ToList();
        if (devices.Count == 0) return;

        // The reverse-path check looks the packet's source up with the addresses swapped and nothing else: rules
        // on addresses alone (pools, reply routing, seeds 003 and 004) give it the same path, and strict mode is
        // fine; rules on marks, ports, protocols, uids or oif route one way and check another.
        var unseen = rules.Where(r => r.FwMark is not null || r.IpProto is not null || r.SourcePort is not null
                                      || r.DestinationPort is not null || r.UidRange is not null || r.Oif is not null).ToList();
        foreach (var v in new[] { "ipv4" })
        {
            var all = ProcSys.Read($"net/{v}/conf/all/rp_filter");
            if (unseen.Count == 0)
            {
                findings.Add(new Finding("rp_filter", FindingLevel.Ok,
                    "the policy's rules select by address only, which the reverse-path check sees too: no martian drops from it"));
                LogMartians(findings, v);
                continue;
            }
            var strict = new List<string>();
            foreach (var dev in devices)
            {
                var own = ProcSys.Read($"net/{v}/conf/{dev}/rp_filter");
                if (own is null) continue;
                // The kernel uses the larger of "all" and the device's value.
                if (Math.Max(Int(all), Int(own)) == 1) strict.Add(dev);
            }
            findings.Add(strict.Count == 0
                ? new Finding("rp_filter", FindingLevel.Ok, $"no strict reverse-path filter on {string.Join(", ", devices)}")
                : new Finding("rp_filter", FindingLevel.Problem,
                    $"strict reverse-path filtering (rp_filter=1, all={all}) on {string.Join(", ", strict)}: rule {unseen[0].Priority} selects by what the reverse-path check does not see, so replies come back another way than it expects, and the kernel drops them as martians, silently",
                    $"loose mode: sysctl -w net.{v}.conf.all.rp_filter=2 {string.Join(" ", strict.Select(d => $"net.{v}.conf.{d}.rp_filter=2"))}"));

            LogMartians(findings, v);
        }
    }

    static void LogMartians(List<Finding> findings, string v)
    {
        var martians = Int(ProcSys.Read($"net/{v}/conf/all/log_martians"));
        findings.Add(martians == 1
            ? new Finding("log_martians", FindingLevel.Ok, "martian packets are logged")
            : new Finding("log_martians", FindingLevel.Note,
                "martian drops are not logged, so a packet dropped by rp_filter disappears without a trace",
                $"sysctl -w net.{v}.conf.all.log_martians=1 net.{v}.conf.default.log_martians=1"));
    }

    static int Int(string? text) => int.TryParse(text, out var n) ? n : 0;

    /// <summary>Network managers that delete routing rules and routes they did not create.</summary>
    static void Managers(List<Finding> findings, bool failClosed)
    {
        var running = RunningCommands();
        // /proc/PID/comm keeps 15 bytes: "systemd-networkd" reads "systemd-network".
        if (running.Contains("systemd-network"))
        {
            var rules = NetworkdSetting("ManageForeignRoutingPolicyRules");
            var routes = NetworkdSetting("ManageForeignRoutes");
            var bad = new List<string>();
            if (!IsNo(rules)) bad.Add($"ManageForeignRoutingPolicyRules={rules ?? "yes (default)"}");
            if (!IsNo(routes)) bad.Add($"ManageForeignRoutes={routes ?? "yes (default)"}");
            findings.Add(bad.Count == 0
                ? new Finding("systemd-networkd", FindingLevel.Ok, "systemd-networkd runs and leaves foreign rules and routes alone")
                : new Finding("systemd-networkd", FindingLevel.Problem,
                    $"systemd-networkd runs with {string.Join(" and ", bad)}: it deletes tunnel-router's rules and routes whenever it reconfigures a link",
                    "/etc/systemd/networkd.conf.d/tunnel-router.conf: [Network] ManageForeignRoutingPolicyRules=no and ManageForeignRoutes=no; then systemctl restart systemd-networkd"));
            if (failClosed && !IsNo(routes))
                findings.Add(new Finding("fail-closed", FindingLevel.Problem,
                    "systemd-networkd manages links here and deletes foreign unreachable, blackhole and prohibit routes whenever it reconfigures one, even with ManageForeignRoutingPolicyRules=no: the fail-closed tables' kill switches go with them",
                    "/etc/systemd/networkd.conf.d/tunnel-router.conf with the two lines '[Network]' and 'ManageForeignRoutes=no'; then systemctl restart systemd-networkd"));
        }
        if (running.Contains("NetworkManager"))
            findings.Add(new Finding("NetworkManager", FindingLevel.Problem,
                "NetworkManager runs: when it (re)activates a connection it may remove routing rules and routes it did not create",
                "keep tunnel devices unmanaged (unmanaged-devices=interface-name:tun* in /etc/NetworkManager/conf.d/), and run 'tunnel-router apply' after NetworkManager brings links up"));
    }

    static bool IsNo(string? value) => value is not null && value.Trim().ToLowerInvariant() is "no" or "false" or "0" or "off";

    internal static HashSet<string> RunningCommands()
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!char.IsAsciiDigit(Path.GetFileName(dir)[0])) continue;
            try { names.Add(File.ReadAllText(Path.Combine(dir, "comm")).Trim()); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        return names;
    }

    /// <summary>A [Network] setting of networkd.conf, with drop-ins read in systemd's order (later wins).</summary>
    static string? NetworkdSetting(string key)
    {
        var files = new List<string> { "/etc/systemd/networkd.conf" };
        var dropIns = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var d in new[] { "/usr/lib/systemd/networkd.conf.d", "/run/systemd/networkd.conf.d", "/etc/systemd/networkd.conf.d" })
            if (Directory.Exists(d))
                foreach (var f in Directory.GetFiles(d, "*.conf")) dropIns[Path.GetFileName(f)] = f;
        files.AddRange(dropIns.Values);
        string? value = null;
        foreach (var f in files.Where(File.Exists))
        {
            var section = "";
            foreach (var raw in File.ReadLines(f))
            {
                var line = raw.Trim();
                if (line.StartsWith('[')) { section = line; continue; }
                if (section != "[Network]" || line.StartsWith('#') || line.StartsWith(';')) continue;
                var eq = line.IndexOf('=');
                if (eq > 0 && line[..eq].Trim() == key) value = line[(eq + 1)..].Trim();
            }
        }
        return value;
    }

    /// <summary>An older kernel accepts a rule with a selector it does not know and silently drops the
    /// selector, so the rule matches far more than it should. Each selector the policy uses is added once
    /// on a probe rule, read back, and removed.</summary>
    static void Selectors(Context ctx, List<Finding> findings, List<Rule> rules, KernelState state)
    {
        var kinds = new SortedDictionary<string, Rule>(StringComparer.Ordinal);
        foreach (var r in rules)
            foreach (var kind in SelectorKinds(r))
                kinds.TryAdd(kind, r);
        if (kinds.Count == 0) return;
        if (ctx.Args.DryRun || !Capabilities.HasNetAdmin())
        {
            findings.Add(new Finding("selectors", FindingLevel.Note,
                $"not probed ({(ctx.Args.DryRun ? "dry run" : "needs CAP_NET_ADMIN")}): {string.Join(", ", kinds.Keys)}", "run 'tunnel-router doctor' as root"));
            return;
        }
        var used = state.Rules.Select(r => r.Priority).ToHashSet();
        var priority = ProbePriorityBase;
        var missing = new List<string>();
        using (ctx.Lock())
        {
            foreach (var (kind, sample) in kinds)
            {
                while (used.Contains(priority)) priority++;
                var probe = sample with { Priority = priority, Protocol = ctx.Protocol, Action = RuleAction.Unreachable, Table = 0 };
                try
                {
                    // Equivalent to: ip rule add SELECTORS pref 4000000000 unreachable protocol 147
                    ctx.Kernel.Apply([new AddRule(probe)]);
                }
                catch (KernelException e)
                {
                    missing.Add($"{kind} (refused: {e.Message})");
                    continue;
                }
                try
                {
                    var back = ctx.Kernel.Read(new StateQuery(new HashSet<uint>(), Rules: true)).Rules
                        .FirstOrDefault(r => r.Priority == priority && r.Family == probe.Family && r.Protocol == probe.Protocol);
                    if (back is null || !SelectorKinds(back).Contains(kind)) missing.Add(kind);
                }
                finally
                {
                    ctx.Kernel.Apply([new DeleteRule(probe)]);
                }
            }
        }
        findings.Add(missing.Count == 0
            ? new Finding("selectors", FindingLevel.Ok, $"this kernel keeps every selector the policy uses: {string.Join(", ", kinds.Keys)}")
            : new Finding("selectors", FindingLevel.Problem,
                $"this kernel drops or refuses the selector(s) {string.Join(", ", missing)}: rules using them would match more than they say",
                "run a newer kernel (fwmark/protocol need 4.17+, sport/dport/ipproto 4.17+, uidrange 4.10+), or remove those selectors from the policy"));
    }

    static IEnumerable<string> SelectorKinds(Rule r)
    {
        if (r.From is not null) yield return "from";
        if (r.To is not null) yield return "to";
        if (r.Not) yield return "not";
        if (r.FwMark is not null) yield return "fwmark";
        if (r.Iif is not null) yield return "iif";
        if (r.Oif is not null) yield return "oif";
        if (r.IpProto is not null) yield return "ipproto";
        if (r.SourcePort is not null) yield return "sport";
        if (r.DestinationPort is not null) yield return "dport";
        if (r.UidRange is not null) yield return "uidrange";
        if (r.Tos != 0) yield return "tos";
        if (r.SuppressPrefixLength is not null) yield return "suppress_prefixlength";
        if (r.Protocol != 0) yield return "protocol";
    }

    /// <summary>A table name with two numbers, or a number with two names, across rt_tables and its
    /// drop-ins: iproute2 silently takes the first, so two policies can end up sharing one table.</summary>
    static void Tables(Context ctx, List<Finding> findings)
    {
        var byName = new Dictionary<string, List<(uint Id, string File)>>(StringComparer.Ordinal);
        var byId = new Dictionary<uint, List<(string Name, string File)>>();
        foreach (var file in Iproute2Files.Files(ctx.Options.Iproute2Dir, "rt_tables"))
        {
            var text = File.ReadAllText(file);
            foreach (var raw in text.Split('\n'))
            {
                var line = raw.Split('#')[0].Trim();
                var parts = line.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length < 2 || !NameMap.TryParseNumber(parts[0], out var id)) continue;
                (byName.TryGetValue(parts[1], out var l) ? l : byName[parts[1]] = []).Add((id, file));
                (byId.TryGetValue(id, out var n) ? n : byId[id] = []).Add((parts[1], file));
            }
        }
        var twice = new List<string>();
        foreach (var (name, defs) in byName)
            if (defs.Select(d => d.Id).Distinct().Count() > 1)
                twice.Add($"'{name}' is {string.Join(" and ", defs.Select(d => $"{d.Id} ({d.File})"))}");
        foreach (var (id, defs) in byId)
            if (defs.Select(d => d.Name).Distinct().Count() > 1)
                twice.Add($"{id} is named {string.Join(" and ", defs.Select(d => $"'{d.Name}' ({d.File})"))}");

        string? undefined = null;
        try { ctx.Names.ResolveAutoTable(ctx.Options.FieldOf("Table"), ctx.Options.Table, ctx.Options.TableId); }
        catch (InputException e) { undefined = e.Message; }

        if (twice.Count > 0)
            findings.Add(new Finding("tables", FindingLevel.Problem, $"table names defined twice: {string.Join("; ", twice)}",
                "keep one definition per name and number (rt_tables or one file in rt_tables.d)"));
        if (undefined is not null)
            findings.Add(new Finding("tables", FindingLevel.Problem, $"table not defined: {undefined}", "define it in rt_tables.d or give it a number under Tables"));
        if (twice.Count == 0 && undefined is null)
            findings.Add(new Finding("tables", FindingLevel.Ok, "every table name is defined once"));
    }

    /// <summary>Rules and routes typed by hand (a how-to's rc.local, rule-eth1 files) that duplicate the policy's:
    /// they stay when the policy changes or is flushed, and keep routing as the old setup did.</summary>
    static void HandMade(Context ctx, List<Finding> findings, KernelState state, List<Rule> rules)
    {
        var owned = ctx.Owned;
        var ours = rules.Where(r => r.Protocol == ctx.Protocol).ToList();
        var twins = new List<string>();
        foreach (var have in state.Rules.Where(r => !owned.Rule(r)))
            if (ours.FirstOrDefault(want => want.SameSelectorsAndAction(have)) is { } want)
                twins.Add($"rule '{IpCommand.RuleArgs(have, ctx.Names.Tables, ctx.Names.Protocols)}' duplicates the policy's at priority {want.Priority}" +
                          (want.Priority == have.Priority ? "" : $" (remove it: ip {Net.FamilyFlag(have.Family)} rule del pref {have.Priority})"));
        if (twins.Count == 0) return;
        findings.Add(new Finding("hand-made", FindingLevel.Note, string.Join("; ", twins),
            "'tunnel-router apply --adopt' takes each over, whatever priority the kernel gave it (ours stays at the policy's); or delete it, so that changing or flushing the policy is not undone by it"));
    }

    /// <summary>Marks are set by nftables (the policy's Marks) and matched by fwmark rules: either needs nft.</summary>
    static void Nft(List<Finding> findings, List<Rule> rules, int marks)
    {
        if (marks == 0 && !rules.Any(r => r.FwMark is not null)) return;
        try
        {
            findings.Add(new Finding("nft", FindingLevel.Ok, $"the policy uses marks and nft is at {Tools.Nft}"));
        }
        catch (EnvironmentException e)
        {
            findings.Add(new Finding("nft", FindingLevel.Problem, $"the policy uses marks, but {e.Message.Split(';')[0]}", "apt-get install nftables"));
        }
    }

    static void WriteText(Context ctx, List<Finding> findings)
    {
        var o = new TerminalText(ctx.Out);
        foreach (var f in findings)
        {
            var tag = f.Level switch { FindingLevel.Ok => "ok     ", FindingLevel.Note => "note   ", _ => "PROBLEM" };
            o.WriteLine($"{tag}  {f.Check}: {f.Message}");
            if (f.Level != FindingLevel.Ok && f.Fix is not null) o.WriteLine($"         fix: {f.Fix}");
        }
        var problems = findings.Count(f => f.Level == FindingLevel.Problem);
        o.WriteLine(problems == 0 ? "No problems found." : $"{problems} problem(s) found.");
    }

    static void WriteJson(Context ctx, List<Finding> findings)
    {
        JsonOutput.Print(ctx.Out, w =>
        {
            w.WriteStartObject();
            w.WriteBoolean("ok", findings.All(f => f.Level != FindingLevel.Problem));
            w.WriteStartArray("findings");
            foreach (var f in findings)
            {
                w.WriteStartObject();
                w.WriteString("check", f.Check);
                w.WriteString("level", f.Level switch { FindingLevel.Ok => "ok", FindingLevel.Note => "note", _ => "problem" });
                w.WriteString("message", f.Message);
                if (f.Fix is not null) w.WriteString("fix", f.Fix);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        });
    }
}
