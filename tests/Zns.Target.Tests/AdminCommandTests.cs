using Zns.Nvme;
using Zns.Protocol;
using Zns.Core.Zones;
using Zns.Target.Controller;
using Zns.Nvme.Layouts;
using static Zns.Target.Tests.TestHost;

namespace Zns.Target.Tests;

public sealed class AdminCommandTests
{
    private static (TestHost Host, IQueueHandler Admin) Enabled(TargetOptions? options = null)
    {
        var host = new TestHost(options);
        var (admin, _, _) = host.ConnectAdmin();
        Enable(admin);
        return (host, admin);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(257u)]
    [InlineData(0xFFFFFFFFu)]
    public void NamespaceIdentify_InvalidNsid_IsInvalidNamespace(uint nsid)
    {
        var (host, admin) = Enabled();
        using (host)
        {
            Fails(Run(admin, Sqe.Identify(IdentifyCns.Namespace, nsid), new byte[4096]), NvmeStatus.InvalidNamespace);
            Fails(Run(admin, Sqe.Identify(IdentifyCns.NamespaceDescriptorList, nsid), new byte[4096]), NvmeStatus.InvalidNamespace);
            Fails(Run(admin, Sqe.Identify(IdentifyCns.IoCommandSetNamespace, nsid, Csi.Zoned), new byte[4096]), NvmeStatus.InvalidNamespace);
        }
    }

    [Fact]
    public void NamespaceIdentify_AbsentNsid_AnswersAsQemu()
    {
        var (host, admin) = Enabled();
        using (host)
        {
            // NSID 2 is a valid but empty slot (NN = 256): zero-filled structures, descriptor list Invalid Field.
            var buffer = Enumerable.Repeat((byte)0xEE, 4096).ToArray();
            Ok(Run(admin, Sqe.Identify(IdentifyCns.Namespace, 2), buffer));
            Assert.All(buffer, b => Assert.Equal(0, b));
            buffer.AsSpan().Fill(0xEE);
            Ok(Run(admin, Sqe.Identify(IdentifyCns.IoCommandSetNamespace, 2, Csi.Zoned), buffer));
            Assert.All(buffer, b => Assert.Equal(0, b));
            Ok(Run(admin, Sqe.Identify(IdentifyCns.IoCommandSetIndependentNamespace, 2), buffer));
            Fails(Run(admin, Sqe.Identify(IdentifyCns.NamespaceDescriptorList, 2), new byte[4096]), NvmeStatus.InvalidField);
            Ok(Run(admin, Sqe.Identify(IdentifyCns.IoCommandSetIndependentNamespace, 1), buffer));
            Assert.Equal(1, buffer[IdentifyIndependentNamespaceLayout.Nstat]);
        }
    }

