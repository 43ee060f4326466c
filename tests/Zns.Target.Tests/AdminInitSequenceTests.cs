using System.Text;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Core.Zones;
using Zns.Target.Controller;
using Zns.Nvme.Layouts;
using static Zns.Target.Tests.TestHost;

namespace Zns.Target.Tests;

/// <summary>The admin command sequence of `nvme connect` on Linux 6.1/6.12, in order, with the values the host checks.</summary>
public sealed class AdminInitSequenceTests
{
    [Fact]
    public void LinuxConnectSequence_ReturnsWhatTheHostRequires()
    {
        using var host = new TestHost(null,
            new NamespaceOptions { ZoneSize = 4L << 20, MaxOpen = 4, MaxActive = 6, Zasl = 5 },
            new NamespaceOptions { Zoned = false, LogicalBlockSize = 512 });

        // 2. Connect QID 0, SQSIZE 31, KATO 5000, CNTLID FFFFh.
        var (admin, _) = host.Open();
        Assert.Equal(Zns.Target.Fabrics.FabricsQueue.PreConnectMaxDataLength, admin.MaxDataLength);
        CompletionQueueEntry connect = Run(admin, Sqe.Connect(0, 31, 5000), Sqe.ConnectData(host.Target.Subsystem.Nqn, HostNqn));
        Ok(connect);
        ushort cntlid = (ushort)connect.Result;
        Assert.InRange(cntlid, (ushort)1, (ushort)0xFFEF);
        Assert.Equal(0UL, connect.Result >> 16); // AUTHREQ 0
        Assert.Equal(0, connect.SqId);
        Assert.Equal(1, connect.SqHead);
        Assert.Equal(64 * 1024, admin.MaxDataLength);

        // 3. CAP (8 bytes): MQES 127, TO 15, CSS bits 37 and 43, MPSMIN 0.
        CompletionQueueEntry cap = Run(admin, Sqe.PropertyGet(ControllerProperties.Cap, true));
        Ok(cap);
        Assert.Equal(0x0000_0820_0F00_007FUL, cap.Result);
        Assert.Equal(2, cap.SqHead);

        // 4-8. CC without EN, read back, CAP again, EN, poll CSTS.
        Ok(Run(admin, Sqe.PropertySet(ControllerProperties.Cc, 0x00460060)));
        Assert.Equal(0x00460060UL, Run(admin, Sqe.PropertyGet(ControllerProperties.Cc, false)).Result);
        Assert.Equal(0UL, Run(admin, Sqe.PropertyGet(ControllerProperties.Csts, false)).Result);
        Ok(Run(admin, Sqe.PropertyGet(ControllerProperties.Cap, true)));
        Ok(Run(admin, Sqe.PropertySet(ControllerProperties.Cc, 0x00460061)));
        Assert.Equal(1UL, Run(admin, Sqe.PropertyGet(ControllerProperties.Csts, false)).Result);

        // 9. VS 1.4, as QEMU reports.
        Assert.Equal(0x00010400UL, Run(admin, Sqe.PropertyGet(ControllerProperties.Vs, false)).Result);

        // 10. Identify Controller.
        byte[] id = Identify(admin, IdentifyCns.Controller);
        Assert.Equal("deadbeef            ", Encoding.ASCII.GetString(id, 4, 20));
        Assert.StartsWith("zns ", Encoding.ASCII.GetString(id, 24, 40));
        Assert.Equal("1.0     ", Encoding.ASCII.GetString(id, 64, 8));
        Assert.Equal(0, id[76]);                       // CMIC
        Assert.Equal(7, id[77]);                       // MDTS 512 KiB
        Assert.Equal(cntlid, U16(id, 78));             // CNTLID = Connect's
        Assert.Equal(0x00010400u, U32(id, 80));        // VER 1.4 (QEMU)
        Assert.Equal(0x0800_0100u, U32(id, 92));       // OAES: namespace attribute notices, zone descriptor changed notices
        Assert.Equal(0u, U32(id, 96));                 // CTRATT
        Assert.Equal(1, id[111]);                      // CNTRLTYPE I/O
        Assert.Equal(0, U16(id, 256));                 // OACS
        Assert.Equal(3, id[259]);                      // AERL
        Assert.Equal(0x07, id[261]);                   // LPA
        Assert.Equal(0, id[265]);                      // APSTA
        Assert.Equal(10, U16(id, 320));                // KAS
        Assert.Equal(0x66, id[512]);
        Assert.Equal(0x44, id[513]);
        Assert.Equal(128, U16(id, 514));               // MAXCMD
        Assert.Equal(256u, U32(id, 516));              // NN (QEMU: NVME_MAX_NAMESPACES)
        Assert.Equal(0x15D, U16(id, 520));             // ONCS: Compare, DSM, Write Zeroes, Save/Select, Timestamp, Copy
        Assert.Equal(0x07, id[525]);                   // VWC
        Assert.Equal(0x00100001u, U32(id, 536));       // SGLS
        Assert.Equal(host.Target.Subsystem.Nqn, WireText.ReadNulTerminated(id.AsSpan(768, 256)));
        Assert.Equal(516u, U32(id, 1792));             // IOCCSZ (8 KiB in-capsule)
        Assert.Equal(1u, U32(id, 1796));               // IORCSZ
        Assert.Equal(0, U16(id, 1800));                // ICDOFF
        Assert.Equal(0, id[1802]);                     // FCATT dynamic
        Assert.Equal(1, id[1803]);                     // MSDBD

        // 11. Effects log for CSI 00h.
        byte[] effects = new byte[4096];
        Ok(Run(admin, Sqe.GetLogPage(LogPageId.CommandsSupportedAndEffects, 4096, csi: Csi.Nvm), effects));
        Assert.Equal(1u, U32(effects, AdminOpcode.Identify * 4));
        Assert.Equal(3u, U32(effects, 1024 + IoOpcode.Write * 4));
        Assert.Equal(1u, U32(effects, 1024 + IoOpcode.Read * 4));
        Assert.Equal(0u, U32(effects, 1024 + IoOpcode.ZoneAppend * 4));

        // 12. SMART log, NSID FFFFFFFFh, 512 bytes.
        byte[] smart = new byte[512];
        Ok(Run(admin, Sqe.GetLogPage(LogPageId.SmartHealth, 512, nsid: uint.MaxValue), smart));
        Assert.Equal(0x143, U16(smart, 1));

        // 13. Number of queues: 2 requested -> 8 granted (0's based).
        CompletionQueueEntry nq = Run(admin, Sqe.SetFeatures(FeatureId.NumberOfQueues, 0x0001_0001));
        Ok(nq);
        Assert.Equal(0x0007_0007UL, nq.Result);

        // I/O queue connects.
        var (io, _) = host.Open();
        CompletionQueueEntry ioConnect = Run(io, Sqe.Connect(1, 127), Sqe.ConnectData(host.Target.Subsystem.Nqn, HostNqn, cntlid));
        Ok(ioConnect);
        Assert.Equal(cntlid, (ushort)ioConnect.Result);
        Assert.Equal(1, ioConnect.SqId);
        Assert.Equal(512 * 1024, io.MaxDataLength);

        // 14-16. AEN config (OAES AND supported = 0x100), AER parks, Keep Alive.
        Ok(Run(admin, Sqe.SetFeatures(FeatureId.AsyncEventConfiguration, 0x100)));
        ValueTask<CompletionQueueEntry> aer = admin.ExecuteAsync(Sqe.Create(AdminOpcode.AsyncEventRequest), default);
        Assert.False(aer.IsCompleted);
        Ok(Run(admin, Sqe.Create(AdminOpcode.KeepAlive)));

        // 17. NVM Identify Controller (CSI 00h): QEMU's VSL 7, DMRL 255, DMRSL for the largest (4 KiB) block.
        byte[] nvmId = Identify(admin, IdentifyCns.IoCommandSetController, csi: Csi.Nvm);
        Assert.Equal(7, nvmId[0]);
        Assert.Equal(255, nvmId[3]);
        Assert.Equal((uint)(((int.MaxValue >> 9) << 9) / 4096), U32(nvmId, 4));

        // 18. Active namespace list.
        byte[] list = Identify(admin, IdentifyCns.ActiveNamespaceList);
        Assert.Equal(1u, U32(list, 0));
        Assert.Equal(2u, U32(list, 4));
        Assert.Equal(0u, U32(list, 8));

        // 19. Descriptors: UUID, NGUID, CSI 02h for the zoned namespace, CSI 00h for the conventional one.
        byte[] descs = Identify(admin, IdentifyCns.NamespaceDescriptorList, 1);
        Assert.Equal([3, 16, 0, 0], descs[0..4]);
        Assert.Equal(host.Namespaces[0].Uuid.ToByteArray(bigEndian: true), descs[4..20]);
        Assert.Equal([2, 16, 0, 0], descs[20..24]);
        Assert.Equal([4, 1, 0, 0, 2], descs[40..45]);
        Assert.Equal(0, descs[45]); // NIDL 0 ends the list
        Assert.Equal(0, Identify(admin, IdentifyCns.NamespaceDescriptorList, 2)[44]);

        // 20. Identify Namespace: NSZE/NCAP/NUSE = zones x ZSZE, LBADS 12, NGUID = descriptor's, DLFEAT zeros.
        byte[] ns = Identify(admin, IdentifyCns.Namespace, 1);
        ZoneGeometry g = host.Namespaces[0].Geometry;
        Assert.Equal(g.ZoneCount * g.ZoneSizeLbas, U64(ns, 0));
        Assert.Equal(U64(ns, 0), U64(ns, 8));
        Assert.Equal(U64(ns, 0), U64(ns, 16));
        Assert.Equal(0, ns[25]); // NLBAF
        Assert.Equal(0, ns[26]); // FLBAS
        Assert.Equal(0, ns[30]); // NMIC
        Assert.Equal(9, ns[33]); // DLFEAT: zeros, Write Zeroes may deallocate
        Assert.Equal(descs[24..40], ns[104..120]);
        Assert.Equal(12, ns[128 + 2]);
        Assert.Equal(9, Identify(admin, IdentifyCns.Namespace, 2)[128 + 2]);

        // 21. Effects log for CSI 02h: Zone Append CSUPP (else the host forces the disk read-only).
        Ok(Run(admin, Sqe.GetLogPage(LogPageId.CommandsSupportedAndEffects, 4096, csi: Csi.Zoned), effects));
        Assert.Equal(EffectsLogLayout.Csupp | EffectsLogLayout.Lbcc, U32(effects, 1024 + IoOpcode.ZoneAppend * 4));
        Assert.Equal(EffectsLogLayout.Csupp | EffectsLogLayout.Lbcc, U32(effects, 1024 + IoOpcode.ZoneManagementSend * 4));
        Assert.Equal(EffectsLogLayout.Csupp, U32(effects, 1024 + IoOpcode.ZoneManagementReceive * 4));

        // 23. ZNS Identify Controller: ZASL.
        Assert.Equal(5, Identify(admin, IdentifyCns.IoCommandSetController, csi: Csi.Zoned)[0]);

        // 24. ZNS Identify Namespace: ZOC 0, MAR/MOR 0's based, ZSZE power of two in sectors, ZDES 0.
        byte[] zns = Identify(admin, IdentifyCns.IoCommandSetNamespace, 1, Csi.Zoned);
        Assert.Equal(0, U16(zns, 0));
        Assert.Equal(0, U16(zns, 2));
        Assert.Equal(5u, U32(zns, 4));
        Assert.Equal(3u, U32(zns, 8));
        ulong zsze = U64(zns, 2816);
        Assert.Equal(g.ZoneSizeLbas, zsze);
        Assert.True(ulong.IsPow2(zsze << (12 - 9)));
        Assert.Equal(0, zns[2816 + 8]);

        // 25. Zone report on the I/O queue, partial, all zones.
        byte[] report = new byte[64 + 64 * (int)g.ZoneCount];
        Ok(Run(io, Sqe.ZoneReceive(1, 0, report.Length, partial: true), report));
        Assert.Equal((ulong)g.ZoneCount, U64(report, 0));
        Assert.Equal(2, report[64] & 0xF);     // ZT sequential write required
        Assert.Equal(0x10, report[65]);        // ZS empty

        // 26. Partition probing reads unwritten LBAs: zeros, success.
        byte[] block = new byte[4096];
        block.AsSpan().Fill(0xAA);
        Ok(Run(io, Sqe.ReadWrite(IoOpcode.Read, 1, 0, 1), block));
        Assert.All(block, b => Assert.Equal(0, b));

        // Shutdown on `nvme disconnect`: SHST = complete at once.
        Ok(Run(admin, Sqe.PropertySet(ControllerProperties.Cc, 0x00464061)));
        Assert.Equal(0x8UL, Run(admin, Sqe.PropertyGet(ControllerProperties.Csts, false)).Result & 0xC);
    }

