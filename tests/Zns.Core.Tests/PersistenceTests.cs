using Zns.Nvme;
using Zns.Core.Storage;
using Zns.Core.Zones;
using static Zns.Core.Tests.TestNamespaces;

namespace Zns.Core.Tests;

public class PersistenceTests
{
    private static string NewBackstore(TempDir dir, long size = 8 * 16 * 512)
    {
        string path = dir.File("ns.raw");
        FileBackstore.Create(path, size, preallocate: false);
        return path;
    }

    private static void Ok(NvmeStatus s) => Assert.True(s.IsSuccess, s.ToString());

    [Fact]
    public void ZoneStateAndDataSurviveCleanReopen()
    {
        using var dir = new TempDir();
        string path = NewBackstore(dir);
        var options = Small(maxOpen: 4, maxActive: 6);
        var ext = Enumerable.Repeat((byte)0xE1, 64).ToArray();
        Guid uuid;
        using (var ns = ZonedNamespace.OpenFile(path, options))
        {
            uuid = ns.Uuid;
            Ok(ns.Write(0, Blocks(3, 0x11)));                                             // zone 0: open, wp 3
            Ok(ns.ZoneManagementSend(16, ZoneSendAction.Open, false));                     // zone 1: open, nothing written
            Ok(ns.Write(32, Blocks(12, 0x22)));                                            // zone 2: full
            Ok(ns.ZoneManagementSend(48, ZoneSendAction.SetDescriptorExtension, false, ext)); // zone 3: closed + ZDEV
            Ok(ns.Write(64, Blocks(2, 0x33)));
            Ok(ns.ZoneManagementSend(64, ZoneSendAction.Finish, false));                   // zone 4: full at 2
        }
        using (var ns = ZonedNamespace.OpenFile(path, options))
        {
            Assert.Equal(uuid, ns.Uuid);
            Assert.Equal((ZoneState.Closed, 3ul), (ns.GetZone(0).State, ns.GetZone(0).WritePointer));
            Assert.Equal((ZoneState.Empty, 16ul), (ns.GetZone(1).State, ns.GetZone(1).WritePointer)); // nothing written: Empty
            Assert.Equal(ZoneState.Full, ns.GetZone(2).State);
            Assert.Equal((ZoneState.Closed, ZoneAttributes.DescriptorExtensionValid), (ns.GetZone(3).State, ns.GetZone(3).Attributes));
            Assert.Equal(ext, ns.GetDescriptorExtension(3));
            Assert.Equal(ZoneState.Full, ns.GetZone(4).State);
            Assert.Equal(2u, ns.ActiveZoneCount);
            var buf = new byte[4 * 512];
            Ok(ns.Read(0, buf));
            Assert.All(buf[..1536], b => Assert.Equal(0x11, b));
            Assert.All(buf[1536..], b => Assert.Equal(0, b));
            Ok(ns.Read(64, buf));
            Assert.All(buf[..1024], b => Assert.Equal(0x33, b));
            Assert.All(buf[1024..], b => Assert.Equal(0, b)); // finished at 2: the rest reads zeros
            Ok(ns.Write(3, Blocks(1, 0x44)));                  // the write pointer is where it was
        }
    }

    [Fact]
    public void WriteProtectionIsStoredInTheStateFile_AndLiftingItToo()
    {
        using var dir = new TempDir();
        string path = NewBackstore(dir);
        var options = Small();
        using (var ns = ZonedNamespace.OpenFile(path, options))
        {
            Assert.False(ns.WriteProtected);
            Assert.True(ns.SetWriteProtected(true));
            Assert.False(ns.SetWriteProtected(true));
        }
        Assert.True(ZoneStateFile.TryLoad(ZoneStateFile.PathFor(path))!.WriteProtected);
        using (var ns = ZonedNamespace.OpenFile(path, options))
        {
            Assert.True(ns.WriteProtected);
            Assert.True(ns.SetWriteProtected(false));
        }
        using (var ns = ZonedNamespace.OpenFile(path, options))
        {
            Assert.False(ns.WriteProtected);
        }
        // A reformat starts writable.
        using (var ns = ZonedNamespace.OpenFile(path, options))
        {
            ns.SetWriteProtected(true);
        }
        using (var ns = ZonedNamespace.OpenFile(path, options, StateMode.Reformat))
        {
            Assert.False(ns.WriteProtected);
        }
    }

