using System.Diagnostics;
using Zns.Nvme;
using Zns.Core.Storage;
using Zns.Core.Zones;

namespace Zns.Core.Tests;

/// <summary>
/// A sparse backstore on a file system that fills up: writes fail with Write Fault, the zones keep their true write
/// pointers and states, nothing else stops working, and writes succeed again once space is freed. Runs on a small
/// tmpfs mounted for the test, so it needs root (skipped otherwise).
/// </summary>
public sealed class FullBackstoreTests
{
    private const int Bs = 4096;
    private const int ZoneBlocks = 16;

    /// <summary>16 zones of 16 × 4 KiB blocks (1 MiB), no open/active limits.</summary>
    private static NamespaceOptions Options() => new()
    {
        LogicalBlockSize = Bs,
        ZoneSize = ZoneBlocks * Bs,
        ZoneCapacity = ZoneBlocks * Bs,
        DescriptorExtensionSize = 0,
        Zasl = 0,
    };

    private static byte[] Block(int lba) => Enumerable.Repeat((byte)(lba * 7 + 1), Bs).ToArray();

    [Fact]
    public void WritesFailWithWriteFault_StateStaysTrue_AndResumeWhenSpaceIsFreed()
    {
        using var dir = new TempDir();
        using var tmpfs = SmallTmpfs.Mount(dir.Path, sizeKiB: 512);
        string path = dir.File("ns.raw");
        FileBackstore.Create(path, 16 * ZoneBlocks * Bs, preallocate: false);

        using var ns = ZonedNamespace.OpenFile(path, Options());
        // Fill zones block by block until the file system is full.
        ulong lba = 0;
        NvmeStatus failed = NvmeStatus.Success;
        for (; lba < ns.Geometry.NamespaceSizeLbas; lba++)
        {
            failed = ns.Write(lba, Block((int)lba));
            if (!failed.IsSuccess)
            {
                break;
            }
        }
        Assert.Equal(NvmeStatus.WriteFault, failed);
        Assert.False(failed.Dnr, "Write Fault must allow a retry");
        Assert.InRange(lba, 16ul, ns.Geometry.NamespaceSizeLbas - 1);

        // The zone the failed write was for: its write pointer is where the last successful write left it, and it
        // is open; zones before it are full; the one after is empty.
        uint zi = ns.Geometry.ZoneOf(lba);
        Assert.Equal(lba, ns.GetZone(zi).WritePointer);
        Assert.Equal(ZoneState.ImplicitlyOpened, ns.GetZone(zi).State);
        Assert.Equal(ZoneState.Full, ns.GetZone(0).State);
        Assert.Equal(ZoneState.Empty, ns.GetZone(zi + 1).State);

        // The same write fails again the same way, and other commands keep working: reads of written data, a
        // flush, zone management.
        Assert.Equal(NvmeStatus.WriteFault, ns.Write(lba, Block((int)lba)));
        Assert.Equal(lba, ns.GetZone(zi).WritePointer);
        byte[] back = new byte[Bs];
        Assert.True(ns.Read(lba - 1, back).IsSuccess);
        Assert.Equal(Block((int)lba - 1), back);
        Assert.True(ns.Flush().IsSuccess, "the state file's slots are allocated, so a commit needs no new space");
        Assert.True(ns.ZoneManagementSend(ns.Geometry.ZoneStart(zi), ZoneSendAction.Close, false).IsSuccess);
        Assert.Equal(ZoneState.Closed, ns.GetZone(zi).State);

        // Resetting zone 0 punches its blocks out of the sparse file; the failed write now succeeds where it was
        // refused, and the zone continues.
        Assert.True(ns.ZoneManagementSend(0, ZoneSendAction.Reset, false).IsSuccess);
        Assert.True(ns.Write(lba, Block((int)lba)).IsSuccess);
        Assert.Equal(lba + 1, ns.GetZone(zi).WritePointer);
        Assert.True(ns.Read(lba, back).IsSuccess);
        Assert.Equal(Block((int)lba), back);
        Assert.True(ns.Flush().IsSuccess);
    }

    [Fact]
    public void StateCommittedOnAFullDisk_IsTheStateAfterReopen()
    {
        using var dir = new TempDir();
        using var tmpfs = SmallTmpfs.Mount(dir.Path, sizeKiB: 512);
        string path = dir.File("ns.raw");
        FileBackstore.Create(path, 16 * ZoneBlocks * Bs, preallocate: false);
        ulong wp;
        using (var ns = ZonedNamespace.OpenFile(path, Options()))
        {
            ulong lba = 0;
            while (ns.Write(lba, Block((int)lba)).IsSuccess)
            {
                lba++;
            }
            wp = lba;
        }
        // Reopened (the clean shutdown committed on the full file system): the same write pointer, the data below it.
        using (var ns = ZonedNamespace.OpenFile(path, Options()))
        {
            uint zi = ns.Geometry.ZoneOf(wp);
            Assert.Equal(wp, ns.GetZone(zi).WritePointer);
            byte[] back = new byte[Bs];
            Assert.True(ns.Read(wp - 1, back).IsSuccess);
            Assert.Equal(Block((int)wp - 1), back);
        }
    }

    /// <summary>A tmpfs of a few hundred KiB mounted over a directory, unmounted at dispose.</summary>
    private sealed class SmallTmpfs : IDisposable
    {
        private readonly string _path;

        private SmallTmpfs(string path) => _path = path;

        public static SmallTmpfs Mount(string path, int sizeKiB)
        {
            if (!OperatingSystem.IsLinux() || !Environment.IsPrivilegedProcess)
            {
                Assert.Skip("mounting a small tmpfs needs root on Linux");
            }
            Run("mount", "-t", "tmpfs", "-o", $"size={sizeKiB}k", "tmpfs", path);
            return new SmallTmpfs(path);
        }

        public void Dispose() => Run("umount", "-l", _path);

        private static void Run(string file, params string[] args)
        {
            using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true })!;
            string err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, $"{file} {string.Join(' ', args)}: {err}");
        }
    }
}