    [Fact]
    public void IdentifyFieldsAsQemuReportsThem()
    {
        var (host, admin) = Enabled();
        using (host)
        {
            var id = new byte[4096];
            Ok(Run(admin, Sqe.Identify(IdentifyCns.Controller), id));
            Assert.Equal(0x015D, BitConverter.ToUInt16(id, IdentifyControllerLayout.Oncs));
            Assert.Equal(ZonedNamespaceCopyFormats, BitConverter.ToUInt16(id, IdentifyControllerLayout.Ocfs));
            Assert.Equal(256u, BitConverter.ToUInt32(id, IdentifyControllerLayout.Nn));
            Assert.Equal(0x00010400u, BitConverter.ToUInt32(id, IdentifyControllerLayout.Ver));
            Assert.Equal(0, BitConverter.ToUInt16(id, IdentifyControllerLayout.Oacs));
            var nvm = new byte[4096];
            Ok(Run(admin, Sqe.Identify(IdentifyCns.IoCommandSetController, csi: Csi.Nvm), nvm));
            Assert.Equal(7, nvm[IdentifyNvmControllerLayout.Vsl]);
            Assert.Equal(255, nvm[IdentifyNvmControllerLayout.Dmrl]);
            uint dmrsl = BitConverter.ToUInt32(nvm, IdentifyNvmControllerLayout.Dmrsl);
            Assert.Equal((uint)(((int.MaxValue >> 9) << 9) / 4096), dmrsl);
            Assert.Equal(255ul * dmrsl, BitConverter.ToUInt64(nvm, IdentifyNvmControllerLayout.Dmsl));
            var ns = new byte[4096];
            Ok(Run(admin, Sqe.Identify(IdentifyCns.Namespace, 1), ns));
            Assert.Equal(128, BitConverter.ToUInt16(ns, IdentifyNamespaceLayout.Mssrl));
            Assert.Equal(128u, BitConverter.ToUInt32(ns, IdentifyNamespaceLayout.Mcl));
            Assert.Equal(127, ns[IdentifyNamespaceLayout.Msrc]);
            var effects = new byte[4096];
            Ok(Run(admin, Sqe.GetLogPage(LogPageId.CommandsSupportedAndEffects, 4096, csi: Csi.Zoned), effects));
            Assert.Equal(EffectsLogLayout.Csupp | EffectsLogLayout.Lbcc, BitConverter.ToUInt32(effects, 1024 + IoOpcode.Copy * 4));
            Assert.Equal(EffectsLogLayout.Csupp, BitConverter.ToUInt32(effects, 1024 + IoOpcode.Verify * 4));
            Assert.Equal(EffectsLogLayout.Csupp, BitConverter.ToUInt32(effects, 1024 + IoOpcode.Compare * 4));
            // Another command set: the admin part only. An offset equal to the log size: Invalid Field.
            Ok(Run(admin, Sqe.GetLogPage(LogPageId.CommandsSupportedAndEffects, 4096, csi: 1), effects));
            Assert.Equal(0u, BitConverter.ToUInt32(effects, 1024 + IoOpcode.Write * 4));
            Fails(Run(admin, Sqe.GetLogPage(LogPageId.SmartHealth, 4, offset: 512), new byte[4]), NvmeStatus.InvalidField);
        }
    }

    private static ushort ZonedNamespaceCopyFormats => Zns.Core.Zones.ZonedNamespace.CopyFormatsSupported;

    [Fact]
    public void NvmOnlyHostDoesNotSeeZonedNamespaces()
    {
        using var host = new TestHost(null, new NamespaceOptions { ZoneSize = 4L << 20 }, new NamespaceOptions { Zoned = false, LogicalBlockSize = 512 });
        var (admin, _, _) = host.ConnectAdmin();
        Ok(Run(admin, Sqe.PropertySet(ControllerProperties.Cc, 0x00460001)));   // CSS 000b: NVM command set only
        var list = new byte[4096];
        Ok(Run(admin, Sqe.Identify(IdentifyCns.ActiveNamespaceList), list));
        Assert.Equal(2u, BitConverter.ToUInt32(list, 0));
        Assert.Equal(0u, BitConverter.ToUInt32(list, 4));
        var ns = Enumerable.Repeat((byte)1, 4096).ToArray();
        Ok(Run(admin, Sqe.Identify(IdentifyCns.Namespace, 1), ns));
        Assert.All(ns, b => Assert.Equal(0, b));
        var effects = new byte[4096];
        Ok(Run(admin, Sqe.GetLogPage(LogPageId.CommandsSupportedAndEffects, 4096, csi: Csi.Zoned), effects));
        Assert.Equal(0u, BitConverter.ToUInt32(effects, 1024 + IoOpcode.ZoneAppend * 4));
    }

