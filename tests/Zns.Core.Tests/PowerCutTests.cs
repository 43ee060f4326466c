using Zns.Nvme;
using Zns.Core.Zones;

namespace Zns.Core.Tests;

/// <summary>
/// Durability tracking and <see cref="ZonedNamespace.CutPower"/>: what a Flush, a FUA write and zone actions make
/// durable, and what each policy keeps of the rest (read back, not only the write pointers).
/// </summary>
public class PowerCutTests
{
    private const int Bs = 512;

    private static ZonedNamespace Zoned(uint maxActive = 0) => TestNamespaces.Ram(TestNamespaces.Small(maxActive: maxActive));

    private static ZonedNamespace Conventional(int blocks = 64) =>
        ZonedNamespace.CreateInMemory(blocks * Bs, new NamespaceOptions { LogicalBlockSize = Bs, Zoned = false });

    private static byte[] Read(ZonedNamespace ns, ulong slba, int blocks)
    {
        var buffer = new byte[blocks * Bs];
        Assert.Equal(NvmeStatus.Success, ns.Read(slba, buffer));
        return buffer;
    }

    private static void Write(ZonedNamespace ns, ulong slba, int blocks, byte fill, bool fua = false) =>
        Assert.Equal(NvmeStatus.Success, ns.Write(slba, TestNamespaces.Blocks(blocks, fill), fua));

    private static NamespacePowerCutReport Cut(ZonedNamespace ns, PowerCutKeep keep, bool torn = false, ulong seed = 1)
    {
        var policy = new PowerCutPolicy(keep, torn, seed);
        return ns.CutPower(policy, policy.CreateRandom());
    }

    [Fact]
    public void Unflushed_writes_are_dropped_by_keep_none_and_read_as_zeros()
    {
        using var ns = Zoned();
        Write(ns, 0, 4, 0xA1);
        Assert.Equal(0ul, ns.DurableWritePointer(0));

        var report = Cut(ns, PowerCutKeep.None);

        var z = ns.GetZone(0);
        Assert.Equal(0ul, z.WritePointer);
        Assert.Equal(ZoneState.Empty, z.State);
        Assert.Equal(new byte[4 * Bs], Read(ns, 0, 4));
        var cut = Assert.Single(report.Zones);
        Assert.Equal(new ZonePowerCut(0, 4, 0, 0, 4, false, false, ZoneState.ImplicitlyOpened, ZoneState.Empty), cut);
        Assert.Equal(4ul, report.BlocksDropped);
        Assert.Equal(0ul, report.BlocksKept);
    }

    [Fact]
    public void A_flush_makes_every_zone_durable_and_keep_none_goes_back_to_it()
    {
        using var ns = Zoned();
        Write(ns, 0, 3, 0xB1);
        Write(ns, 16, 2, 0xB2);
        Assert.Equal(NvmeStatus.Success, ns.Flush());
        Assert.Equal(3ul, ns.DurableWritePointer(0));
        Assert.Equal(18ul, ns.DurableWritePointer(1));
        Write(ns, 3, 2, 0xB3);

        var report = Cut(ns, PowerCutKeep.None);

        Assert.Equal(3ul, ns.GetZone(0).WritePointer);
        Assert.Equal(ZoneState.Closed, ns.GetZone(0).State);
        Assert.Equal(TestNamespaces.Blocks(3, 0xB1), Read(ns, 0, 3));
        Assert.Equal(new byte[2 * Bs], Read(ns, 3, 2));
        // Zone 1 had nothing unflushed: only the power cycle (open -> Closed), not listed.
        Assert.Equal(ZoneState.Closed, ns.GetZone(1).State);
        Assert.Equal(TestNamespaces.Blocks(2, 0xB2), Read(ns, 16, 2));
        Assert.Equal([0u], report.Zones.Select(z => z.Zone));
        // Writes continue at the restored write pointer.
        Write(ns, 3, 1, 0xB4);
        Assert.Equal(TestNamespaces.Blocks(1, 0xB4), Read(ns, 3, 1));
    }