    [Fact]
    public void ZoneInfoUnlimitedResources_ReportsAllOnes()
    {
        using var host = new TestHost(null, new NamespaceOptions { ZoneSize = 8L << 20, DescriptorExtensionSize = 128, CrossRead = true });
        var (admin, _, _) = host.ConnectAdmin();
        Enable(admin);
        byte[] zns = Identify(admin, IdentifyCns.IoCommandSetNamespace, 1, Csi.Zoned);
        Assert.Equal(uint.MaxValue, U32(zns, 4));
        Assert.Equal(uint.MaxValue, U32(zns, 8));
        Assert.Equal(1, U16(zns, 2));       // OZCS.RAZB
        Assert.Equal(2, zns[2816 + 8]);     // ZDES 128 bytes
        // ZASL 0 in the namespace means "MDTS" and is reported as 0, as QEMU reports its raw zoned.zasl.
        Assert.Equal(0, Identify(admin, IdentifyCns.IoCommandSetController, csi: Csi.Zoned)[0]);
    }

    [Fact]
    public void IoCommandSetStructures()
    {
        using var host = new TestHost(null, new NamespaceOptions { ZoneSize = 4L << 20 }, new NamespaceOptions { Zoned = false });
        var (admin, _, _) = host.ConnectAdmin();
        Enable(admin);
        Assert.Equal(0x5UL, U64(Identify(admin, IdentifyCns.IoCommandSetVector), 0));
        byte[] zonedList = Identify(admin, IdentifyCns.IoCommandSetActiveNamespaceList, 0, Csi.Zoned);
        Assert.Equal(1u, U32(zonedList, 0));
        Assert.Equal(0u, U32(zonedList, 4));
        byte[] nvmList = Identify(admin, IdentifyCns.IoCommandSetActiveNamespaceList, 0, Csi.Nvm);
        Assert.Equal(2u, U32(nvmList, 0));
        Assert.Equal(0u, U32(nvmList, 4));
        // Only NSIDs greater than the command's.
        Assert.Equal(2u, U32(Identify(admin, IdentifyCns.ActiveNamespaceList, 1), 0));
        // NVM-specific namespace structure: zeros; ZNS structure for a conventional namespace: Invalid Field.
        Assert.All(Identify(admin, IdentifyCns.IoCommandSetNamespace, 2, Csi.Nvm), b => Assert.Equal(0, b));
        Fails(Run(admin, Sqe.Identify(IdentifyCns.IoCommandSetNamespace, 2, Csi.Zoned), new byte[4096]), NvmeStatus.InvalidField);
    }
}