    [Fact]
    public void DifferentGeometryIsRefusedUnlessReformat()
    {
        using var dir = new TempDir();
        string path = NewBackstore(dir);
        Guid uuid;
        using (var ns = ZonedNamespace.OpenFile(path, Small()))
        {
            Ok(ns.Write(0, Blocks(1, 1)));
            uuid = ns.Uuid;
        }
        var other = Small() with { ZoneSize = 8 * 512, ZoneCapacity = 0 };
        var ex = Assert.Throws<OptionException>(() => ZonedNamespace.OpenFile(path, other));
        Assert.Equal("zoned.zone_size", ex.Option);
        var ex2 = Assert.Throws<OptionException>(() => ZonedNamespace.OpenFile(path, Small(maxOpen: 3)));
        Assert.Equal("zoned.max_open", ex2.Option);
        Assert.Equal(Small() with { Uuid = uuid }, ZonedNamespace.ReadStoredOptions(path));
        using (var ns = ZonedNamespace.OpenFile(path, other, StateMode.Reformat))
        {
            Assert.Equal(16u, ns.Geometry.ZoneCount);
            Assert.Equal(ZoneState.Empty, ns.GetZone(0).State);
        }
        using (var ns = ZonedNamespace.OpenFile(path, other))
        {
            Assert.Equal(16u, ns.Geometry.ZoneCount);
        }
    }

    [Fact]
    public void EphemeralStartsEmptyAndPersistsNothing()
    {
        using var dir = new TempDir();
        string path = NewBackstore(dir);
        using (var ns = ZonedNamespace.OpenFile(path, Small(), StateMode.Ephemeral))
        {
            Ok(ns.Write(0, Blocks(2, 1)));
            Assert.Null(ns.StatePath);
        }
        Assert.False(File.Exists(path + ".zns"));
        using (var ns = ZonedNamespace.OpenFile(path, Small(), StateMode.Ephemeral))
        {
            Assert.Equal(ZoneState.Empty, ns.GetZone(0).State);
        }
    }

    [Fact]
    public void DataLandsAtQemuOffsetsInTheRawFile()
    {
        using var dir = new TempDir();
        string path = NewBackstore(dir);
        using (var ns = ZonedNamespace.OpenFile(path, Small()))
        {
            Ok(ns.Write(16, Blocks(1, 0xAB)));
        }
        using var f = File.OpenRead(path);
        f.Position = 16 * 512;
        Assert.Equal(0xAB, f.ReadByte());
        f.Position = 16 * 512 - 1;
        Assert.Equal(0, f.ReadByte());
    }

    [Fact]
    public void DamagedNewestSlotFallsBackToPreviousCommit()
    {
        using var dir = new TempDir();
        string path = NewBackstore(dir);
        var ns = ZonedNamespace.OpenFile(path, Small());
        Ok(ns.Write(0, Blocks(2, 1)));
        Ok(ns.Flush());
        Ok(ns.Write(2, Blocks(2, 1)));
        Ok(ns.Flush());
        ns.Dispose(); // another commit
        string state = path + ".zns";
        var bytes = File.ReadAllBytes(state);
        // Find the slot with the highest sequence and damage it.
        int slot = bytes.Length / 2;
        ulong s0 = BitConverter.ToUInt64(bytes, 16), s1 = BitConverter.ToUInt64(bytes, slot + 16);
        int newest = s0 > s1 ? 0 : slot;
        bytes[newest + 200] ^= 0xFF;
        File.WriteAllBytes(state, bytes);
        using var reopened = ZonedNamespace.OpenFile(path, Small());
        var z = reopened.GetZone(0);
        Assert.Equal(4ul, z.WritePointer); // the previous commit (the second flush) also had the write pointer at 4
        // Both slots damaged: refuse rather than guess.
        reopened.Dispose();
        bytes = File.ReadAllBytes(state);
        bytes[100] ^= 0xFF;
        bytes[slot + 100] ^= 0xFF;
        File.WriteAllBytes(state, bytes);
        Assert.Throws<InvalidDataException>(() => ZonedNamespace.OpenFile(path, Small()));
    }

    [Fact]
    public void ResetIsDurableAndReleasesBlocks()
    {
        using var dir = new TempDir();
        string path = NewBackstore(dir);
        var ns = ZonedNamespace.OpenFile(path, Small());
        Ok(ns.Write(0, Blocks(4, 0x55)));
        Ok(ns.Flush());
        Ok(ns.ZoneManagementSend(0, ZoneSendAction.Reset, false));
        // Simulate a crash right after the reset: read the committed state without a clean shutdown.
        var stored = ZoneStateFile.TryLoad(path + ".zns")!;
        Assert.Equal(ZoneState.Empty, stored.Zones[0].State);
        Assert.Equal(0ul, stored.Zones[0].WritePointer);
        ns.Dispose();
        using (var f = File.OpenRead(path))
        {
            Assert.Equal(0, f.ReadByte()); // the zone's blocks are zero in the file, as QEMU leaves them
        }

        // One writer at a time: a second open of a namespace in use is refused.
        using var first = ZonedNamespace.OpenFile(path, Small());
        Assert.Throws<NamespaceInUseException>(() => ZonedNamespace.OpenFile(path, Small()));
        Assert.NotNull(ZonedNamespace.ReadStoredZones(path)); // readers may still look
    }
}
