using System.Net;
using System.Net.Sockets;
using TunnelRouter.Core;
using TunnelRouter.Kernel;
using TunnelRouter.Kernel.Netlink;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>Track lines, and the health state machine driven with plain events on a clock of plain numbers.</summary>
public class UplinkHealthSpecs
{
    static readonly UplinkPath Wan1 = new("wan1", AddressFamily.InterNetwork), Wan2 = new("wan2", AddressFamily.InterNetwork);
    static TimeSpan S(double seconds) => TimeSpan.FromSeconds(seconds);

    static UplinkHealth Health(string track = "9.9.9.9 interval 1 down 3 up 3 hold 30") =>
        new(_ => UplinkTrack.Parse("Uplinks[0].Track", track));

    [Fact]
    public void A_track_line_gives_targets_and_timing_and_the_rest_defaults()
    {
        var t = UplinkTrack.Parse("f", "9.9.9.9 2620:fe::9 gateway hold 10");

        Assert.Equal([IPAddress.Parse("9.9.9.9"), IPAddress.Parse("2620:fe::9")], t.Targets);
        Assert.True(t.Gateway);
        Assert.Equal((S(1), S(0.5), 3, 3, S(10)), (t.Interval, t.Timeout, t.Down, t.Up, t.Hold));
        Assert.Equal([IPAddress.Parse("192.0.2.1"), ], t.TargetsOf(AddressFamily.InterNetwork, IPAddress.Parse("192.0.2.1")).Skip(1));
    }

    [Fact]
    public void A_probe_is_lost_after_half_its_interval_unless_timeout_says_otherwise()
    {
        var t = UplinkTrack.Parse("f", "gateway interval 0.5");
        var slow = UplinkTrack.Parse("f", "gateway interval 2 timeout 1.5");

        Assert.Equal((S(0.5), S(0.25)), (t.Interval, t.Timeout));
        Assert.Equal((S(2), S(1.5)), (slow.Interval, slow.Timeout));
    }