    [Fact]
    public void TimestampFeature()
    {
        var (host, admin) = Enabled();
        using (host)
        {
            var ts = new byte[8];
            Ok(Run(admin, Sqe.GetFeatures(FeatureId.Timestamp), ts));
            Assert.Equal(0ul, BitConverter.ToUInt64(ts) >> 49);          // origin 0: never set
            BitConverter.TryWriteBytes(ts, 1_700_000_000_000ul);
            Ok(Run(admin, Sqe.SetFeatures(FeatureId.Timestamp, 0), ts));
            var back = new byte[8];
            Ok(Run(admin, Sqe.GetFeatures(FeatureId.Timestamp), back));
            ulong v = BitConverter.ToUInt64(back);
            Assert.Equal(1ul, v >> 49);                                 // origin 1: set by a host
            Assert.InRange(v & 0xFFFF_FFFF_FFFF, 1_700_000_000_000ul, 1_700_000_100_000ul);
            Fails(Run(admin, Sqe.SetFeatures(FeatureId.Timestamp, 0)), NvmeStatus.DataSglLengthInvalid);
        }
    }

    [Fact]
    public void Identify_InvalidCnsCsiAndLength()
    {
        var (host, admin) = Enabled();
        using (host)
        {
            Fails(Run(admin, Sqe.Identify(0x10), new byte[4096]), NvmeStatus.InvalidField);
            Fails(Run(admin, Sqe.Identify(IdentifyCns.IoCommandSetController, csi: 1), new byte[4096]), NvmeStatus.InvalidField);
            Fails(Run(admin, Sqe.Identify(IdentifyCns.IoCommandSetActiveNamespaceList, csi: 3), new byte[4096]), NvmeStatus.InvalidField);
            Fails(Run(admin, Sqe.Identify(IdentifyCns.ActiveNamespaceList, 0xFFFFFFFE), new byte[4096]), NvmeStatus.InvalidNamespace);
            Fails(Run(admin, Sqe.Identify(IdentifyCns.Controller), new byte[512]), NvmeStatus.DataSglLengthInvalid);
        }
    }

    [Fact]
    public void UnknownAdminOpcode_AndIoOpcodeOnAdminQueue_AreInvalidOpcode()
    {
        var (host, admin) = Enabled();
        using (host)
        {
            Fails(Run(admin, Sqe.Create(0x80)), NvmeStatus.InvalidOpcode);
            Fails(Run(admin, Sqe.ReadWrite(IoOpcode.Write, 1, 0, 1), new byte[4096]), NvmeStatus.InvalidOpcode);
            Fails(Run(admin, Sqe.Create(IoOpcode.ZoneAppend, 1)), NvmeStatus.InvalidOpcode);
        }
    }

    [Fact]
    public void AdminOpcodeOnIoQueue_IsInvalidOpcode()
    {
        using var host = new TestHost();
        var (_, _, io, _, _) = host.ConnectAll();
        Fails(Run(io, Sqe.Identify(IdentifyCns.Controller), new byte[4096]), NvmeStatus.InvalidOpcode);
        Fails(Run(io, Sqe.Create(AdminOpcode.KeepAlive)), NvmeStatus.InvalidOpcode);
    }

    [Fact]
    public void GetLogPage_HonoursOffsetAndLength()
    {
        var (host, admin) = Enabled();
        using (host)
        {
            byte[] full = new byte[4096];
            Ok(Run(admin, Sqe.GetLogPage(LogPageId.CommandsSupportedAndEffects, 4096, csi: Csi.Zoned), full));
            // A window at LPO 1024 of 8 bytes.
            byte[] window = new byte[8];
            Ok(Run(admin, Sqe.GetLogPage(LogPageId.CommandsSupportedAndEffects, 8, csi: Csi.Zoned, offset: 1024 + 4), window));
            Assert.Equal(full[1028..1036], window);
            // Past the end of the 512-byte SMART log: zero filled.
            byte[] smart = new byte[1024];
            smart.AsSpan().Fill(0xEE);
            Ok(Run(admin, Sqe.GetLogPage(LogPageId.SmartHealth, 1024, nsid: uint.MaxValue), smart));
            Assert.All(smart[512..], b => Assert.Equal(0, b));
            // Offset beyond the log, unaligned offset, length mismatch, unknown LID, unknown CSI.
            Fails(Run(admin, Sqe.GetLogPage(LogPageId.SmartHealth, 4, offset: 516), new byte[4]), NvmeStatus.InvalidField);
            Fails(Run(admin, Sqe.GetLogPage(LogPageId.SmartHealth, 4, offset: 2), new byte[4]), NvmeStatus.InvalidField);
            Fails(Run(admin, Sqe.GetLogPage(LogPageId.SmartHealth, 512), new byte[256]), NvmeStatus.DataSglLengthInvalid);
            Fails(Run(admin, Sqe.GetLogPage(0x0C, 4096), new byte[4096]), NvmeStatus.InvalidField);
            Fails(Run(admin, Sqe.GetLogPage(LogPageId.Discovery, 4096), new byte[4096]), NvmeStatus.InvalidField);
            Fails(Run(admin, Sqe.GetLogPage(LogPageId.SmartHealth, 512, nsid: 7), new byte[512]), NvmeStatus.InvalidNamespace);
        }
    }

