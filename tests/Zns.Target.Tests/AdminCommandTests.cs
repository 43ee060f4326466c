using Zns.Core.Nvme;
using Zns.Core.Zones;
using Zns.Target.Nvme;
using Zns.Target.Nvme.Wire;
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
    [InlineData(2u)]
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
            Fails(Run(admin, Sqe.GetLogPage(LogPageId.CommandsSupportedAndEffects, 4096, csi: 1), new byte[4096]), NvmeStatus.InvalidField);
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
            Fails(Run(admin, Sqe.SetFeatures(FeatureId.IoCommandSetProfile, 1)), NvmeStatus.InvalidField);
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
