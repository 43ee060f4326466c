using Zns.Core.Timing;
using Zns.Core.Zones;

namespace Zns.Core.Tests;

/// <summary>The timing model's arithmetic against a virtual clock: every time is given, nothing sleeps.</summary>
public class TimingModelTests
{
    private const long Us = 1000;

    // 8 zones of 64 MiB (capacity 62 MiB), 4 KiB blocks: 16384 blocks per zone.
    private static ZoneGeometry Geometry(long zoneMiB = 64, long capMiB = 62) =>
        ZoneGeometry.Create(new NamespaceOptions { ZoneSize = zoneMiB << 20, ZoneCapacity = capMiB << 20 }, 8 * (zoneMiB << 20));

    private static TimingOptions Parse(string list) => new NamespaceOptions().WithQemuOptions(list).Timing;

    private const ulong ZoneLbas = 16384;

    [Fact]
    public void Fixed_mode_is_one_latency_per_opcode_without_queueing()
    {
        var m = new TimingModel(Parse("timing=fixed,timing.latency_us=100,timing.read_us=30"), Geometry());
        Assert.Equal(1000 + 30 * Us, m.Read(1000, 0, 1));
        Assert.Equal(1000 + 30 * Us, m.Read(1000, 0, 1)); // the same page again: no unit to wait for
        Assert.Equal(100 * Us, m.Write(0, 0, 1));
        Assert.Equal(100 * Us, m.Append(0, 0, 256));
        Assert.Equal(100 * Us, m.Reset(0, 0, 100, empty: false));
        Assert.Equal(100 * Us, m.Finish(0, 0, 100, empty: false));
        Assert.Equal(100 * Us, m.Open(0));
    }

    [Fact]
    public void Zn540_read_at_qd1_takes_the_measured_latency()
    {
        var m = new TimingModel(TimingOptions.Zn540, Geometry());
        Assert.Equal((long)(Zn540Preset.Measured("read_4k_qd1_lat_us") * Us), m.Read(0, 5, 1));
    }

    [Fact]
    public void Reads_of_one_unit_queue_and_reads_of_different_units_overlap()
    {
        var o = Parse("timing=custom,timing.channels=4,timing.zone_width=4,timing.page_kib=4,timing.read_us=100,timing.read_busy_us=80");
        var m = new TimingModel(o, Geometry());
        Assert.Equal(100 * Us, m.Read(0, 0, 1));
        Assert.Equal(180 * Us, m.Read(0, 0, 1));      // same page, same unit: waits for the first's 80 us
        Assert.Equal(100 * Us, m.Read(0, 1, 1));      // next page is on the next unit
        Assert.Equal(100 * Us, m.Read(0, 4 + 2, 1));  // page 6 -> unit 2, free
        Assert.Equal(260 * Us, m.Read(0, 4, 1));      // page 4 wraps to unit 0 again: busy until 160 us, then 80 + 20
    }

    [Fact]
    public void Zones_start_on_different_units_when_narrower_than_the_device()
    {
        var o = Parse("timing=custom,timing.channels=4,timing.zone_width=2,timing.page_kib=4,timing.read_us=100,timing.read_busy_us=100");
        var m = new TimingModel(o, Geometry());
        Assert.Equal(100 * Us, m.Read(0, 0, 1));              // zone 0 -> units 0,1
        Assert.Equal(100 * Us, m.Read(0, ZoneLbas, 1));       // zone 1 -> units 2,3
        Assert.Equal(200 * Us, m.Read(0, 2 * ZoneLbas, 1));   // zone 2 -> units 0,1 again
    }

    [Fact]
    public void Read_bandwidth_ceiling_spaces_completions()
    {
        // 4096 bytes at 40.96 MB/s = 100 us each.
        var m = new TimingModel(Parse("timing=custom,timing.channels=64,timing.zone_width=64,timing.read_mbps=40.96"), Geometry());
        Assert.Equal(100 * Us, m.Read(0, 0, 1));
        Assert.Equal(200 * Us, m.Read(0, 1, 1));
        Assert.Equal(300 * Us, m.Read(0, 2, 1));
        Assert.Equal(1100 * Us, m.Read(1000 * Us, 3, 1)); // the pipe was idle again
    }

    [Fact]
    public void Writes_pay_latency_plus_transfer_and_share_the_controller()
    {
        var o = Parse("timing=custom,timing.write_us=10,timing.xfer_mbps=4096,timing.write_cmd_us=5");
        var m = new TimingModel(o, Geometry());
        Assert.Equal(11 * Us, m.Write(0, 0, 1));                   // 10 + 4096 B at 4096 MB/s = 1 us
        Assert.Equal(11 * Us, m.Write(0, ZoneLbas, 1));            // controller free at 10 us: latency dominates
        Assert.Equal(15 * Us, m.Write(0, 2 * ZoneLbas, 1));        // third command: controller until 15 us
        Assert.Equal(20 * Us, m.Write(0, 3 * ZoneLbas, 1));
    }