    [Fact]
    public void OtherLogs()
    {
        var (host, admin) = Enabled();
        using (host)
        {
            byte[] fw = new byte[512];
            Ok(Run(admin, Sqe.GetLogPage(LogPageId.FirmwareSlot, 512), fw));
            Assert.Equal(1, fw[0]);
            Assert.Equal("1.0     "u8.ToArray(), fw[8..16]);
            byte[] err = new byte[64];
            err[0] = 1;
            Ok(Run(admin, Sqe.GetLogPage(LogPageId.ErrorInformation, 64), err));
            Assert.All(err, b => Assert.Equal(0, b));
            byte[] zones = new byte[4096];
            Ok(Run(admin, Sqe.GetLogPage(LogPageId.ChangedZoneList, 4096, nsid: 1, csi: Csi.Zoned), zones));
            Assert.Equal(0, U16(zones, 0));
            Fails(Run(admin, Sqe.GetLogPage(LogPageId.ChangedZoneList, 4096, nsid: 3, csi: Csi.Zoned), zones), NvmeStatus.InvalidNamespace);
        }
    }

    [Fact]
    public void SmartCountsHostCommandsAndDataUnits()
    {
        using var host = new TestHost();
        var (admin, _, io, _, _) = host.ConnectAll();
        byte[] data = new byte[8 * 4096];
        Ok(Run(io, Sqe.ReadWrite(IoOpcode.Write, 1, 0, 8), data));
        Ok(Run(io, Sqe.ReadWrite(IoOpcode.Read, 1, 0, 8), data));
        Ok(Run(io, Sqe.ReadWrite(IoOpcode.Read, 1, 0, 1), data.AsMemory(0, 4096)));
        byte[] smart = new byte[512];
        Ok(Run(admin, Sqe.GetLogPage(LogPageId.SmartHealth, 512, nsid: uint.MaxValue), smart));
        Assert.Equal(1UL, U64(smart, 32));  // 72 sectors read -> 1 unit (rounded up)
        Assert.Equal(1UL, U64(smart, 48));
        Assert.Equal(2UL, U64(smart, 64));
        Assert.Equal(1UL, U64(smart, 80));
    }