    [Fact]
    public void A_fua_write_makes_its_zone_durable_up_to_its_end_but_not_other_zones()
    {
        using var ns = Zoned();
        Write(ns, 16, 2, 0xC0);            // zone 1, not flushed
        Write(ns, 0, 2, 0xC1);             // zone 0, covered by the FUA write after it (same zone, in order)
        Write(ns, 2, 1, 0xC2, fua: true);
        Assert.Equal(3ul, ns.DurableWritePointer(0));
        Assert.Equal(16ul, ns.DurableWritePointer(1));
        Write(ns, 3, 1, 0xC3);             // after the FUA write: not durable

        Cut(ns, PowerCutKeep.None);

        Assert.Equal(3ul, ns.GetZone(0).WritePointer);
        Assert.Equal([.. TestNamespaces.Blocks(2, 0xC1), .. TestNamespaces.Blocks(1, 0xC2), .. new byte[Bs]], Read(ns, 0, 4));
        Assert.Equal(16ul, ns.GetZone(1).WritePointer);
        Assert.Equal(ZoneState.Empty, ns.GetZone(1).State);
        Assert.Equal(new byte[2 * Bs], Read(ns, 16, 2));
    }

    [Fact]
    public void A_fua_append_is_durable()
    {
        using var ns = Zoned();
        Assert.Equal(NvmeStatus.Success, ns.Append(0, TestNamespaces.Blocks(2, 0xC4), out ulong alba, fua: true));
        Assert.Equal(0ul, alba);
        Cut(ns, PowerCutKeep.None);
        Assert.Equal(2ul, ns.GetZone(0).WritePointer);
        Assert.Equal(TestNamespaces.Blocks(2, 0xC4), Read(ns, 0, 2));
    }

    [Fact]
    public void Keep_all_keeps_every_write_and_power_cycles_open_zones()
    {
        using var ns = Zoned();
        Write(ns, 0, 5, 0xD1);
        Assert.Equal(NvmeStatus.Success, ns.ZoneManagementSend(32, ZoneSendAction.Open, false));

        var report = Cut(ns, PowerCutKeep.All);

        Assert.Equal(5ul, ns.GetZone(0).WritePointer);
        Assert.Equal(ZoneState.Closed, ns.GetZone(0).State);
        Assert.Equal(ZoneState.Empty, ns.GetZone(2).State);
        Assert.Equal(0u, ns.OpenZoneCount);
        Assert.Equal(1u, ns.ActiveZoneCount);
        Assert.Equal(TestNamespaces.Blocks(5, 0xD1), Read(ns, 0, 5));
        Assert.Equal(0ul, report.BlocksDropped);
        Assert.Equal(5ul, report.BlocksKept);
        // What a cut kept is durable now.
        Assert.Equal(5ul, ns.DurableWritePointer(0));
    }

    [Fact]
    public void Keep_random_keeps_a_prefix_at_write_boundaries()
    {
        var seen = new HashSet<ulong>();
        for (ulong seed = 0; seed < 40; seed++)
        {
            using var ns = Zoned();
            Write(ns, 0, 2, 1);
            Write(ns, 2, 3, 2);
            Write(ns, 5, 1, 3);
            var cut = Assert.Single(Cut(ns, PowerCutKeep.Random, seed: seed).Zones);
            Assert.Contains(cut.WritePointerAfter, new ulong[] { 0, 2, 5, 6 });
            Assert.False(cut.Torn);
            seen.Add(cut.WritePointerAfter);
            ulong wp = ns.GetZone(0).WritePointer;
            Assert.Equal(cut.WritePointerAfter, wp);
            Assert.Equal(6 - wp, cut.BlocksDropped);
            byte[] expected = [.. TestNamespaces.Blocks(2, 1), .. TestNamespaces.Blocks(3, 2), .. TestNamespaces.Blocks(1, 3)];
            expected.AsSpan((int)wp * Bs).Clear();
            Assert.Equal(expected, Read(ns, 0, 6));
        }
        // Every boundary comes up over 40 seeds.
        Assert.Equal(4, seen.Count);
    }

    [Fact]
    public void Keep_random_torn_cuts_the_last_kept_write_inside_it()
    {
        int torn = 0;
        for (ulong seed = 0; seed < 40; seed++)
        {
            using var ns = Zoned();
            Write(ns, 0, 4, 1);
            Write(ns, 4, 4, 2);
            var cut = Assert.Single(Cut(ns, PowerCutKeep.Random, torn: true, seed: seed).Zones);
            if (cut.Torn)
            {
                torn++;
                Assert.True(cut.WritePointerAfter is (> 0 and < 4) or (> 4 and < 8), $"seed {seed}: {cut.WritePointerAfter}");
            }
            else
            {
                Assert.Equal(0ul, cut.WritePointerAfter); // nothing kept: nothing to tear
            }
        }
        Assert.True(torn > 20, $"{torn} torn of 40");
    }

