using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace TunnelRouter.Core;

/// <summary>Resolves a table name or number to its id; null when neither rt_tables nor the policy define it.</summary>
public delegate uint? TableResolver(string nameOrNumber);

/// <summary>
/// Parses rule and route lines written the way every how-to writes them, as the arguments of
/// <c>ip rule add</c> / <c>ip route add</c> ("from 10.10.10.0/24 lookup vpn pref 1000",
/// "-6 default via fd00:1010:1010:1010::1 dev eth1 table vpn"), into <see cref="Rule"/> and
/// <see cref="Route"/> records. Pure. Every error names the line (<c>field</c>), the word by position and
/// what was expected there, so a typo in a policy of fifty lines is found at once.
/// </summary>
public static class PolicyLine
{
    const string RuleExpected =
        "expected a selector (not, from, to, fwmark, iif, oif, ipproto, sport, dport, uidrange, tos, suppress_prefixlength), " +
        "an action (lookup, blackhole, unreachable, prohibit) or pref";

    const string RouteOptions = "via, dev, src, metric, table, onlink, mtu";

    /// <summary>The words a rule or route line may hold, for "did you mean" (a typo like "lokup").</summary>
    static readonly string[] RuleWords =
        ["not", "from", "to", "fwmark", "iif", "oif", "ipproto", "sport", "dport", "uidrange", "tos", "suppress_prefixlength",
         "lookup", "table", "blackhole", "unreachable", "prohibit", "pref", "priority"];
    static readonly string[] RouteWords =
        ["via", "dev", "src", "metric", "table", "onlink", "mtu", "default", "unicast", "unreachable", "blackhole", "prohibit", "throw"];

    /// <summary>Every table name a line may use; set per parse by the policy (for "did you mean" on a misspelt name).</summary>
    public sealed record Tables(TableResolver Resolve, IEnumerable<string> Names)
    {
        public static implicit operator Tables(TableResolver resolve) => new(resolve, []);
    }

