using System.Collections;

namespace TunnelRouter.Core;

/// <summary>A list of changes that holds some of them as routes of a packed list: a backend that can write a
/// request from a <see cref="PackedRoute"/> reads those without making a change, a route and an address each.</summary>
internal interface IPackedChanges
{
    /// <summary>True when change <paramref name="index"/> adds (or, <paramref name="delete"/>, deletes) a packed route;
    /// false for a change of any other kind, which is read by index.</summary>
    bool TryPacked(int index, out PackedRoute route, out bool delete);
}

/// <summary>
/// Lists of changes joined or cut without copying them: a plan of a million routes stays the planner's
/// <see cref="PlannedChanges"/>, whose changes are made one at a time as they are read.
/// </summary>
public static class ChangeList
{
    /// <summary>The parts one after the other; a single non-empty part is returned as it is.</summary>
    public static IReadOnlyList<Change> Concat(params IReadOnlyList<Change>[] parts)
    {
        var nonEmpty = parts.Where(p => p.Count > 0).ToArray();
        return nonEmpty.Length switch
        {
            0 => [],
            1 => nonEmpty[0],
            _ => new Joined(nonEmpty),
        };
    }

    /// <summary>The changes [start, start + count) of <paramref name="list"/>; the list itself when that is all of it.</summary>
    public static IReadOnlyList<Change> Slice(IReadOnlyList<Change> list, int start, int count)
    {
        if (start < 0 || count < 0 || start + count > list.Count) throw new ArgumentOutOfRangeException(nameof(start));
        if (start == 0 && count == list.Count) return list;
        return list is Sliced s ? new Sliced(s.List, s.Start + start, count) : new Sliced(list, start, count);
    }

    abstract class View : IReadOnlyList<Change>, IPackedChanges
    {
        public abstract int Count { get; }
        public abstract Change this[int index] { get; }
        public abstract bool TryPacked(int index, out PackedRoute route, out bool delete);

        public IEnumerator<Change> GetEnumerator()
        {
            for (var i = 0; i < Count; i++) yield return this[i];
        }

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

        protected static bool TryPackedOf(IReadOnlyList<Change> list, int index, out PackedRoute route, out bool delete)
        {
            if (list is IPackedChanges packed) return packed.TryPacked(index, out route, out delete);
            route = default;
            delete = false;
            return false;
        }
    }

    sealed class Joined : View
    {
        readonly IReadOnlyList<Change>[] _parts;
        readonly int[] _starts;

        public Joined(IReadOnlyList<Change>[] parts)
        {
            _parts = parts;
            _starts = new int[parts.Length + 1];
            for (var i = 0; i < parts.Length; i++) _starts[i + 1] = _starts[i] + parts[i].Count;
        }

        public override int Count => _starts[^1];

        // A handful of parts: a scan finds the part.
        int PartOf(int index)
        {
            if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index));
            var p = 0;
            while (index >= _starts[p + 1]) p++;
            return p;
        }

        public override Change this[int index]
        {
            get
            {
                var p = PartOf(index);
                return _parts[p][index - _starts[p]];
            }
        }

        public override bool TryPacked(int index, out PackedRoute route, out bool delete)
        {
            var p = PartOf(index);
            return TryPackedOf(_parts[p], index - _starts[p], out route, out delete);
        }
    }

    sealed class Sliced(IReadOnlyList<Change> list, int start, int count) : View
    {
        public IReadOnlyList<Change> List => list;
        public int Start => start;
        public override int Count => count;

        public override Change this[int index] =>
            (uint)index < (uint)count ? list[start + index] : throw new ArgumentOutOfRangeException(nameof(index));

        public override bool TryPacked(int index, out PackedRoute route, out bool delete) =>
            (uint)index < (uint)count ? TryPackedOf(list, start + index, out route, out delete) : throw new ArgumentOutOfRangeException(nameof(index));
    }
}

/// <summary>One change of a plan: made already (<see cref="Made"/>), or the route at <see cref="Position"/> of the
/// plan's packed list to add (the desired routes) or to delete (the kernel's), made only when read.</summary>
internal readonly struct PlanStep
{
    public readonly Change? Made;
    public readonly int Position;
    public readonly bool Delete;

    PlanStep(Change? made, int position, bool delete)
    {
        Made = made;
        Position = position;
        Delete = delete;
    }

    public static PlanStep Of(Change change) => new(change, -1, false);
    public static PlanStep Add(int position) => new(null, position, false);
    public static PlanStep Remove(int position) => new(null, position, true);
}

/// <summary>
/// The planner's changes. The routes it adds or deletes are positions in the desired and the current packed
/// lists, 16 bytes a change, and each <see cref="AddRoute"/> or <see cref="DeleteRoute"/> is made when it is read:
/// a prefix file of a million routes is never a million change records alive at once.
/// </summary>
internal sealed class PlannedChanges(PackedRoutes adds, PackedRoutes deletes) : IReadOnlyList<Change>, IPackedChanges
{
    /// <summary>In order; filled and ordered by the planner, then only read.</summary>
    public List<PlanStep> Steps { get; } = [];

    public int Count => Steps.Count;

    public Change this[int index] => Make(Steps[index]);

    public Change Make(in PlanStep step) =>
        step.Made ?? (step.Delete ? new DeleteRoute(deletes[step.Position]) : new AddRoute(adds[step.Position]));

    public bool TryPacked(int index, out PackedRoute route, out bool delete)
    {
        var step = Steps[index];
        delete = step.Delete;
        if (step.Made is not null)
        {
            route = default;
            return false;
        }
        route = Packed(step);
        return true;
    }

    ref readonly PackedRoute Packed(in PlanStep step) => ref (step.Delete ? deletes : adds).At(step.Position);

    public bool IsRule(in PlanStep step) => step.Made?.IsRule ?? false;

    /// <summary>Whether the step adds, replaces or deletes a route of a type that stops packets (unreachable, blackhole,
    /// prohibit) or sends them back to the rules (throw).</summary>
    public bool IsBlocking(in PlanStep step) => step.Made is null ? Packed(step).Tail.Type != RouteType.Unicast : RouteOf(step) is { Type: not RouteType.Unicast };

    public bool IsV4(in PlanStep step) =>
        step.Made is { } made ? made.Family == System.Net.Sockets.AddressFamily.InterNetwork : !Packed(step).Key.IsV6;

    /// <summary>The route a step adds, replaces (the new one) or deletes; null for a change of another kind.</summary>
    public Route? RouteOf(in PlanStep step) => step.Made switch
    {
        null => Packed(step).ToRoute(),
        AddRoute a => a.Route,
        ReplaceRoute r => r.New,
        DeleteRoute d => d.Route,
        _ => null,
    };

    /// <summary>The table and gateway of a route via a gateway (not onlink), read without making the route.</summary>
    public (uint Table, System.Net.IPAddress Gateway)? Via(in PlanStep step)
    {
        if (step.Made is null)
        {
            ref readonly var p = ref Packed(step);
            return p.Tail.Gateway is { } g && !p.Tail.OnLink ? (p.Key.Table, g) : null;
        }
        return RouteOf(step) is { Gateway: { } gateway, OnLink: false } r ? (r.Table, gateway) : null;
    }

    public IEnumerator<Change> GetEnumerator()
    {
        for (var i = 0; i < Steps.Count; i++) yield return Make(Steps[i]);
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