    [Fact]
    public void The_same_seed_gives_the_same_cut()
    {
        NamespacePowerCutReport Run(ulong seed)
        {
            using var ns = Zoned();
            for (uint z = 0; z < 4; z++)
            {
                for (int w = 0; w < 4; w++)
                {
                    Write(ns, z * 16 + (ulong)w * 2, 2, (byte)(z * 4 + w));
                }
            }
            return Cut(ns, PowerCutKeep.Random, torn: true, seed: seed);
        }
        var a = Run(7);
        var b = Run(7);
        Assert.Equal(a.Zones, b.Zones);
        Assert.NotEqual(a.Zones.Select(z => z.WritePointerAfter), Enumerable.Range(0, 3).Select(_ => 0ul));
        var others = Enumerable.Range(8, 6).Select(s => Run((ulong)s).Zones.Select(z => z.WritePointerAfter).ToArray());
        Assert.Contains(others, o => !o.SequenceEqual(a.Zones.Select(z => z.WritePointerAfter)));
    }

    [Fact]
    public void A_zone_with_more_unflushed_writes_than_recorded_is_cut_at_any_block()
    {
        var seen = new HashSet<ulong>();
        for (ulong seed = 0; seed < 60; seed++)
        {
            using var ns = Zoned();
            ns.SetDurabilityLimits(endsPerZone: 2, undoBlocks: 0);
            for (ulong lba = 0; lba < 8; lba += 2)
            {
                Write(ns, lba, 2, 9);
            }
            var cut = Assert.Single(Cut(ns, PowerCutKeep.Random, seed: seed).Zones);
            Assert.True(cut.BlockGranularity);
            Assert.InRange(cut.WritePointerAfter, 0ul, 8ul);
            seen.Add(cut.WritePointerAfter);
        }
        Assert.Contains(seen, wp => wp % 2 == 1);
    }

    [Fact]
    public void A_zone_reset_is_durable_when_it_completes()
    {
        using var ns = Zoned();
        Write(ns, 0, 4, 0xE1);
        Assert.Equal(NvmeStatus.Success, ns.Flush());
        Assert.Equal(NvmeStatus.Success, ns.ZoneManagementSend(0, ZoneSendAction.Reset, false));
        Assert.Equal(0ul, ns.DurableWritePointer(0));
        Write(ns, 0, 2, 0xE2);

        Cut(ns, PowerCutKeep.None);

        Assert.Equal(ZoneState.Empty, ns.GetZone(0).State);
        Assert.Equal(new byte[4 * Bs], Read(ns, 0, 4));
    }

    [Fact]
    public void A_zone_finish_is_durable_with_the_data_under_it()
    {
        using var ns = Zoned();
        Write(ns, 0, 3, 0xF1);
        Assert.Equal(NvmeStatus.Success, ns.ZoneManagementSend(0, ZoneSendAction.Finish, false));

        var report = Cut(ns, PowerCutKeep.None);

        Assert.Equal(ZoneState.Full, ns.GetZone(0).State);
        Assert.Equal(TestNamespaces.Blocks(3, 0xF1), Read(ns, 0, 3));
        Assert.Empty(report.Zones);
    }

    [Fact]
    public void A_zone_filled_by_unflushed_writes_is_no_longer_full_after_keep_none()
    {
        using var ns = Zoned();
        Write(ns, 0, 4, 1);
        Assert.Equal(NvmeStatus.Success, ns.Flush());
        Write(ns, 4, 8, 2);
        Assert.Equal(ZoneState.Full, ns.GetZone(0).State);

        var cut = Assert.Single(Cut(ns, PowerCutKeep.None).Zones);

        Assert.Equal((ZoneState.Full, ZoneState.Closed, 4ul), (cut.StateBefore, cut.StateAfter, cut.WritePointerAfter));
        Assert.Equal(ZoneState.Closed, ns.GetZone(0).State);
        Assert.Equal(1u, ns.ActiveZoneCount);
    }

