using System.Collections;
using System.Net;
using System.Numerics;

namespace TunnelRouter.Core;

/// <summary>What a route holds besides its key. The routes of a prefix file or of one table's dump mostly agree
/// on it, so a bulk list holds one of these for all of them.</summary>
internal sealed record RouteTail(byte Protocol, string? Device, IPAddress? Gateway, IPAddress? Source, RouteType Type, bool OnLink, uint Mtu, uint Nexthop = 0)
{
    public RouteTail(Route r) : this(r.Protocol, r.Device, r.Gateway, r.Source, r.Type, r.OnLink, r.Mtu, r.Nexthop) { }
}

/// <summary>A <see cref="Route"/> as a key and a shared tail: equal exactly when the routes are equal.</summary>
internal readonly struct PackedRoute(PackedRouteKey key, RouteTail tail) : IEquatable<PackedRoute>
{
    public readonly PackedRouteKey Key = key;
    public readonly RouteTail Tail = tail;

    public bool Equals(PackedRoute other) => Key.Equals(other.Key) && (ReferenceEquals(Tail, other.Tail) || Tail.Equals(other.Tail));
    public override bool Equals(object? obj) => obj is PackedRoute other && Equals(other);
    public override int GetHashCode() => Key.GetHashCode();

    public Route ToRoute() => new(Key.Destination, Key.Table, Tail.Protocol, Tail.Device, Tail.Gateway, Tail.Source, Key.Metric,
        Tail.Type, Tail.OnLink, Tail.Mtu, Tail.Nexthop);
}

/// <summary>
/// Routes stored packed, for the bulk path (prefix files, dumps of big tables): a million routes are a million
/// 40-byte structs in one array, which the GC moves and marks as one object, instead of a million
/// <see cref="Route"/> records with an <see cref="IPAddress"/> each. Read as a list of routes it makes each
/// <see cref="Route"/> on the way out; the planner reads the packed form and makes routes only for changes.
/// </summary>
internal sealed class PackedRoutes(int capacity = 0) : IReadOnlyList<Route>
{
    PackedRoute[] _items = capacity == 0 ? [] : new PackedRoute[capacity];
    int _count;
    RouteTail? _lastTail;
    Dictionary<RouteTail, RouteTail>? _tails;

    public int Count => _count;

    public Route this[int index] => At(index).ToRoute();

    public ref readonly PackedRoute At(int index)
    {
        if ((uint)index >= (uint)_count) throw new ArgumentOutOfRangeException(nameof(index));
        return ref _items[index];
    }

    public void Add(in PackedRoute route)
    {
        if (_count == _items.Length) Array.Resize(ref _items, Math.Max(16, _items.Length * 2));
        _items[_count++] = route;
    }

    public void Set(int index, in PackedRoute route)
    {
        if ((uint)index >= (uint)_count) throw new ArgumentOutOfRangeException(nameof(index));
        _items[index] = route;
    }

    public void Add(Route route) => Add(new PackedRoute(new PackedRouteKey(route),
        Tail(route.Protocol, route.Device, route.Gateway, route.Source, route.Type, route.OnLink, route.Mtu, route.Nexthop)));

    /// <summary>One tail object for all equal tails of this list.</summary>
    public RouteTail Tail(RouteTail tail)
    {
        if (_lastTail is not null && (ReferenceEquals(_lastTail, tail) || _lastTail.Equals(tail))) return _lastTail;
        _tails ??= [];
        if (!_tails.TryGetValue(tail, out var shared)) _tails.Add(tail, shared = tail);
        return _lastTail = shared;
    }

    /// <summary>The same, made only when it differs from the last tail: a dump's routes mostly agree.</summary>
    public RouteTail Tail(byte protocol, string? device, IPAddress? gateway, IPAddress? source, RouteType type, bool onLink, uint mtu, uint nexthop = 0) =>
        _lastTail is { } last && last.Protocol == protocol && last.Device == device && Equals(last.Gateway, gateway) && Equals(last.Source, source)
        && last.Type == type && last.OnLink == onLink && last.Mtu == mtu && last.Nexthop == nexthop
            ? last
            : Tail(new RouteTail(protocol, device, gateway, source, type, onLink, mtu, nexthop));

    public void EnsureCapacity(int capacity)
    {
        if (capacity > _items.Length) Array.Resize(ref _items, capacity);
    }

    /// <summary>The routes from <paramref name="start"/> on, <paramref name="count"/> of them, as a list of their own
    /// (read through this one: later additions here leave it as it is).</summary>
    public IReadOnlyList<Route> Range(int start, int count) => new PackedRange(this, start, count);

    sealed class PackedRange(PackedRoutes routes, int start, int count) : IReadOnlyList<Route>
    {
        public int Count => count;
        public Route this[int index] => (uint)index < (uint)count ? routes[start + index] : throw new ArgumentOutOfRangeException(nameof(index));

