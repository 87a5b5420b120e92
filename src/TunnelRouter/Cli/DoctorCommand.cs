using System.Net.Sockets;
using System.Text.Json;
using TunnelRouter.Core;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using TunnelRouter.Policy;

namespace TunnelRouter.Cli;

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
        // One parse for every check: what parsed of a broken policy still informs the checks that need it (its marks, its
        // pool-rule option), and the policy itself is only used whole.
        var parsed = Commands.ReadPolicy(ctx);
        try { policy = parsed.Valid(); }
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

        findings.Add(Diagnosis.KernelRules(state.Rules));
        var lookup = new RouteLookup(new ProcessRunner());
        Forwarding(findings, Diagnosis.Forwards(parsed, rules, state, ctx.HookProtocol, from => IsOwnAddress(from, lookup), out var unknownMarks), unknownMarks);
        findings.AddRange(Diagnosis.ReversePath(state, routes, rules, ProcSys.Read));
        Managers(findings, failClosed: policy?.FailClosed.Count > 0 || routes.Any(r => r.Type != RouteType.Unicast));
        Waiting(findings, planned);
        Selectors(ctx, findings, rules, state);
        findings.AddRange(Diagnosis.Tables(Iproute2Files.Files(ctx.Options.Iproute2Dir, "rt_tables").Select(f => (f, File.ReadAllText(f))), HookTableUndefined(ctx)));
        Nft(findings, rules, parsed.UsesMarks);
        if (Diagnosis.HandMade(state, rules, owned, ctx.Protocol, ctx.Names.Tables, ctx.Names.Protocols) is { } handMade) findings.Add(handMade);
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
        if (policy is not null) UplinkDoctor.Add(findings, policy, snapshot, new RouteLookup(new ProcessRunner()));
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

    /// <summary>Why the hook's table cannot be given a number (an invalid name, a TableId another name has, no free id
    /// left), or null.</summary>
    static string? HookTableUndefined(Context ctx)
    {
        try { ctx.Names.ResolveAutoTable(ctx.Options.FieldOf("Table"), ctx.Options.Table, ctx.Options.TableId); }
        catch (InputException e) { return e.Message; }
        return null;
    }

    /// <summary>Marks are set by nftables (the policy's Marks) and matched by fwmark rules: either needs nft.</summary>
    static void Nft(List<Finding> findings, List<Rule> rules, bool marks)
    {
        if (!marks && !rules.Any(r => r.FwMark is not null)) return;
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