    [Fact]
    public void A_full_zone_that_would_pass_the_active_limit_stays_full_finished_by_controller()
    {
        using var ns = Zoned(maxActive: 1);
        Write(ns, 0, 4, 1);
        Assert.Equal(NvmeStatus.Success, ns.Flush());
        Write(ns, 4, 8, 2);               // zone 0 Full, no longer active
        Write(ns, 16, 1, 3, fua: true);   // zone 1 takes the one active resource, durably (zone 0 is not flushed)

        Cut(ns, PowerCutKeep.None);

        Assert.Equal(ZoneState.Full, ns.GetZone(0).State);
        Assert.Equal(4ul, ns.GetZone(0).WritePointer);
        Assert.True(ns.GetZone(0).Attributes.HasFlag(ZoneAttributes.FinishedByController));
        Assert.Equal(new byte[8 * Bs], Read(ns, 4, 8));
        Assert.Equal(ZoneState.Closed, ns.GetZone(1).State);
        Assert.Equal(1u, ns.ActiveZoneCount);
    }

    [Fact]
    public void Zrwa_window_data_is_dropped_even_by_keep_all()
    {
        var options = TestNamespaces.Small() with { Zrwas = 4 * Bs, Zrwafg = 2 * Bs, NumZrwa = 2 };
        using var ns = TestNamespaces.Ram(options);
        Assert.Equal(NvmeStatus.Success, ns.ZoneManagementSend(0, ZoneSendAction.Open, false, zsaso: true));
        Write(ns, 0, 2, 0x71);
        Assert.Equal(0ul, ns.GetZone(0).WritePointer); // in the window, not committed

        var cut = Assert.Single(Cut(ns, PowerCutKeep.All).Zones);

        Assert.Equal(2ul, cut.BlocksDropped);
        Assert.Equal(ZoneState.Empty, ns.GetZone(0).State);
        Assert.False(ns.GetZone(0).Attributes.HasFlag(ZoneAttributes.ZrwaValid));
        Assert.Equal(new byte[2 * Bs], Read(ns, 0, 2));
    }

    [Fact]
    public void Conventional_keep_none_puts_back_the_flushed_contents()
    {
        using var ns = Conventional();
        Write(ns, 0, 4, 0x11);
        Assert.Equal(NvmeStatus.Success, ns.Flush());
        Assert.Equal(0, ns.UnflushedBlockCount);
        Write(ns, 2, 4, 0x22);            // two blocks over flushed data, two over never written ones
        Write(ns, 3, 1, 0x33);            // a second write of one block: its flushed contents were saved once
        Assert.Equal(4, ns.UnflushedBlockCount);

        var report = Cut(ns, PowerCutKeep.None);

        Assert.Equal(4ul, report.BlocksDropped);
        Assert.Equal([.. TestNamespaces.Blocks(4, 0x11), .. new byte[2 * Bs]], Read(ns, 0, 6));
        Assert.Equal(0, ns.UnflushedBlockCount);
    }

    [Fact]
    public void Conventional_fua_writes_are_kept()
    {
        using var ns = Conventional();
        Write(ns, 0, 2, 0x44);
        Write(ns, 2, 2, 0x55, fua: true);
        Write(ns, 0, 1, 0x66);

        Cut(ns, PowerCutKeep.None);

        Assert.Equal([.. new byte[2 * Bs], .. TestNamespaces.Blocks(2, 0x55)], Read(ns, 0, 4));
    }

    [Fact]
    public void Conventional_keep_random_keeps_a_seeded_subset_of_blocks()
    {
        byte[] Run(ulong seed, out NamespacePowerCutReport report)
        {
            using var ns = Conventional();
            Write(ns, 0, 16, 0x77);
            report = Cut(ns, PowerCutKeep.Random, seed: seed);
            return Read(ns, 0, 16);
        }
        var data = Run(3, out var report);
        Assert.Equal(16ul, report.BlocksDropped + report.BlocksKept);
        Assert.InRange(report.BlocksKept, 1ul, 15ul);
        int keptBlocks = Enumerable.Range(0, 16).Count(b => data[b * Bs] == 0x77);
        Assert.Equal((int)report.BlocksKept, keptBlocks);
        Assert.Equal(data, Run(3, out _));
    }

