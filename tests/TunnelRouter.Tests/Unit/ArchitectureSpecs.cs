using System.Text.RegularExpressions;
using TunnelRouter.Tests.Support;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>The one-way arrows of docs/architecture.md, held against the source: which room may name which.</summary>
public partial class ArchitectureSpecs
{
    static readonly string Src = Repo.File("src", "TunnelRouter");

    /// <summary>The rooms each room may name besides itself (a using line or a qualified name).</summary>
    public static readonly TheoryData<string, string[]> Arrows = new()
    {
        { "Core", [] },
        { "Interop", [] },
        { "Config", ["Core", "Host", "Interop"] },
        { "Host", ["Core", "Kernel", "Interop"] },
        { "Kernel", ["Core", "Host", "Interop"] },
        { "Policy", ["Core", "Config", "Kernel", "Host", "Interop"] },
        { "Cli", ["Core", "Config", "Kernel", "Host", "Interop", "Policy"] },
    };

    [GeneratedRegex(@"\bTunnelRouter\.(Cli|Config|Core|Host|Interop|Kernel|Policy)\b")]
    private static partial Regex RoomName();

    [Theory]
    [MemberData(nameof(Arrows))]
    public void A_room_names_only_the_rooms_its_arrows_point_to(string room, string[] allowed)
    {
        var dir = Path.Combine(Src, room);
        Assert.True(Directory.Exists(dir), $"docs/architecture.md names {room}/, which is not in src/TunnelRouter");
        var wrong = Directory.EnumerateFiles(dir, "*.cs", SearchOption.AllDirectories)
            .SelectMany(file => File.ReadLines(file).Select((line, i) => (file, line, i)))
            .Where(x => !x.line.TrimStart().StartsWith("//", StringComparison.Ordinal))
            .SelectMany(x => RoomName().Matches(x.line).Select(m => (x.file, x.i, Room: m.Groups[1].Value)))
            .Where(x => x.Room != room && !allowed.Contains(x.Room))
            .Select(x => $"{Path.GetRelativePath(Src, x.file)}:{x.i + 1} names {x.Room}")
            .ToList();

        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    [Fact]
    public void Every_room_of_the_source_is_on_the_map()
    {
        var rooms = Directory.EnumerateDirectories(Src).Select(d => Path.GetFileName(d)!).Where(d => d is not ("bin" or "obj")).Order().ToList();
        var map = File.ReadAllText(Repo.File("docs", "architecture.md"));

        Assert.Equal(Arrows.Select(row => (string)row[0]).Order().ToList(), rooms);
        Assert.All(rooms, r => Assert.Contains($"`{r}/`", map));
        foreach (var part in Directory.EnumerateDirectories(Path.Combine(Src, "Core")).Select(d => Path.GetFileName(d)!))
            Assert.Contains($"`{part}/`", map);
    }
}