        public IEnumerator<Route> GetEnumerator()
        {
            for (var i = 0; i < count; i++) yield return routes[start + i];
        }

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>Drops the routes from <paramref name="start"/> on (a dump that is read again).</summary>
    public void Truncate(int start) => _count = Math.Min(_count, start);

    public IEnumerator<Route> GetEnumerator()
    {
        for (var i = 0; i < _count; i++) yield return _items[i].ToRoute();
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Whether the keys of the routes [start, end) never go down (<see cref="PackedRouteKey.CompareTo"/>):
    /// then equal keys are neighbours.</summary>
    public static bool Ascending(PackedRoutes routes, int start, int end)
    {
        for (var i = start + 1; i < end; i++)
            if (routes.At(i - 1).Key.CompareTo(routes.At(i).Key) > 0) return false;
        return true;
    }

    /// <summary><paramref name="routes"/> itself when packed already, else a packed copy.</summary>
    public static PackedRoutes Of(IReadOnlyList<Route> routes)
    {
        if (routes is PackedRoutes packed) return packed;
        var copy = new PackedRoutes(routes.Count);
        foreach (var r in routes) copy.Add(r);
        return copy;
    }
}

/// <summary>
/// An index of a <see cref="PackedRoutes"/> by <see cref="PackedRouteKey"/>: open addressing over the list's
/// positions, 8 bytes a route, sized once. Routes with one key are found in the order they were added.
/// </summary>
internal sealed class RouteIndex
{
    readonly PackedRoutes _routes;
    readonly int[] _slots; // position + 1; 0 is empty
    readonly int _mask;

    /// <param name="capacity">how many routes it will index at most: the list's count when not given.</param>
    public RouteIndex(PackedRoutes routes, int capacity = -1)
    {
        _routes = routes;
        var size = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(8, (capacity < 0 ? routes.Count : capacity) * 2));
        _slots = new int[size];
        _mask = size - 1;
    }

    int Home(in PackedRouteKey key) => key.GetHashCode() & _mask;

    /// <summary>Indexes the route at <paramref name="position"/>; false (and not indexed) when an equal route
    /// already is.</summary>
    public bool Add(int position)
    {
        ref readonly var route = ref _routes.At(position);
        for (var s = Home(route.Key); ; s = (s + 1) & _mask)
        {
            var other = _slots[s] - 1;
            if (other < 0) { _slots[s] = position + 1; return true; }
            if (_routes.At(other).Equals(route)) return false;
        }
    }

    /// <summary>Indexes the route at <paramref name="position"/> unless a route with its key already is (then
    /// false): one probe where <see cref="First"/> and <see cref="Insert"/> would take two.</summary>
    public bool AddKey(int position) => AddKey(position, out _);

    /// <summary>The same; <paramref name="first"/>: the position of the route indexed with its key when false.</summary>
    public bool AddKey(int position, out int first)
    {
        ref readonly var key = ref _routes.At(position).Key;
        for (var s = Home(key); ; s = (s + 1) & _mask)
        {
            first = _slots[s] - 1;
            if (first < 0) { _slots[s] = position + 1; return true; }
            if (_routes.At(first).Key.Equals(key)) return false;
        }
    }

    /// <summary>Indexes the route at <paramref name="position"/>, whatever else is indexed.</summary>
    public void Insert(int position)
    {
        var s = Home(_routes.At(position).Key);
        while (_slots[s] != 0) s = (s + 1) & _mask;
        _slots[s] = position + 1;
    }

    /// <summary>The position of a route indexed that equals <paramref name="route"/>, or -1; <paramref name="first"/>:
    /// the first route indexed with its key, or -1. One probe where <see cref="First"/> and <see cref="Contains"/>
    /// would take two.</summary>
    public int Find(in PackedRoute route, out int first)
    {
        first = -1;
        for (var s = Home(route.Key); ; s = (s + 1) & _mask)
        {
            var other = _slots[s] - 1;
            if (other < 0) return -1;
            ref readonly var candidate = ref _routes.At(other);
            if (!candidate.Key.Equals(route.Key)) continue;
            if (first < 0) first = other;
            if (candidate.Equals(route)) return other;
        }
    }

    /// <summary>The position of the first route indexed with <paramref name="key"/>, or -1.</summary>
    public int First(in PackedRouteKey key) => FirstOf(key, null);

    public bool Contains(in PackedRoute route)
    {
        for (var s = Home(route.Key); ; s = (s + 1) & _mask)
        {
            var other = _slots[s] - 1;
            if (other < 0) return false;
            if (_routes.At(other).Equals(route)) return true;
        }
    }

    /// <summary>The position of the first route with <paramref name="key"/>, in the order indexed, that
    /// <paramref name="match"/> accepts, or -1.</summary>
    public int FirstOf(in PackedRouteKey key, Func<Route, bool>? match)
    {
        for (var s = Home(key); ; s = (s + 1) & _mask)
        {
            var other = _slots[s] - 1;
            if (other < 0) return -1;
            if (_routes.At(other).Key.Equals(key) && (match is null || match(_routes[other]))) return other;
        }
    }
}