    [Fact]
    public void A_full_write_buffer_holds_writes_until_pages_are_programmed()
    {
        // Two 16 KiB pages of buffer, one unit, 1 ms per page program.
        var o = Parse("timing=custom,timing.channels=1,timing.zone_width=1,timing.page_kib=16,timing.program_us=1000,timing.write_buffer_kib=32");
        var m = new TimingModel(o, Geometry());
        Assert.Equal(0, m.Write(0, 0, 4));       // page 0 programs 0..1 ms
        Assert.Equal(0, m.Write(0, 4, 4));       // page 1 programs 1..2 ms (same unit)
        Assert.Equal(1000 * Us, m.Write(0, 8, 4));   // reuses page 0's buffer slot
        Assert.Equal(2000 * Us, m.Write(0, 12, 4));  // reuses page 1's
        // A read of that unit waits behind four programs.
        Assert.Equal(4000 * Us, m.Read(0, 0, 1));
    }

    [Fact]
    public void Write_bandwidth_ceiling_limits_large_writes()
    {
        // 128 KiB at 1310.72 MB/s = 100 us.
        var m = new TimingModel(Parse("timing=custom,timing.write_mbps=1310.72"), Geometry());
        Assert.Equal(100 * Us, m.Write(0, 0, 32));
        Assert.Equal(200 * Us, m.Append(0, ZoneLbas, 32));
    }

    [Fact]
    public void Reset_follows_the_curve_and_blocks_reads_of_its_units()
    {
        var o = TimingOptions.Zn540;
        var m = new TimingModel(o, Geometry());
        long full = m.ResetDuration(ZoneLbas);
        Assert.Equal(full, m.Reset(0, 0, ZoneLbas, empty: false));
        // The zn540 zone spans every unit: a read of another zone waits for the reset.
        Assert.Equal(full + (long)(o.ReadUs * Us), m.Read(10 * Us, ZoneLbas + 7, 1));
        // An Empty zone's reset does no media work.
        Assert.Equal(100 * Us + (long)(o.MgmtUs * Us), m.Reset(100 * Us, 3 * ZoneLbas, 0, empty: true));
    }

    [Fact]
    public void Reset_curve_interpolates_between_measured_points()
    {
        var m = new TimingModel(TimingOptions.Zn540, Geometry(2048, 1077));
        // Points are medians from the dataset: 275712 written blocks -> 15487.5 us, 137856 -> 11236.7 us.
        Assert.Equal(15_487_500, m.ResetDuration(275712));
        Assert.Equal(11_236_700, m.ResetDuration(137856));
        Assert.Equal((11_236_700 + 15_487_500) / 2, m.ResetDuration((137856 + 275712) / 2));
        Assert.Equal(15_487_500, m.ResetDuration(400000)); // flat beyond the last point
        Assert.Equal(1_629_100, m.ResetDuration(0));
    }

    [Fact]
    public void Finish_pads_the_unwritten_capacity()
    {
        // Base 2 ms, padding at 1024 MB/s: 62 MiB capacity, 2 MiB written -> 60 MiB of padding.
        var o = Parse("timing=custom,timing.finish_ms=2,timing.finish_pad_mbps=1048.576");
        var m = new TimingModel(o, Geometry());
        Assert.Equal(62_000 * Us, m.Finish(0, 0, 512, empty: false));   // 2 ms + 60 MiB at 1 MiB/ms
        // A full zone: base only (from 100 ms, when the single unit is free again).
        Assert.Equal(102_000 * Us, m.Finish(100_000 * Us, ZoneLbas, ZoneLbas, empty: false));
    }

    [Fact]
    public void Zn540_finish_of_an_almost_empty_zone_matches_the_drive()
    {
        var m = new TimingModel(TimingOptions.Zn540, Geometry(2048, 1077));
        double measured = Zn540Preset.Measured("finish_us_by_written_lbas", "1") * Us;
        Assert.InRange(m.Finish(0, 0, 1, empty: false), measured * 0.99, measured * 1.01);
    }

    [Fact]
    public void Select_all_occupies_every_unit_for_the_sum()
    {
        var m = new TimingModel(Parse("timing=custom,timing.channels=4,timing.zone_width=1,timing.read_us=10,timing.read_busy_us=10"), Geometry());
        Assert.Equal(5000 * Us, m.AllZones(0, 5000 * Us));
        Assert.Equal(5010 * Us, m.Read(0, 3 * ZoneLbas, 1));
    }
}

