using System.Buffers.Binary;
using Zns.Nvme.Layouts;

namespace Zns.Target.Tests;

/// <summary>Sizes and offsets of every wire layout, against the Linux header definitions.</summary>
public sealed class WireLayoutTests
{
    [Fact]
    public void IdentifyControllerOffsets()
    {
        Assert.Equal((4, 24, 64, 77, 78, 80, 92, 96, 111), (IdentifyControllerLayout.Sn, IdentifyControllerLayout.Mn,
            IdentifyControllerLayout.Fr, IdentifyControllerLayout.Mdts, IdentifyControllerLayout.Cntlid, IdentifyControllerLayout.Ver,
            IdentifyControllerLayout.Oaes, IdentifyControllerLayout.Ctratt, IdentifyControllerLayout.Cntrltype));
        Assert.Equal((256, 259, 261, 320, 512, 514, 516, 520, 525, 536, 768), (IdentifyControllerLayout.Oacs,
            IdentifyControllerLayout.Aerl, IdentifyControllerLayout.Lpa, IdentifyControllerLayout.Kas, IdentifyControllerLayout.Sqes,
            IdentifyControllerLayout.Maxcmd, IdentifyControllerLayout.Nn, IdentifyControllerLayout.Oncs, IdentifyControllerLayout.Vwc,
            IdentifyControllerLayout.Sgls, IdentifyControllerLayout.Subnqn));
        Assert.Equal((1792, 1796, 1800, 1802, 1803, 2048), (IdentifyControllerLayout.Ioccsz, IdentifyControllerLayout.Iorcsz,
            IdentifyControllerLayout.Icdoff, IdentifyControllerLayout.Fcatt, IdentifyControllerLayout.Msdbd, IdentifyControllerLayout.Psd0));
        byte[] d = new byte[4096];
        d.AsSpan().Fill(0xFF);
        IdentifyControllerLayout.Write(d, new ControllerIdentity("s", "m", "f", 7, 7, 128, 1, "nqn.x", 516, false, 0));
        Assert.Equal(7, BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan(78)));
        Assert.All(d[3072..], b => Assert.Equal(0, b)); // vendor specific area cleared
    }

    [Fact]
    public void IdentifyNamespaceOffsets()
    {
        Assert.Equal((0, 8, 16, 25, 26, 30, 33, 104, 120, 128), (IdentifyNamespaceLayout.Nsze, IdentifyNamespaceLayout.Ncap,
            IdentifyNamespaceLayout.Nuse, IdentifyNamespaceLayout.Nlbaf, IdentifyNamespaceLayout.Flbas, IdentifyNamespaceLayout.Nmic,
            IdentifyNamespaceLayout.Dlfeat, IdentifyNamespaceLayout.Nguid, IdentifyNamespaceLayout.Eui64, IdentifyNamespaceLayout.Lbaf0));
        Assert.Equal((0, 2, 4, 8, 2816), (IdentifyZonedNamespaceLayout.Zoc, IdentifyZonedNamespaceLayout.Ozcs,
            IdentifyZonedNamespaceLayout.Mar, IdentifyZonedNamespaceLayout.Mor, IdentifyZonedNamespaceLayout.Lbafe0));
        Assert.Equal(2816 + 16 * 64, 3840); // 16 LBAFE entries end where the vendor area starts
    }

    [Fact]
    public void DescriptorListLayout()
    {
        byte[] d = new byte[4096];
        byte[] uuid = [.. Enumerable.Range(1, 16).Select(i => (byte)i)];
        NamespaceDescriptorListLayout.Write(d, uuid, uuid, Csi.Zoned);
        Assert.Equal([3, 16, 0, 0], d[..4]);
        Assert.Equal([2, 16, 0, 0], d[20..24]);
        Assert.Equal([4, 1, 0, 0, 2], d[40..45]);
        Assert.All(d[45..], b => Assert.Equal(0, b));
    }

    [Fact]
    public void LogLayouts()
    {
        Assert.Equal(4096, EffectsLogLayout.Size);
        Assert.Equal(1024, EffectsLogLayout.IoOffset);
        Assert.Equal(512, SmartLogLayout.Size);
        Assert.Equal((1, 32, 48, 64, 80), (SmartLogLayout.CompositeTemperature, SmartLogLayout.DataUnitsRead,
            SmartLogLayout.DataUnitsWritten, SmartLogLayout.HostReads, SmartLogLayout.HostWrites));
        Assert.Equal(512, FirmwareSlotLogLayout.Size);
        Assert.Equal(64, ErrorLogLayout.Size);
        Assert.Equal(4096, ChangedZoneListLayout.Size);
        Assert.Equal(512, HostBehaviorLayout.Size);
        Assert.Equal(4, HostBehaviorLayout.CdfeOffset);
        Assert.Equal(3072, DiscoveryLogLayout.SizeFor(2));
        Assert.Equal((0, 1, 2, 3, 4, 6, 8, 32, 256, 512, 768), (DiscoveryLogLayout.Trtype, DiscoveryLogLayout.Adrfam,
            DiscoveryLogLayout.Subtype, DiscoveryLogLayout.Treq, DiscoveryLogLayout.Portid, DiscoveryLogLayout.Cntlid,
            DiscoveryLogLayout.Asqsz, DiscoveryLogLayout.Trsvcid, DiscoveryLogLayout.Subnqn, DiscoveryLogLayout.Traddr,
            DiscoveryLogLayout.Tsas));
    }

    [Fact]
    public void ConnectLayouts()
    {
        Assert.Equal(1024, ConnectDataLayout.Size);
        Assert.Equal((0, 16, 256, 512), (ConnectDataLayout.HostIdOffset, ConnectDataLayout.CntlidOffset,
            ConnectDataLayout.SubNqnOffset, ConnectDataLayout.HostNqnOffset));
        Assert.Equal((40, 42, 44, 46, 48), (ConnectCommandLayout.RecfmtOffset, ConnectCommandLayout.QidOffset,
            ConnectCommandLayout.SqSizeOffset, ConnectCommandLayout.CattrOffset, ConnectCommandLayout.KatoOffset));
        byte[] data = new byte[1024];
        var hostId = Guid.NewGuid();
        ConnectDataLayout.Write(data, hostId, 0xFFFF, "nqn.sub", "nqn.host");
        Assert.Equal(hostId, ConnectDataLayout.HostId(data));
        Assert.Equal(0xFFFF, ConnectDataLayout.Cntlid(data));
        Assert.Equal("nqn.sub", ConnectDataLayout.SubNqn(data));
        Assert.Equal("nqn.host", ConnectDataLayout.HostNqn(data));
        Assert.Equal(0x0000_0820_0F00_007FUL, ControllerProperties.BuildCap(127));
    }

    [Fact]
    public void NamespaceListAndVector()
    {
        byte[] d = new byte[4096];
        NamespaceListLayout.Write(d, [1, 5]);
        Assert.Equal(5u, BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(4)));
        IoCommandSetVectorLayout.Write(d);
        Assert.Equal(5UL, BinaryPrimitives.ReadUInt64LittleEndian(d));
        Assert.All(d[8..], b => Assert.Equal(0, b));
    }
}
