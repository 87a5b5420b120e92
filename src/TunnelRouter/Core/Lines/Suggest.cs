namespace TunnelRouter.Core;

/// <summary>"did you mean ...?": the known word closest to a mistyped one, by edit distance with
/// transpositions ("vnp" → "vpn", "statsu" → "status"). Pure.</summary>
public static class Suggest
{
    /// <summary>The closest candidate within a distance that still reads as a typo (1 for short words, up to
    /// a third of the word), or null. Case is ignored; the candidate is returned as spelt.</summary>
    public static string? Closest(string word, IEnumerable<string> candidates)
    {
        if (word.Length == 0) return null;
        var limit = Math.Max(1, Math.Min(3, word.Length / 3));
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var c in candidates)
        {
            if (c.Equals(word, StringComparison.Ordinal)) continue;
            var d = Distance(word.ToLowerInvariant(), c.ToLowerInvariant());
            if (d <= limit && d < bestDistance) (best, bestDistance) = (c, d);
        }
        return best;
    }

    /// <summary>"; did you mean 'apply'?" or "".</summary>
    public static string DidYouMean(string word, IEnumerable<string> candidates) =>
        Closest(word, candidates) is { } s ? $"; did you mean '{s}'?" : "";

    /// <summary>Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours.</summary>
    static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (var j = 0; j <= b.Length; j++) d[0, j] = j;
        for (var i = 1; i <= a.Length; i++)
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        return d[a.Length, b.Length];
    }
}
