using System.Text;
using TunnelRouter.Config;
using TunnelRouter.Host;

namespace TunnelRouter.Cli;

/// <summary>
/// The man pages' scdoc source, made from the command table (tunnel-router(8)) and the policy reference
/// (tunnel-router.json(5)), so that a page cannot name a command, an option or a key the binary does not have, nor
/// miss one it has. scdoc renders them to roff (scripts/docs.sh): a small, well-kept tool whose input escapes only
/// three characters, where hand-written roff would make every line a place for a formatting mistake.
/// </summary>
public static class ManPage
{
    /// <summary>"8" or "5" (also "tunnel-router.8", "tunnel-router.json.5"); null for anything else.</summary>
    public static string? Source(string page) => page switch
    {
        "8" or "tunnel-router.8" => Command(),
        "5" or "tunnel-router.json.5" => Policy(),
        _ => null,
    };

    /// <summary>Text taken literally by scdoc: its formatting characters escaped.</summary>
    static string E(string text)
    {
        var s = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (c is '\\' or '*' or '_') s.Append('\\');
            s.Append(c);
        }
        return s.ToString();
    }

    static string Bold(string text) => $"*{E(text)}*";

    static string Command()
    {
        var s = new StringBuilder();
        s.Append($"tunnel-router(8) \"tunnel-router {App.Version}\" \"System Administration\"\n\n");
        s.Append("# NAME\n\ntunnel-router - policy routing for Linux VPN and site gateways\n\n");
        s.Append("# SYNOPSIS\n\n*tunnel-router* _COMMAND_ [_options_] [_Key=Value_ ...]\n\n");
        s.Append("*tunnel-router* [_dev tun\\_mtu 0 ifconfig\\_local NETMASK|PEER init|restart_] (as OpenVPN's --up and --down)\n\n");
        s.Append("# DESCRIPTION\n\n");
        s.Append(E("tunnel-router turns a declarative policy (tunnel-router.json(5)) and what OpenVPN tells it about each tunnel " +
            "into kernel state: per-tunnel routes in a policy table, source rules for client pools, default routes via a NAT " +
            "router, GRE tunnels, fwmark policy, reply routing for multi-homed hosts, and kill switches for tables that must " +
            "never fall through. Every route and rule it adds carries its own protocol number (147 for the policy, 148 for the " +
            "OpenVPN hook); reading back, deleting and flush only ever touch objects with those numbers. Running a command twice " +
            "gives the state of running it once; a failed change is rolled back; a host-wide lock serialises every change."));
        s.Append("\n\n");
        s.Append(E("Every command followed by --help or -h, and help COMMAND, prints that command's usage and exits 0 without " +
            "touching anything."));
        s.Append("\n\n# COMMANDS\n\n");
        foreach (var c in CommandTable.Visible)
        {
            s.Append(Bold(c.Synopsis["tunnel-router ".Length..])).Append('\n');
            s.Append('\t').Append(E(CommandTable.Sentence(c.Summary))).Append(' ').Append(E(c.Description)).Append("\n\n");
            foreach (var o in c.Options.Where(o => !o.Hidden)) Option(s, o, "\t");
            s.Append("\tExit status: ").Append(E(string.Join("; ", c.Exits.Select(x => $"{x.Code} {x.Meaning}")))).Append(".\n\n");
            // Literal: an example is typed as it stands (scdoc escapes nothing in a literal block).
            s.Append("\t```\n");
            foreach (var e in c.Examples) s.Append('\t').Append(e).Append('\n');
            s.Append("\t```\n\n");
        }
        s.Append("# OPTIONS\n\nThese options work with every command and may stand anywhere on the command line.\n\n");
        foreach (var o in CommandTable.Common) Option(s, o, "");
        s.Append("_Key=Value_\n\t").Append(E("Overrides a policy key for this run: Table=vpn2, Uplinks:0:Table=lan2 (see tunnel-router.json(5)).")).Append("\n\n");

        s.Append("# THE OPENVPN HOOK\n\n").Append(E(CommandTable.Find("up")!.Description)).Append("\n\n");
        s.Append(E("In the OpenVPN configuration (/usr/local/sbin/tunnel-router when ./install.sh installed it):")).Append("\n\n```\nscript-security 2\nup   /usr/sbin/tunnel-router\ndown /usr/sbin/tunnel-router\n```\n\n");
        s.Append(E("With user nobody the scripts lose CAP_NET_ADMIN: down must run through the down-root plugin, as " +
            "\"tunnel-router down\". OpenVPN builds the hook's environment from scratch; per-instance settings come with setenv, " +
            "e.g. setenv TUNNEL_ROUTER_TABLE vpn2.")).Append("\n\n");

        s.Append("# EXIT STATUS\n\n");
        foreach (var x in CommandTable.Commands.SelectMany(c => c.Exits).GroupBy(x => x.Code).OrderBy(g => g.Key))
            s.Append($"*{x.Key}*\n\t").Append(E(string.Join("; ", x.Select(e => e.Meaning).Distinct()))).Append(".\n\n");
        s.Append("\tplan: 2 when apply would change something; doctor and explain: 1 when they found a problem.\n\n");

        s.Append("# ENVIRONMENT\n\n");
        foreach (var (name, text) in Environment) s.Append(Bold(name)).Append("\n\t").Append(E(text)).Append("\n\n");

        s.Append("# FILES\n\n");
        foreach (var (name, text) in Files) s.Append(Bold(name)).Append("\n\t").Append(E(text)).Append("\n\n");

        s.Append("# SEE ALSO\n\n*tunnel-router.json*(5), *ip-rule*(8), *ip-route*(8), *openvpn*(8), *nft*(8), *systemd.service*(5)\n");
        return s.ToString();
    }

    static readonly (string, string)[] Environment =
    [
        ("TUNNEL_ROUTER_CONFIG", "The policy file, when -c is not given; empty for no policy file."),
        ("TUNNEL_ROUTER_<Key>", "Overrides a policy key, e.g. TUNNEL_ROUTER_TABLE=vpn2; keys of lists with __, e.g. TUNNEL_ROUTER_UPLINKS__0__TABLE=lan2. OpenVPN passes them with setenv."),
        ("script_type, dev, ifconfig_local, ifconfig_netmask, ifconfig_remote, ifconfig_ipv6_local, ifconfig_ipv6_netbits, route_*",
            "What OpenVPN sets for --up and --down: the hook reads the tunnel from them."),
        ("TRACE_TUNNEL_ROUTER_STARTUP", "Prints the phase timings of a run on stderr."),
    ];

    static readonly (string, string)[] Files =
    [
        (ConfigLoader.DefaultPath, "The policy (tunnel-router.json(5)); root's, not writable by group or others."),
        ("/run/tunnel-router/tunnels/NETNS/DEV", "What the OpenVPN hook installed for a tunnel: what down removes."),
        ("/run/tunnel-router/lock", "The host-wide lock."),
        ("/run/tunnel-router/" + Host.LastGoodPolicy.FileName, "The last policy apply, up or watch loaded: what they fall back on when the policy file is broken."),
        ("/etc/iproute2/rt_tables.d/tunnel-router.conf", "The names of tables the host does not define."),
        ("/etc/iproute2/rt_protos.d/tunnel-router.conf", "The names of the protocols 147 and 148."),
        ("tunnel-router.service", "The systemd unit: apply at boot, flush on stop (the kill switches stay); not enabled by installing: systemctl enable --now tunnel-router."),
        ("tunnel-router-watch.service", "The systemd unit of tunnel-router watch; reload re-reads the policy."),
    ];

    static void Option(StringBuilder s, OptionSpec o, string indent)
    {
        s.Append(indent).Append(o.Short is null ? "" : Bold(o.Short) + ", ").Append(Bold(o.Name));
        if (o.TakesValue) s.Append(" _").Append(E(o.ValueText)).Append('_');
        s.Append('\n').Append(indent).Append('\t').Append(E(CommandTable.Sentence(o.Help))).Append("\n\n");
    }

    static string Policy()
    {
        var s = new StringBuilder();
        s.Append($"tunnel-router.json(5) \"tunnel-router {App.Version}\" \"File Formats\"\n\n");
        s.Append("# NAME\n\ntunnel-router.json - the policy of tunnel-router(8)\n\n");
        s.Append("# SYNOPSIS\n\n").Append(E(ConfigLoader.DefaultPath)).Append("\n\n");
        s.Append("# DESCRIPTION\n\n");
        s.Append(E("The policy tunnel-router apply makes the kernel match, and the settings of the OpenVPN hook. The file is JSON; " +
            "// comments and trailing commas are allowed. It must not be writable by group or others when tunnel-router runs " +
            "as root. An unknown or misspelt key is an error naming it, as is a value of the wrong type; a broken policy never " +
            "changes the kernel. Every key may be overridden for one run by TUNNEL_ROUTER_<Key> in the environment or Key=Value " +
            "on the command line (keys of lists as Uplinks:0:Table). Rules and routes are written as after 'ip rule add' and " +
            "'ip route add'."));
        s.Append("\n\n# KEYS\n\n");
        foreach (var k in PolicyReference.Keys)
        {
            var dot = k.Key.IndexOf('.');
            var shown = dot < 0 ? k.Key : $"{k.Key[..dot]}[].{k.Key[(dot + 1)..]}";
            s.Append(Bold(shown)).Append(' ').Append(E($"({k.Type}, default: {k.Default})")).Append('\n');
            s.Append('\t').Append(E(k.Description)).Append("\n\n");
            s.Append("\tExample: ").Append(E($"\"{k.Key[(dot + 1)..]}\": {k.Example}")).Append("\n\n");
        }
        s.Append("# EXAMPLE\n\n```\n").Append(Example).Append("```\n\n");
        s.Append("# SEE ALSO\n\n*tunnel-router*(8), *ip-rule*(8), *ip-route*(8)\n");
        return s.ToString();
    }

    const string Example = """
        {
          "Tables":  { "vpn": 200 },
          "Rules":   [ "from 10.10.10.0/24 lookup vpn" ],
          "Routes":  [ "default via 192.168.1.1 table vpn" ],
          "FailClosed": [ "vpn" ],
          "Uplinks": [ { "Interface": "eth0", "Table": "lan1" } ]
        }

        """;
}