    [Theory]
    [InlineData("", "Uplinks[0].Track: is empty; expected TARGET...")]
    [InlineData("interval 1", "Uplinks[0].Track: names no target; expected TARGET...")]
    [InlineData("9.9.9.9 down 0", "Uplinks[0].Track: down '0' is not a count from 1 to 100")]
    [InlineData("9.9.9.9 interval fast", "Uplinks[0].Track: interval 'fast' is not a number of seconds from 0.1 to 3600")]
    [InlineData("9.9.9.9 interval 1 timeout 2", "Uplinks[0].Track: timeout 2 is longer than interval 1: a probe must be answered before the next one goes")]
    [InlineData("9.9.9.9 9.9.9.9", "Uplinks[0].Track: target 9.9.9.9 is given twice")]
    [InlineData("127.0.0.1", "Uplinks[0].Track: target 127.0.0.1 is not a unicast address beyond this host")]
    [InlineData("9.9.9.9 hold", "Uplinks[0].Track: 'hold' needs a value")]
    [InlineData("9.9.9.9 every 5", "Uplinks[0].Track: 'every' is neither an address nor one of gateway, interval, timeout, down, up, hold")]
    public void A_bad_track_line_is_one_error_naming_the_field(string line, string expected)
    {
        var e = Assert.Throws<InputException>(() => UplinkTrack.Parse("Uplinks[0].Track", line));

        Assert.StartsWith(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Three_losses_in_a_row_make_a_path_down_and_an_answer_between_them_starts_again()
    {
        var h = Health();

        Assert.Null(h.Report(Wan1, HealthEvent.Lost, S(1)));
        Assert.Null(h.Report(Wan1, HealthEvent.Lost, S(2)));
        Assert.Null(h.Report(Wan1, HealthEvent.Answered, S(3)));
        Assert.Null(h.Report(Wan1, HealthEvent.Lost, S(4)));
        Assert.Null(h.Report(Wan1, HealthEvent.Lost, S(5)));
        var change = h.Report(Wan1, HealthEvent.Lost, S(6));

        Assert.Equal(new HealthChange(Wan1, false, "3 probe(s) lost in a row", S(6)), change);
        Assert.Equal(PathState.Down, h.StateOf(Wan1, S(6)));
        Assert.Equal("--+---", h.Reports(S(6)).Single().LastProbes);
    }

    [Theory]
    [InlineData(HealthEvent.CarrierLost, "carrier lost")]
    [InlineData(HealthEvent.NeighbourFailed, "the gateway's neighbour entry went FAILED")]
    public void Carrier_loss_and_a_failed_neighbour_count_at_once(HealthEvent e, string why)
    {
        var h = Health();

        var change = h.Report(Wan1, e, S(0.2));

        Assert.Equal(new HealthChange(Wan1, false, why, S(0.2)), change);
    }

    [Fact]
    public void A_path_back_up_holds_before_traffic_fails_back_and_the_hold_end_is_known()
    {
        var h = Health();
        h.Report(Wan1, HealthEvent.CarrierLost, S(0));
        h.Report(Wan1, HealthEvent.CarrierBack, S(1));
        Assert.Equal(PathState.Down, h.StateOf(Wan1, S(1))); // tracked: the probes decide, not the carrier

        h.Report(Wan1, HealthEvent.Answered, S(2));
        h.Report(Wan1, HealthEvent.Answered, S(3));
        var up = h.Report(Wan1, HealthEvent.Answered, S(4));

        Assert.Equal(new HealthChange(Wan1, true, "3 probe(s) answered in a row", S(4)), up);
        Assert.Equal(PathState.Holding, h.StateOf(Wan1, S(33.9)));
        Assert.Equal(S(34), h.NextHoldEnd(S(10)));
        Assert.Equal(PathState.Up, h.StateOf(Wan1, S(34)));
        Assert.Null(h.NextHoldEnd(S(34)));
    }

    [Fact]
    public void An_untracked_uplink_follows_its_carrier_alone()
    {
        var h = new UplinkHealth(_ => null);

        h.Report(Wan1, HealthEvent.CarrierLost, S(0));
        var back = h.Report(Wan1, HealthEvent.CarrierBack, S(1));

        Assert.True(back!.Up);
        Assert.Equal(PathState.Up, h.StateOf(Wan1, S(1)));
    }

    [Fact]
    public void The_first_up_uplink_is_chosen_a_holding_one_only_when_none_is_up_and_none_when_all_are_down()
    {
        PathState? Of(string n, PathState wan1, PathState wan2) => n == "wan1" ? wan1 : n == "wan2" ? wan2 : null;

        Assert.Equal("wan1", UplinkHealth.Choose(["wan1", "wan2"], n => Of(n, PathState.Up, PathState.Up)));
        Assert.Equal("wan2", UplinkHealth.Choose(["wan1", "wan2"], n => Of(n, PathState.Holding, PathState.Up)));
        Assert.Equal("wan1", UplinkHealth.Choose(["wan1", "wan2"], n => Of(n, PathState.Holding, PathState.Down)));
        Assert.Null(UplinkHealth.Choose(["wan1", "wan2"], n => Of(n, PathState.Down, PathState.Down)));
        Assert.Equal("wan2", UplinkHealth.Choose(["wan3", "wan2"], n => Of(n, PathState.Down, PathState.Up))); // wan3: no such family
    }

    /// <summary>Uplink 1's carrier goes every second for a minute (down 1 s, up 1 s), with 1 s probes that are answered
    /// while it is up: the route of a table via [wan1, wan2] changes once when it first goes, and once more back only after
    /// the flapping ended, it was up 3 probes and held 30 s.</summary>
    [Fact]
    public void An_uplink_flapping_every_2_s_for_a_minute_moves_the_route_twice_not_thirty_times()
    {
        var h = Health();
        var chosen = new List<(TimeSpan At, string? Uplink)>();
        void Look(TimeSpan now)
        {
            var c = UplinkHealth.Choose(["wan1", "wan2"], n => h.StateOf(new UplinkPath(n, AddressFamily.InterNetwork), now));
            if (chosen.Count == 0 || chosen[^1].Uplink != c) chosen.Add((now, c));
        }
        var carrier = true;
        for (var tenth = 0; tenth <= 1500; tenth++) // 150 s in 100 ms steps
        {
            var now = TimeSpan.FromMilliseconds(100 * tenth);
            var flapping = now >= S(10) && now < S(70);
            var wantCarrier = !flapping || (tenth / 10) % 2 == 1;
            if (wantCarrier != carrier)
            {
                carrier = wantCarrier;
                h.Report(Wan1, carrier ? HealthEvent.CarrierBack : HealthEvent.CarrierLost, now);
            }
            if (tenth % 10 == 5)
            {
                h.Report(Wan1, carrier ? HealthEvent.Answered : HealthEvent.Lost, now);
                h.Report(Wan2, HealthEvent.Answered, now);
            }
            Look(now);
        }

        Assert.Equal([(S(0), "wan1"), (S(10), "wan2"), (S(71.5 + 30), "wan1")], chosen);
    }

    /// <summary>Probes alone flapping (2 lost, 1 answered, over and over) never reach 3 losses in a row: no change at all.</summary>
    [Fact]
    public void Losses_that_never_reach_the_down_count_in_a_row_change_nothing()
    {
        var h = Health();
        var changes = 0;
        for (var i = 0; i < 60; i++)
            if (h.Report(Wan1, i % 3 == 2 ? HealthEvent.Answered : HealthEvent.Lost, S(i)) is not null) changes++;

        Assert.Equal(0, changes);
        Assert.Equal(PathState.Up, h.StateOf(Wan1, S(60)));
    }
}

/// <summary>The bytes the tracker reads and writes: rtnetlink link and neighbour messages, the ICMP checksum.</summary>
public class UplinkWireSpecs
{
    static byte[] Link(int index, uint flags)
    {
        var b = new byte[16];
        BitConverter.GetBytes(index).CopyTo(b, 4);
        BitConverter.GetBytes(flags).CopyTo(b, 8);
        return b;
    }

    [Fact]
    public void A_link_without_lower_up_or_deleted_has_no_carrier_and_one_with_both_flags_has()
    {
        const ushort NewLink = 16, DelLink = 17;

        Assert.Equal(new UplinkSignal(7, true, null), UplinkEvents.Parse(NewLink, Link(7, 0x1 | 0x10000)));
        Assert.Equal(new UplinkSignal(7, false, null), UplinkEvents.Parse(NewLink, Link(7, 0x1)));
        Assert.Equal(new UplinkSignal(7, false, null), UplinkEvents.Parse(DelLink, Link(7, 0x1 | 0x10000)));
    }

    [Fact]
    public void A_neighbour_entry_gone_FAILED_names_its_address_and_another_state_nothing()
    {
        static byte[] Neigh(ushort state) =>
        [
            2, 0, 0, 0, 3, 0, 0, 0, (byte)state, (byte)(state >> 8), 0, 1, // ndmsg: AF_INET, ifindex 3, state
            8, 0, 1, 0, 198, 51, 100, 1,                                    // NDA_DST 198.51.100.1
        ];

        Assert.Equal(new UplinkSignal(3, null, IPAddress.Parse("198.51.100.1")), UplinkEvents.Parse(28, Neigh(0x20)));
        Assert.Null(UplinkEvents.Parse(28, Neigh(0x02)));
    }

    [Fact]
    public void The_ICMP_checksum_is_RFC_1071s()
    {
        // An echo request, id 0x1234, sequence 1, no data: 0x0800 + 0x1234 + 0x0001 = 0x1a35, complemented.
        Assert.Equal((ushort)0xe5ca, IcmpProbe.Checksum([8, 0, 0, 0, 0x12, 0x34, 0, 1]));
    }
}