    [Fact]
    public void Conventional_undo_area_full_makes_everything_durable_first()
    {
        using var ns = Conventional();
        ns.SetDurabilityLimits(endsPerZone: 0, undoBlocks: 4);
        Write(ns, 0, 3, 0x81);
        Write(ns, 8, 3, 0x82);            // no room for 3 more copies: the first write becomes durable
        Assert.Equal(3, ns.UnflushedBlockCount);
        Write(ns, 20, 5, 0x83);           // larger than the area: durable as it completes

        Cut(ns, PowerCutKeep.None);

        Assert.Equal(TestNamespaces.Blocks(3, 0x81), Read(ns, 0, 3));
        Assert.Equal(new byte[3 * Bs], Read(ns, 8, 3));
        Assert.Equal(TestNamespaces.Blocks(5, 0x83), Read(ns, 20, 5));
    }

    [Fact]
    public void Conventional_deallocate_is_undone_like_a_write()
    {
        using var ns = Conventional();
        Write(ns, 0, 2, 0x91);
        Assert.Equal(NvmeStatus.Success, ns.Flush());
        Assert.Equal(NvmeStatus.Success, ns.Deallocate(0, 2));
        Cut(ns, PowerCutKeep.None);
        Assert.Equal(TestNamespaces.Blocks(2, 0x91), Read(ns, 0, 2));
    }

    [Theory]
    [InlineData(PowerCutKeep.None, true, "torn")]
    [InlineData(PowerCutKeep.All, true, "torn")]
    [InlineData((PowerCutKeep)7, false, "keep")]
    public void A_bad_policy_is_refused_naming_the_field(PowerCutKeep keep, bool torn, string field)
    {
        var policy = new PowerCutPolicy(keep, torn, 0);
        Assert.StartsWith(field + ":", policy.Validate());
        using var ns = Zoned();
        Write(ns, 0, 1, 1);
        var e = Assert.Throws<ArgumentException>(() => ns.CutPower(policy, new Random(0)));
        Assert.StartsWith(field + ":", e.Message);
        Assert.Equal(1ul, ns.GetZone(0).WritePointer); // nothing was cut
    }

    [Fact]
    public void A_cut_is_committed_so_a_reopened_file_shows_it()
    {
        using var dir = new TempDir();
        string path = dir.File("cut.raw");
        var options = TestNamespaces.Small();
        using (var f = File.Create(path))
        {
            f.SetLength(8 * options.ZoneSize);
        }
        using (var ns = ZonedNamespace.OpenFile(path, options))
        {
            Write(ns, 0, 2, 0xA7);
            Assert.Equal(NvmeStatus.Success, ns.Flush());
            Write(ns, 2, 3, 0xA8);
            Cut(ns, PowerCutKeep.None);
        }
        using var reopened = ZonedNamespace.OpenFile(path, options);
        Assert.Equal(2ul, reopened.GetZone(0).WritePointer);
        Assert.Equal(2ul, reopened.DurableWritePointer(0));
        Assert.Equal([.. TestNamespaces.Blocks(2, 0xA7), .. new byte[3 * Bs]], Read(reopened, 0, 5));
    }

    [Fact]
    public void Tracking_allocates_nothing_per_write_or_flush()
    {
        using var zoned = Zoned();
        using var conventional = Conventional(blocks: 4096);
        byte[] block = TestNamespaces.Blocks(1, 0x5A);
        void Round(ulong i)
        {
            Assert.True(zoned.Write(i % 12, block).IsSuccess);
            Assert.True(zoned.Write(16 + i % 12, block, fua: true).IsSuccess);
            Assert.True(conventional.Write(i % 4096, block).IsSuccess);
            Assert.True(conventional.Write((i + 7) % 4096, block, fua: true).IsSuccess);
            Assert.True(zoned.Flush().IsSuccess);
            Assert.True(conventional.Flush().IsSuccess);
        }
        for (ulong i = 0; i < 11; i++)
        {
            Round(i); // warm-up: JIT, the lock's per-thread state
        }
        // The zones fill at 12 blocks; a reset is not an I/O of the hot path.
        Assert.True(zoned.ZoneManagementSend(0, ZoneSendAction.Reset, false).IsSuccess);
        Assert.True(zoned.ZoneManagementSend(16, ZoneSendAction.Reset, false).IsSuccess);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (ulong i = 0; i < 11; i++)
        {
            Round(i);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