    /// <param name="field">the line's name in errors, e.g. "policy.json: Rules[2]".</param>
    /// <param name="automaticPriority">the priority when the line has no pref; null when none is left to give.</param>
    public static Rule ParseRule(LineField field, string? line, Tables tables, byte protocol, uint? automaticPriority)
    {
        var w = new Words(field, line, "an ip rule such as 'from 10.10.10.0/24 lookup vpn'", stackalloc int[Words.OnStack]);
        AddressFamily? family = w.Family();
        var familyWord = family is null ? -1 : 0;

        bool not = false;
        IPNetwork? from = null, to = null;
        uint? mark = null, mask = null, priority = null, table = null;
        string? iif = null, oif = null;
        PortRange? sport = null, dport = null;
        byte? ipproto = null;
        UidRange? uid = null;
        byte tos = 0;
        int? suppress = null;
        RuleAction? action = null;
        // What the line has said so far, a bit per keyword (its synonyms share it): each may be said once.
        var seen = 0;
        const int Action = 1 << 13;

        while (w.More)
        {
            var at = w.Index;
            var word = w.Take();
            var key = word switch
            {
                "not" => 1 << 0,
                "from" => 1 << 1,
                "to" => 1 << 2,
                "fwmark" => 1 << 3,
                "iif" or "dev" => 1 << 4,
                "oif" => 1 << 5,
                "sport" => 1 << 6,
                "dport" => 1 << 7,
                "ipproto" => 1 << 8,
                "uidrange" => 1 << 9,
                "tos" or "dsfield" => 1 << 10,
                "suppress_prefixlength" or "sup_pl" => 1 << 11,
                "pref" or "priority" or "preference" or "order" => 1 << 12,
                "lookup" or "table" or "blackhole" or "unreachable" or "prohibit" or "type" => Action,
                _ => 0,
            };
            if ((seen & key) != 0)
                throw w.Error(at, key == Action ? "the rule already has an action" : $"'{word}' is given twice");
            seen |= key;

            switch (word)
            {
                case "not": not = true; break;
                case "from": from = Selector(ref w, ref family, ref familyWord); break;
                case "to": to = Selector(ref w, ref family, ref familyWord); break;
                case "fwmark":
                {
                    var v = w.Value("a mark, e.g. 0xf2 or 0xf2/0xff");
                    var slash = v.IndexOf('/');
                    uint k = 0;
                    if (!NameMap.TryParseNumber(slash < 0 ? v : v[..slash], out var m)
                        || (slash >= 0 && !NameMap.TryParseNumber(v[(slash + 1)..], out k)))
                        throw w.Error(w.Index - 1, "expected a mark, e.g. 0xf2 or 0xf2/0xff (hexadecimal with 0x, or decimal)");
                    mark = m;
                    mask = slash >= 0 ? k : null;
                    break;
                }
                case "iif" or "dev": iif = Device(ref w); break;
                case "oif": oif = Device(ref w); break;
                case "sport": sport = Ports(ref w); break;
                case "dport": dport = Ports(ref w); break;
                case "ipproto":
                {
                    var v = w.Value("a protocol (tcp, udp, icmp, ...) or its number");
                    if (!IpProtocols.TryParse(v.ToString(), out var p))
                        throw w.Error(w.Index - 1, "expected a protocol (tcp, udp, icmp, ipv6-icmp, gre, esp, sctp) or a number 0-255");
                    ipproto = p;
                    break;
                }
                case "uidrange":
                {
                    var v = w.Value("a uid range START-END");
                    var dash = v.IndexOf('-');
                    if (dash <= 0 || !uint.TryParse(v[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out var a)
                        || !uint.TryParse(v[(dash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var b) || a > b)
                        throw w.Error(w.Index - 1, "expected a uid range START-END with START <= END, e.g. 1000-1999");
                    uid = new UidRange(a, b);
                    break;
                }
                case "tos" or "dsfield":
                {
                    // iproute2 reads a tos as hexadecimal, with or without 0x.
                    var v = w.Value("a tos value in hexadecimal, e.g. 0x10");
                    var hex = v.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? v[2..] : v;
                    if (hex.Length is 0 or > 2 || !byte.TryParse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var t))
                        throw w.Error(w.Index - 1, "expected a tos value in hexadecimal from 0x00 to 0xff, e.g. 0x10");
                    tos = t;
                    break;
                }
                case "suppress_prefixlength" or "sup_pl":
                {
                    var v = w.Value("a prefix length");
                    if (!int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n > 128)
                        throw w.Error(w.Index - 1, "expected a prefix length from 0 to 128");
                    suppress = n;
                    break;
                }
                case "pref" or "priority" or "preference" or "order":
                {
                    var v = w.Value("a priority");
                    if (!uint.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n == 0)
                        throw w.Error(w.Index - 1, "expected a priority from 1 to 4294967295 (0 is the kernel's 'lookup local' rule)");
                    priority = n;
                    break;
                }
                case "lookup" or "table":
                    action = RuleAction.Lookup;
                    table = Table(ref w, tables);
                    break;
                case "blackhole": action = RuleAction.Blackhole; break;
                case "unreachable": action = RuleAction.Unreachable; break;
                case "prohibit": action = RuleAction.Prohibit; break;
                case "type":
                {
                    var v = w.Value("a rule type (blackhole, unreachable, prohibit)");
                    action = v switch
                    {
                        "blackhole" => RuleAction.Blackhole,
                        "unreachable" => RuleAction.Unreachable,
                        "prohibit" => RuleAction.Prohibit,
                        _ => throw w.Error(w.Index - 1, "expected a rule type (blackhole, unreachable, prohibit)"),
                    };
                    break;
                }
                case "protocol" or "proto":
                    throw w.Error(at, "tunnel-router sets the protocol itself (it marks what tunnel-router owns); remove it");
                case "goto" or "nop" or "nat" or "map-to" or "realms" or "l3mdev" or "tun_id" or "suppress_ifgroup" or "sup_group":
                    throw w.Error(at, "is not supported by tunnel-router");
                case "-4" or "-6" or "inet" or "inet6":
                    throw w.Error(at, "a family (-4, -6, inet, inet6) goes first on the line");
                case "ip" when at == 0:
                    throw w.Error(at, "write the rule without 'ip rule add', e.g. 'from 10.10.10.0/24 lookup vpn'");
                default:
                    throw w.Error(at, Core.Suggest.Closest(word.ToString(), RuleWords) is { } meant ? $"did you mean '{meant}'? {RuleExpected}" : RuleExpected);
            }
        }

        if (action is null)
            throw new InputException(field.ToString(), $"'{Net.Printable(w.Line)}' has no action; add 'lookup TABLE' (or blackhole, unreachable, prohibit)");
        var pref = priority ?? automaticPriority
            ?? throw new InputException(field.ToString(), $"'{Net.Printable(w.Line)}' has no pref and the automatic band is full; add 'pref N'");

        return new Rule(family ?? AddressFamily.InterNetwork, pref, action.Value, table ?? 0, protocol,
            from: from, to: to, not: not, fwMark: mark, fwMask: mask, iif: iif, oif: oif, sourcePort: sport,
            destinationPort: dport, ipProto: ipproto, uidRange: uid, tos: tos, suppressPrefixLength: suppress);
    }

    /// <param name="field">the line's name in errors, e.g. "policy.json: Routes[0]".</param>
    public static Route ParseRoute(LineField field, string? line, Tables tables, byte protocol)
    {
        var w = new Words(field, line, "an ip route such as 'default via 192.168.1.1 table vpn'", stackalloc int[Words.OnStack]);
        AddressFamily? family = w.Family();
        var familyWord = family is null ? -1 : 0;

        RouteType? type = null;
        IPNetwork? destination = null;
        IPAddress? via = null, src = null;
        string? dev = null;
        uint? metric = null, table = null, mtu = null;
        bool onlink = false;
        string? scope = null;
        int scopeWord = -1;
        // What the line has said so far, a bit per keyword (its synonyms share it): each may be said once.
        var seen = 0;

        while (w.More)
        {
            var at = w.Index;
            var word = w.Take();
            var key = word switch
            {
                "via" => 1 << 0,
                "dev" or "oif" => 1 << 1,
                "src" => 1 << 2,
                "metric" or "preference" or "priority" => 1 << 3,
                "table" => 1 << 4,
                "onlink" => 1 << 5,
                "mtu" => 1 << 6,
                "scope" => 1 << 7,
                "pref" => 1 << 8,
                "to" => 1 << 9,
                _ => 0,
            };
            if ((seen & key) != 0) throw w.Error(at, $"'{word}' is given twice");
            seen |= key;

            switch (word)
            {
                case "unicast" or "unreachable" or "blackhole" or "prohibit" or "throw" when type is null && destination is null:
                    type = Enum.Parse<RouteType>(word, ignoreCase: true);
                    break;
                case "local" or "broadcast" or "anycast" or "multicast" or "nat" when destination is null:
                    throw w.Error(at, "this route type is not supported by tunnel-router (unicast, unreachable, blackhole, prohibit, throw)");
                case "to":
                    if (destination is not null) throw w.Error(at, "the route already has a destination");
                    destination = Destination(ref w, w.Value("a destination (default or PREFIX)"), w.Index - 1, ref family, ref familyWord);
                    break;
                case "via":
                {
                    var v = w.Value("a gateway address");
                    if (v is "inet" or "inet6")
                    {
                        var stated = v is "inet6" ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork;
                        v = w.Value("a gateway address");
                        if (!Net.TryParseAddress(v, out var a) || a.AddressFamily != stated)
                            throw w.Error(w.Index - 1, $"expected an {(stated.IsV6() ? "IPv6" : "IPv4")} gateway address");
                    }
                    via = Address(ref w, v, w.Index - 1, "a gateway address", ref family, ref familyWord);
                    break;
                }
                case "dev" or "oif": dev = Device(ref w); break;
                case "src":
                {
                    var v = w.Value("a source address");
                    src = Address(ref w, v, w.Index - 1, "a source address", ref family, ref familyWord);
                    break;
                }
                case "metric" or "preference" or "priority":
                {
                    var v = w.Value("a metric");
                    if (!uint.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
                        throw w.Error(w.Index - 1, "expected a metric from 0 to 4294967295");
                    metric = n;
                    break;
                }
                case "table": table = Table(ref w, tables); break;
                case "onlink": onlink = true; break;
                case "mtu":
                {
                    var v = w.Value("an MTU");
                    if (v is "lock") throw w.Error(w.Index - 1, "'mtu lock' is not supported by tunnel-router");
                    if (!uint.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n is < 68 or > 65535)
                        throw w.Error(w.Index - 1, "expected an MTU from 68 to 65535");
                    mtu = n;
                    break;
                }
                case "scope":
                    scope = w.Value("a scope (link, global)").ToString();
                    scopeWord = w.Index - 1;
                    if (scope is not ("link" or "global" or "universe"))
                        throw w.Error(scopeWord, "expected scope link or global (tunnel-router supports no other scope)");
                    break;
                case "pref":
                    // IPv6 router preference (RFC 4191), not the metric: only the kernel's default is supported.
                    if (w.Value("an IPv6 router preference") is not "medium")
                        throw w.Error(w.Index - 1, "only 'pref medium' (the kernel's default) is supported; for the route's priority use 'metric'");
                    break;
                case "proto" or "protocol":
                    throw w.Error(at, "tunnel-router sets the protocol itself (it marks what tunnel-router owns); remove it");
                case "nexthop" or "nhid" or "weight" or "realm" or "realms" or "advmss" or "rtt" or "rttvar" or "window" or "cwnd"
                    or "initcwnd" or "initrwnd" or "encap" or "expires" or "tos" or "dsfield" or "features" or "quickack"
                    or "congctl" or "fastopen_no_cookie" or "ssthresh" or "reordering" or "hoplimit" or "rto_min" or "ttl-propagate":
                    throw w.Error(at, "is not supported by tunnel-router");
                case "-4" or "-6" or "inet" or "inet6":
                    throw w.Error(at, "a family (-4, -6, inet, inet6) goes first on the line");
                case "ip" when at == 0:
                    throw w.Error(at, "write the route without 'ip route add', e.g. 'default via 192.168.1.1 table vpn'");
                default:
                    var meant = LooksLikeDestination(word) ? "" : Core.Suggest.Closest(word.ToString(), RouteWords) is { } m ? $"did you mean '{m}'? " : "";
                    if (destination is not null)
                        throw w.Error(at, $"{meant}expected an option ({RouteOptions})");
                    if (!LooksLikeDestination(word))
                        throw w.Error(at, $"{meant}expected a destination (default or PREFIX), a route type (unicast, unreachable, blackhole, prohibit, throw) or an option ({RouteOptions})");
                    destination = Destination(ref w, word, at, ref family, ref familyWord);
                    break;
            }
        }

        if (destination is not { } dst)
            throw new InputException(field.ToString(), $"'{Net.Printable(w.Line)}' has no destination; expected 'default' or a PREFIX");
        var t = type ?? RouteType.Unicast;
        var f = family ?? AddressFamily.InterNetwork;
        if (dst.PrefixLength == 0 && dst.Family() != f) dst = new IPNetwork(f.IsV6() ? IPAddress.IPv6Any : IPAddress.Any, 0);

        if (t == RouteType.Unicast && via is null && dev is null)
            throw new InputException(field.ToString(), $"'{Net.Printable(w.Line)}' needs 'via ADDRESS' or 'dev NAME'");
        if (t != RouteType.Unicast && (via is not null || dev is not null || onlink))
            throw new InputException(field.ToString(), $"'{Net.Printable(w.Line)}': a route of type {t.ToString().ToLowerInvariant()} takes no via, dev or onlink");
        if (onlink && via is null)
            throw new InputException(field.ToString(), $"'{Net.Printable(w.Line)}': onlink needs 'via ADDRESS'");
        // ip picks scope link for a route without a gateway and global for one with: say so rather than ignore it.
        var implied = t == RouteType.Unicast && via is null ? "link" : "global";
        if (scope is not null && (scope == "link") != (implied == "link"))
            throw w.Error(scopeWord, $"tunnel-router gives this route scope {implied}, as ip does; remove 'scope {scope}'");

        return new Route(dst, table ?? TableNames.Main, protocol, device: dev, gateway: via, source: src,
            metric: metric, type: t, onLink: onlink, mtu: mtu ?? 0);
    }

    static IPNetwork? Selector(ref Words w, ref AddressFamily? family, ref int familyWord)
    {
        var v = w.Value("an address, a PREFIX or all");
        var at = w.Index - 1;
        if (v is "all" or "any" or "default") return null;
        return Destination(ref w, v, at, ref family, ref familyWord);
    }

    static bool LooksLikeDestination(ReadOnlySpan<char> word) =>
        word is "default" or "all" or "any" || (word.Length > 0 && (char.IsAsciiDigit(word[0]) || word.Contains(':')));

    static IPNetwork Destination(ref Words w, ReadOnlySpan<char> text, int at, ref AddressFamily? family, ref int familyWord)
    {
        if (text is "default" or "all" or "any")
            return new IPNetwork(family is { } f && f.IsV6() ? IPAddress.IPv6Any : IPAddress.Any, 0);
        var slash = text.IndexOf('/');
        var addressText = slash < 0 ? text : text[..slash];
        if (!Net.TryParseAddress(addressText, out var address))
            throw w.Error(at, "expected an IPv4 or IPv6 address or PREFIX, e.g. 10.10.10.0/24 or fd00::/64");
        CheckFamily(ref w, at, address.AddressFamily, ref family, ref familyWord);
        var max = Net.MaxPrefix(address.AddressFamily);
        var prefix = max;
        if (slash >= 0)
        {
            var bits = text[(slash + 1)..];
            if (bits.Length is 0 or > 3 || bits.ContainsAnyExceptInRange('0', '9') || (prefix = int.Parse(bits, CultureInfo.InvariantCulture)) > max)
                throw w.Error(at, $"expected a prefix length from 0 to {max} after '/'");
        }
        var net = Net.Masked(address, prefix);
        if (!net.BaseAddress.Equals(address))
            throw w.Error(at, $"has host bits set; did you mean {Net.Format(net)}?");
        return net;
    }

    static IPAddress Address(ref Words w, ReadOnlySpan<char> text, int at, string what, ref AddressFamily? family, ref int familyWord)
    {
        if (!Net.TryParseAddress(text, out var address))
            throw w.Error(at, $"expected {what} (IPv4 or IPv6)");
        CheckFamily(ref w, at, address.AddressFamily, ref family, ref familyWord);
        return address;
    }

    static void CheckFamily(ref Words w, int at, AddressFamily found, ref AddressFamily? family, ref int familyWord)
    {
        if (family is null) { family = found; familyWord = at; return; }
        if (family != found)
            throw w.Error(at, $"is {Name(found)}, but word {familyWord + 1} '{Net.Printable(w[familyWord].ToString())}' made the line {Name(family.Value)}");
    }

    static string Name(AddressFamily f) => f.IsV6() ? "IPv6" : "IPv4";

    static string Device(ref Words w)
    {
        var v = w.ValueString("an interface name");
        try { return InterfaceName.Validate("dev", v); }
        catch (InputException)
        {
            throw w.Error(w.Index - 1, $"expected an interface name (at most {InterfaceName.MaxLength} letters, digits, - _ . @ +)");
        }
    }

    static PortRange Ports(ref Words w)
    {
        var v = w.Value("a port or port range, e.g. 22 or 1024-65535");
        var dash = v.IndexOf('-');
        if (!ushort.TryParse(dash < 0 ? v : v[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out var a)
            || (dash >= 0 && !ushort.TryParse(v[(dash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out _)))
            throw w.Error(w.Index - 1, "expected a port (0-65535) or a range START-END, e.g. 22 or 1024-65535");
        var b = dash < 0 ? a : ushort.Parse(v[(dash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture);
        if (a > b) throw w.Error(w.Index - 1, "the range's start is greater than its end");
        return new PortRange(a, b);
    }

    static uint Table(ref Words w, Tables tables)
    {
        var v = w.ValueString("a table name or number");
        var id = tables.Resolve(v) ?? throw w.Error(w.Index - 1, Core.Suggest.Closest(v, tables.Names) is { } meant
            ? $"is not a table defined in rt_tables or the policy's Tables; did you mean '{meant}'?"
            : "is not a table defined in rt_tables or the policy's Tables; add it to Tables, e.g. \"Tables\": { \"vpn\": 200 }");
        if (id is 0 or > int.MaxValue) throw w.Error(w.Index - 1, $"expected a table from 1 to {int.MaxValue}");
        return id;
    }

    [ThreadStatic] static string[]? _recent;

    /// <summary>The word as a string: one the last lines made for the same word when there is one, so the
    /// devices and tables of 10,000 lines are a few strings, not 20,000.</summary>
    static string Shared(ReadOnlySpan<char> word)
    {
        var recent = _recent ??= new string[8];
        var at = 0;
        while (at < recent.Length && !(recent[at] is { } s && word.SequenceEqual(s))) at++;
        // The word found (or made) moves to the front, so the words a policy repeats stay while others come and go.
        var shared = at < recent.Length ? recent[at] : word.ToString();
        Array.Copy(recent, 0, recent, 1, Math.Min(at, recent.Length - 1));
        return recent[0] = shared;
    }

    /// <summary>The words of one line, with positions for errors: slices of the line, their bounds on the stack,
    /// made strings only where a string is kept (a device, a table name), and then shared with the lines before.</summary>
    ref struct Words
    {
        /// <summary>Bounds for 32 words fit the caller's stack; a longer line takes an array.</summary>
        public const int OnStack = 64;

        readonly LineField _field;
        readonly Span<int> _bounds; // start and end of each word in Line
        readonly int _count;

        public Words(LineField field, string? line, string example, Span<int> buffer)
        {
            _field = field;
            Line = (line ?? "").Trim();
            var text = Line.AsSpan();
            for (var i = 0; i < text.Length;)
            {
                var next = text[i..].IndexOfAny(' ', '\t');
                if (next != 0) _count++;
                if (next < 0) break;
                i += next + 1;
            }
            if (_count == 0) throw new InputException(field.ToString(), $"is empty; expected {example}");
            _bounds = _count * 2 <= buffer.Length ? buffer : new int[_count * 2];
            for (int i = 0, n = 0; i < text.Length;)
            {
                var next = text[i..].IndexOfAny(' ', '\t');
                var end = next < 0 ? text.Length : i + next;
                if (end > i)
                {
                    _bounds[n++] = i;
                    _bounds[n++] = end;
                }
                i = end + 1;
            }
        }

        public string Line { get; }
        public int Index { get; private set; }
        public bool More => Index < _count;
        public ReadOnlySpan<char> this[int i] => Line.AsSpan(_bounds[2 * i], _bounds[2 * i + 1] - _bounds[2 * i]);

        public ReadOnlySpan<char> Take() => this[Index++];

        /// <summary>The word after a keyword; the end of the line is an error naming the keyword.</summary>
        public ReadOnlySpan<char> Value(string expected)
        {
            if (More) return Take();
            throw new InputException(_field.ToString(), $"word {Index} '{Net.Printable(this[Index - 1].ToString())}': expected {expected} after it, found the end of the line");
        }

        /// <summary>The same, as a string: the same string as a line before made for the same word.</summary>
        public string ValueString(string expected) => Shared(Value(expected));

        /// <summary>A leading -4/-6/inet/inet6 fixes the family of the line.</summary>
        public AddressFamily? Family()
        {
            AddressFamily? f = this[0] switch
            {
                "-4" or "inet" => AddressFamily.InterNetwork,
                "-6" or "inet6" => AddressFamily.InterNetworkV6,
                _ => null,
            };
            if (f is not null) Index = 1;
            if (f is not null && !More) throw new InputException(_field.ToString(), $"word 1 '{this[0]}': expected a rule or route after the family, found the end of the line");
            return f;
        }

        public InputException Error(int index, string expected) =>
            new(_field.ToString(), $"word {index + 1} '{Net.Printable(this[index].ToString())}': {expected}");
    }
}