    [Fact]
    public void Features()
    {
        var (host, admin) = Enabled();
        using (host)
        {
            Fails(Run(admin, Sqe.SetFeatures(FeatureId.NumberOfQueues, 0xFFFF)), NvmeStatus.InvalidField);
            Assert.Equal(0x0007_0007UL, Run(admin, Sqe.GetFeatures(FeatureId.NumberOfQueues)).Result);

            Ok(Run(admin, Sqe.SetFeatures(FeatureId.AsyncEventConfiguration, 0x100)));
            Assert.Equal(0x100UL, Run(admin, Sqe.GetFeatures(FeatureId.AsyncEventConfiguration)).Result);
            Fails(Run(admin, Sqe.SetFeatures(FeatureId.AsyncEventConfiguration, 0x200)), NvmeStatus.InvalidField);

            Ok(Run(admin, Sqe.SetFeatures(FeatureId.KeepAliveTimer, 15000)));
            Assert.Equal(15000UL, Run(admin, Sqe.GetFeatures(FeatureId.KeepAliveTimer)).Result);

            Assert.Equal(1UL, Run(admin, Sqe.GetFeatures(FeatureId.VolatileWriteCache)).Result);
            Ok(Run(admin, Sqe.SetFeatures(FeatureId.VolatileWriteCache, 0)));
            Assert.Equal(0UL, Run(admin, Sqe.GetFeatures(FeatureId.VolatileWriteCache)).Result);
            Assert.Equal(1UL, Run(admin, Sqe.GetFeatures(FeatureId.VolatileWriteCache, sel: 1)).Result);

            Ok(Run(admin, Sqe.SetFeatures(FeatureId.IoCommandSetProfile, 0)));
            Fails(Run(admin, Sqe.SetFeatures(FeatureId.IoCommandSetProfile, 1)), NvmeStatus.IoCommandSetCombinationRejected);
            Assert.Equal(0UL, Run(admin, Sqe.GetFeatures(FeatureId.IoCommandSetProfile)).Result);

            Assert.Equal(0x157UL, Run(admin, Sqe.GetFeatures(FeatureId.TemperatureThreshold)).Result);
            Ok(Run(admin, Sqe.SetFeatures(FeatureId.TemperatureThreshold, 0x160)));
            Ok(Run(admin, Sqe.SetFeatures(FeatureId.TemperatureThreshold, 0x10_0110)));
            Assert.Equal(0x160UL, Run(admin, Sqe.GetFeatures(FeatureId.TemperatureThreshold)).Result);
            Assert.Equal(0x110UL, Run(admin, Sqe.GetFeatures(FeatureId.TemperatureThreshold, cdw11: 0x10_0000)).Result);
            Fails(Run(admin, Sqe.SetFeatures(FeatureId.TemperatureThreshold, 0x01_0160)), NvmeStatus.InvalidField);

            Assert.Equal(0x4UL, Run(admin, Sqe.GetFeatures(FeatureId.KeepAliveTimer, sel: 3)).Result);
            Fails(Run(admin, Sqe.SetFeatures(0x02, 0)), NvmeStatus.InvalidField);
            Fails(Run(admin, Sqe.GetFeatures(0x0C)), NvmeStatus.InvalidField);
            SubmissionQueueEntry save = Sqe.SetFeatures(FeatureId.KeepAliveTimer, 1000);
            save.SetCdw(10, FeatureId.KeepAliveTimer | 0x8000_0000);
            Fails(Run(admin, save), NvmeStatus.FeatureIdNotSaveable);
        }
    }

    [Fact]
    public void AbortNeverAborts()
    {
        var (host, admin) = Enabled();
        using (host)
        {
            CompletionQueueEntry cqe = Run(admin, Sqe.Create(AdminOpcode.Abort));
            Ok(cqe);
            Assert.Equal(1UL, cqe.Result);
        }
    }

    [Fact]
    public void FusedCommands_AreRejected()
    {
        var (host, admin) = Enabled();
        using (host)
        {
            SubmissionQueueEntry sqe = Sqe.Identify(IdentifyCns.Controller);
            sqe.SetFlags(0x41);
            Fails(Run(admin, sqe, new byte[4096]), NvmeStatus.InvalidField);
        }
    }

    [Fact]
    public void ConventionalOnlySubsystem_Identifies()
    {
        using var host = new TestHost(null, new NamespaceOptions { Zoned = false, Mdts = 5 });
        var (admin, _, _) = host.ConnectAdmin();
        Enable(admin);
        Assert.Equal(5, Identify(admin, IdentifyCns.Controller)[77]);
        Assert.Equal(0, Identify(admin, IdentifyCns.IoCommandSetController, csi: Csi.Zoned)[0]);
        Assert.Equal(0, Identify(admin, IdentifyCns.NamespaceDescriptorList, 1)[44]);
    }
}
