using System.Buffers.Binary;
using Zns.Nvme;
using Zns.Core.Zones;
using Zns.Protocol;
using Zns.Target.Controller;
using Zns.Nvme.Layouts;
using static Zns.Target.Tests.TestHost;

namespace Zns.Target.Tests;

/// <summary>Namespace write protection: statuses per opcode, Identify NSATTR, and the Namespace Attribute Changed notice.</summary>
public sealed class WriteProtectTests
{
    private const int Bs = 4096;

    private static SubmissionQueueEntry Dsm(bool deallocate)
    {
        SubmissionQueueEntry sqe = Sqe.Create(IoOpcode.DatasetManagement, 1);
        sqe.SetCdw(10, 0);
        sqe.SetCdw(11, deallocate ? 1u << 2 : 0);
        return sqe;
    }

    private static byte[] DsmRange(ulong slba, uint blocks)
    {
        var d = new byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(4), blocks);
        BinaryPrimitives.WriteUInt64LittleEndian(d.AsSpan(8), slba);
        return d;
    }

    private static SubmissionQueueEntry Copy(ulong sdlba)
    {
        SubmissionQueueEntry sqe = Sqe.Create(IoOpcode.Copy, 1);
        sqe.SetCdw10_11(sdlba);
        return sqe;
    }

    private static byte[] CopyRange(ulong slba)
    {
        var d = new byte[32];
        BinaryPrimitives.WriteUInt64LittleEndian(d.AsSpan(8), slba);
        return d;
    }

    [Fact]
    public void WhileProtected_CommandsThatModifyFailWithDnr_AndTheRestRun()
    {
        using var host = new TestHost();
        var (_, _, io, _, _) = host.ConnectAll();
        ZonedNamespace ns = host.Namespaces[0];
        ulong zone = ns.Geometry.ZoneSizeLbas;
        byte[] data = new byte[2 * Bs];
        data.AsSpan().Fill(0x5A);
        Ok(Run(io, Sqe.ReadWrite(IoOpcode.Write, 1, 0, 2), data));
        Ok(Run(io, Sqe.ZoneSend(1, 2 * zone, ZoneSendAction.Open)));

        Assert.True(host.Target.Subsystem.SetWriteProtected(1, true));
        Assert.True(host.Target.Subsystem.IsWriteProtected(1));

        NvmeStatus expected = NvmeStatus.NamespaceWriteProtected.WithDnr();
        Assert.Equal((byte)0, expected.Sct);
        Assert.Equal((byte)0x20, expected.Sc);
        Assert.Equal(expected, Run(io, Sqe.ReadWrite(IoOpcode.Write, 1, 2, 1), new byte[Bs]).Status);
        Assert.Equal(expected, Run(io, Sqe.ReadWrite(IoOpcode.WriteZeroes, 1, 2, 1)).Status);
        Assert.Equal(expected, Run(io, Sqe.ReadWrite(IoOpcode.ZoneAppend, 1, zone, 1), new byte[Bs]).Status);
        Assert.Equal(expected, Run(io, Copy(zone), CopyRange(0)).Status);
        Assert.Equal(expected, Run(io, Dsm(deallocate: true), DsmRange(0, 1)).Status);
        foreach (ZoneSendAction action in new[] { ZoneSendAction.Open, ZoneSendAction.Close, ZoneSendAction.Finish, ZoneSendAction.Reset, ZoneSendAction.Offline })
        {
            Assert.Equal(expected, Run(io, Sqe.ZoneSend(1, 0, action)).Status);
        }
        Assert.Equal(expected, Run(io, Sqe.ZoneSend(1, 0, ZoneSendAction.Reset, selectAll: true)).Status);

        // Nothing changed: zone 0 still holds two blocks, zone 1 is empty, zone 2 still explicitly open.
        Assert.Equal(2ul, ns.GetZone(0).WritePointer);
        Assert.Equal(zone, ns.GetZone(1).WritePointer);
        Assert.Equal(ZoneState.ExplicitlyOpened, ns.GetZone(2).State);

        byte[] read = new byte[2 * Bs];
        Ok(Run(io, Sqe.ReadWrite(IoOpcode.Read, 1, 0, 2), read));
        Assert.Equal(data, read);
        Ok(Run(io, Sqe.ReadWrite(IoOpcode.Compare, 1, 0, 2), data));
        Ok(Run(io, Sqe.ReadWrite(IoOpcode.Verify, 1, 0, 2)));
        Ok(Run(io, Sqe.Create(IoOpcode.Flush, 1)));
        Ok(Run(io, Sqe.Create(IoOpcode.Flush, uint.MaxValue)));
        Ok(Run(io, Dsm(deallocate: false), DsmRange(0, 1)));
        Ok(Run(io, Sqe.ZoneReceive(1, 0, 4096), new byte[4096]));
        Assert.Equal(2ul, ns.GetZone(0).WritePointer);

        // Lifted: writes work again where they left off.
        Assert.True(host.Target.Subsystem.SetWriteProtected(1, false));
        Ok(Run(io, Sqe.ReadWrite(IoOpcode.Write, 1, 2, 1), new byte[Bs]));
        Assert.Equal(3ul, ns.GetZone(0).WritePointer);
    }

    [Fact]
    public void WriteProtection_IsPerNamespace()
    {
        using var host = new TestHost(null, new NamespaceOptions { ZoneSize = 4L << 20 }, new NamespaceOptions { ZoneSize = 4L << 20 });
        var (_, _, io, _, _) = host.ConnectAll();
        host.Target.Subsystem.SetWriteProtected(2, true);
        Ok(Run(io, Sqe.ReadWrite(IoOpcode.Write, 1, 0, 1), new byte[Bs]));
        Fails(Run(io, Sqe.ReadWrite(IoOpcode.Write, 2, 0, 1), new byte[Bs]), NvmeStatus.NamespaceWriteProtected);
        Assert.Throws<ArgumentOutOfRangeException>(() => host.Target.Subsystem.SetWriteProtected(3, true));
    }

    [Fact]
    public void IdentifyNamespace_NsattrBit0_FollowsTheProtection_InCns00hAnd08h()
    {
        using var host = new TestHost();
        var (admin, _, _) = host.ConnectAdmin();
        Enable(admin);
        Assert.Equal(0, Identify(admin, IdentifyCns.Namespace, 1)[IdentifyNamespaceLayout.Nsattr]);
        Assert.Equal(0, Identify(admin, IdentifyCns.IoCommandSetIndependentNamespace, 1)[IdentifyIndependentNamespaceLayout.Nsattr]);

        host.Target.Subsystem.SetWriteProtected(1, true);
        Assert.Equal(1, Identify(admin, IdentifyCns.Namespace, 1)[99]);
        byte[] independent = Identify(admin, IdentifyCns.IoCommandSetIndependentNamespace, 1);
        Assert.Equal(1, independent[8]);
        Assert.Equal(1, independent[IdentifyIndependentNamespaceLayout.Nstat]);

        host.Target.Subsystem.SetWriteProtected(1, false);
        Assert.Equal(0, Identify(admin, IdentifyCns.Namespace, 1)[99]);
        Assert.Equal(0, Identify(admin, IdentifyCns.IoCommandSetIndependentNamespace, 1)[8]);
    }

    [Fact]
    public async Task AChange_RaisesTheNotice_AndListsTheNsid_OnEveryEnabledController()
    {
        using var host = new TestHost(null, new NamespaceOptions { ZoneSize = 4L << 20 }, new NamespaceOptions { ZoneSize = 4L << 20 });
        var (enabled, _, _) = host.ConnectAdmin();
        Enable(enabled);
        Ok(Run(enabled, Sqe.SetFeatures(FeatureId.AsyncEventConfiguration, IdentifyControllerLayout.OaesNamespaceAttribute)));
        var (silent, _, _) = host.ConnectAdmin();
        Enable(silent);
        ValueTask<CompletionQueueEntry> aer = enabled.ExecuteAsync(Sqe.Create(AdminOpcode.AsyncEventRequest), default);
        ValueTask<CompletionQueueEntry> silentAer = silent.ExecuteAsync(Sqe.Create(AdminOpcode.AsyncEventRequest), default);
        Assert.False(aer.IsCompleted);

        Assert.True(host.Target.Subsystem.SetWriteProtected(2, true));
        CompletionQueueEntry done = await aer.AsTask().WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Ok(done);
        Assert.Equal(0x0004_0002UL, done.Result); // type Notice, info 00h Namespace Attribute Changed, LID 04h
        Assert.False(silentAer.IsCompleted);

        byte[] list = new byte[4096];
        Ok(Run(enabled, Sqe.GetLogPage(LogPageId.ChangedNamespaceList, 4096), list));
        Assert.Equal(2u, U32(list, 0));
        Assert.Equal(0u, U32(list, 4));
        // A controller without the notice still keeps the list (the host may read it after a rescan of its own).
        Ok(Run(silent, Sqe.GetLogPage(LogPageId.ChangedNamespaceList, 4096), list));
        Assert.Equal(2u, U32(list, 0));

        // Setting the state it already has changes nothing and announces nothing.
        ValueTask<CompletionQueueEntry> next = enabled.ExecuteAsync(Sqe.Create(AdminOpcode.AsyncEventRequest), default);
        Assert.False(host.Target.Subsystem.SetWriteProtected(2, true));
        Assert.False(next.IsCompleted);
        Ok(Run(enabled, Sqe.GetLogPage(LogPageId.ChangedNamespaceList, 4096), list));
        Assert.Equal(0u, U32(list, 0));

        // Lifting it is a change too.
        Assert.True(host.Target.Subsystem.SetWriteProtected(2, false));
        Assert.Equal(0x0004_0002UL, (await next.AsTask().WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken)).Result);
        Ok(Run(enabled, Sqe.GetLogPage(LogPageId.ChangedNamespaceList, 4096), list));
        Assert.Equal(2u, U32(list, 0));
    }

    [Fact]
    public void AFileBackedNamespace_StaysWriteProtectedAcrossARestart_UntilLifted()
    {
        string dir = Directory.CreateTempSubdirectory("zns-wp-").FullName;
        try
        {
            string path = Path.Combine(dir, "wp.raw");
            Zns.Core.Storage.FileBackstore.Create(path, NamespaceBytes, preallocate: false);
            var options = new NamespaceOptions { ZoneSize = 4L << 20 };
            using (var host = TestHost.Over(ZonedNamespace.OpenFile(path, options)))
            {
                var (_, _, io, _, _) = host.ConnectAll();
                Ok(Run(io, Sqe.ReadWrite(IoOpcode.Write, 1, 0, 1), new byte[Bs]));
                host.Target.Subsystem.SetWriteProtected(1, true);
            }
            using (var host = TestHost.Over(ZonedNamespace.OpenFile(path, options)))
            {
                var (admin, _, io, _, _) = host.ConnectAll();
                Assert.True(host.Target.Subsystem.IsWriteProtected(1));
                Assert.Equal(1, Identify(admin, IdentifyCns.Namespace, 1)[IdentifyNamespaceLayout.Nsattr]);
                Fails(Run(io, Sqe.ReadWrite(IoOpcode.Write, 1, 1, 1), new byte[Bs]), NvmeStatus.NamespaceWriteProtected);
                Assert.Equal(1ul, host.Namespaces[0].GetZone(0).WritePointer);
                host.Target.Subsystem.SetWriteProtected(1, false);
            }
            using (var host = TestHost.Over(ZonedNamespace.OpenFile(path, options)))
            {
                var (admin, _, io, _, _) = host.ConnectAll();
                Assert.False(host.Target.Subsystem.IsWriteProtected(1));
                Assert.Equal(0, Identify(admin, IdentifyCns.Namespace, 1)[IdentifyNamespaceLayout.Nsattr]);
                Ok(Run(io, Sqe.ReadWrite(IoOpcode.Write, 1, 1, 1), new byte[Bs]));
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