public class TimingOptionsTests
{
    [Fact]
    public void Off_by_default_and_not_part_of_the_stored_geometry()
    {
        Assert.False(new NamespaceOptions().Timing.Enabled);
        using var dir = new TempDir();
        string path = Path.Combine(dir.Path, "t.raw");
        Storage.FileBackstore.Create(path, 64L << 20, preallocate: false);
        var options = new NamespaceOptions().WithQemuOptions("zoned.zone_size=8M,timing=zn540");
        using (ZonedNamespace.OpenFile(path, options)) { }
        var stored = ZonedNamespace.ReadStoredOptions(path)!;
        Assert.Equal(8L << 20, stored.ZoneSize);
        Assert.False(stored.Timing.Enabled);
        // And a different timing opens the same file without reformatting.
        using var again = ZonedNamespace.OpenFile(path, stored.WithQemuOptions("timing=fixed,timing.latency_us=5"));
        Assert.Equal(TimingMode.Fixed, again.Options.Timing.Mode);
    }

    [Fact]
    public void Preset_then_overrides()
    {
        var t = new NamespaceOptions().WithQemuOptions("timing=zn540,timing.channels=64,timing.reset_ms=3").Timing;
        Assert.Equal(TimingMode.Zn540, t.Mode);
        Assert.Equal(64, t.Channels);
        Assert.Equal(TimingOptions.Zn540.ReadUs, t.ReadUs);
        Assert.Equal([(0.0, 3000.0)], t.ResetCurve);
    }

    [Theory]
    [InlineData("timing=slow", "timing", "unknown timing")]
    [InlineData("timing.read_us=5", "timing.read_us", "timing=fixed")]
    [InlineData("timing=fixed,timing.read_us=-1", "timing.read_us", "invalid number")]
    [InlineData("timing=custom,timing.channels=0", "timing.channels", "1 to 4096")]
    [InlineData("timing=custom,timing.bogus=1", "timing.bogus", "unknown option")]
    public void Bad_options_name_the_option(string list, string option, string reason)
    {
        var e = Assert.Throws<OptionException>(() => new NamespaceOptions().WithQemuOptions(list));
        Assert.Equal(option, e.Option);
        Assert.Contains(reason, e.Reason);
    }

    [Fact]
    public void Zone_width_beyond_the_channels_is_refused()
    {
        var t = new NamespaceOptions().WithQemuOptions("timing=custom,timing.channels=4,timing.zone_width=8").Timing;
        Assert.Equal("timing.zone_width", Assert.Throws<OptionException>(t.Validate).Option);
    }

    [Fact]
    public void Zn540_geometry_preset_is_the_drive()
    {
        var g = ZoneGeometry.Create(Zn540Preset.Geometry, Zn540Preset.Size);
        Assert.Equal(904u, g.ZoneCount);
        Assert.Equal(524288ul, g.ZoneSizeLbas);
        Assert.Equal(275712ul, g.ZoneCapacityLbas);
        Assert.Equal(14u, g.MaxOpen);
        Assert.Equal(14u, g.MaxActive);
    }
}

public class TimerQueueTests
{
    [Fact]
    public void Items_leave_in_due_order_ties_first_in_first_out_and_never_early()
    {
        var q = new TimerQueue<string>(4);
        string[] names = ["e", "a", "c", "b1", "b2", "d"];
        long[] due = [50, 10, 30, 20, 20, 40];
        for (int i = 0; i < names.Length; i++)
        {
            q.Add(due[i], names[i]);
        }
        Assert.False(q.TryTakeDue(9, out _));
        Assert.Equal(10, q.NextDue);
        var taken = new List<string>();
        while (q.TryTakeDue(35, out string s))
        {
            taken.Add(s);
        }
        Assert.Equal(["a", "b1", "b2", "c"], taken);
        Assert.Equal(2, q.Count);
        Assert.True(q.TryTakeDue(long.MaxValue, out string d));
        Assert.Equal("d", d);
        Assert.True(q.TryTakeDue(long.MaxValue, out string e));
        Assert.Equal("e", e);
        Assert.Equal(long.MaxValue, q.NextDue);
    }

    [Fact]
    public void Random_order_comes_out_sorted()
    {
        var rng = new Random(7);
        var q = new TimerQueue<object>(2);
        var dues = Enumerable.Range(0, 5000).Select(_ => (long)rng.Next(1_000_000)).ToArray();
        foreach (long d in dues)
        {
            q.Add(d, d);
        }
        var outOrder = new List<long>();
        while (q.TryTakeDue(long.MaxValue, out object o))
        {
            outOrder.Add((long)o);
        }
        Assert.Equal(dues.OrderBy(x => x), outOrder);
    }
}
