namespace TunnelRouter.Core;

/// <summary>One OSPF neighbour as the daemon lists it: the interface it is on and its state.</summary>
public sealed record OspfNeighbour(string Interface, string RouterId, string State)
{
    /// <summary>Full: the databases are exchanged and routes flow (Full/PtP, Full/DR, Full/-, ...).</summary>
    public bool IsFull => State.StartsWith("Full", StringComparison.Ordinal);

    /// <summary>ExStart/Exchange for good: the two ends disagree on the MTU in their database descriptions.</summary>
    public bool IsStuckOnMtu => State.StartsWith("ExStart", StringComparison.Ordinal) || State.StartsWith("Exchange", StringComparison.Ordinal);
}

/// <summary>Reads the daemons' neighbour tables (pure: the command's output in, neighbours out).</summary>
public static class OspfNeighbours
{
    /// <summary>
    /// <c>birdc show ospf neighbors</c>:
    /// <code>
    /// Router ID   	Pri	     State     	DTime	Interface  Router IP
    /// 10.99.0.2   	  1	Full/PtP  	 3.988	o0         10.99.0.2
    /// </code>
    /// </summary>
    public static IReadOnlyList<OspfNeighbour> ParseBird(string output) =>
        Rows(output, words => words.Length >= 6 && System.Net.IPAddress.TryParse(words[0], out _)
            ? new OspfNeighbour(words[4], words[0], words[2]) : null);

    /// <summary>
    /// <c>vtysh -c 'show ip ospf neighbor'</c>:
    /// <code>
    /// Neighbor ID     Pri State           Up Time         Dead Time Address         Interface     RXmtL RqstL DBsmL
    /// 10.98.0.2         1 Full/-          7.302s             3.846s 10.98.0.2       o0:10.98.0.1      1     0     0
    /// </code>
    /// </summary>
    public static IReadOnlyList<OspfNeighbour> ParseFrr(string output) =>
        Rows(output, words => words.Length >= 7 && System.Net.IPAddress.TryParse(words[0], out _)
            ? new OspfNeighbour(words.First(w => w.Contains(':') && !System.Net.IPAddress.TryParse(w, out _)).Split(':')[0], words[0], words[2])
            : null);

    static List<OspfNeighbour> Rows(string output, Func<string[], OspfNeighbour?> row)
    {
        var list = new List<OspfNeighbour>();
        foreach (var line in output.Split('\n'))
        {
            var words = line.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            try
            {
                if (row(words) is { } n) list.Add(n);
            }
            catch (InvalidOperationException) { } // a row without an interface column: not a neighbour
        }
        return list;
    }
}
