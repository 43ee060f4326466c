using System.Buffers.Binary;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Nvme.Layouts;
using Zns.Target.Pcie;

namespace Zns.Target.Tests.Pcie;

/// <summary>SGLs (PSDT 01b/10b) read from guest memory: data blocks, segments, bit buckets, and every malformed form.</summary>
public sealed class SglTests
{
    private const byte DataBlock = 0x00, BitBucket = 0x10, Segment = 0x20, LastSegment = 0x30;

    private static void Put(Span<byte> at, ulong address, uint length, byte id)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(at, address);
        BinaryPrimitives.WriteUInt32LittleEndian(at[8..], length);
        at[12..15].Clear();
        at[15] = id;
    }

    /// <summary>An SQE for <paramref name="blocks"/> 4 KiB blocks at <paramref name="slba"/> whose DPTR is the given descriptor.</summary>
    private static SubmissionQueueEntry Sqe(PcieFixture f, byte opcode, ulong slba, int blocks, ulong address, uint length, byte id, byte psdt = 1)
    {
        SubmissionQueueEntry sqe = f.Driver.NewSqe(opcode, 1);
        sqe.SetFlags((byte)(psdt << 6));
        Put(sqe.Bytes[24..40], address, length, id);
        sqe.SetCdw10_11(slba);
        sqe.SetCdw(12, (uint)(blocks - 1));
        return sqe;
    }

    [Fact]
    public void Identify_reports_byte_aligned_sgls_with_bit_buckets()
    {
        using var f = new PcieFixture();
        f.EnableWithIoQueue();
        byte[] id = f.Driver.Identify(IdentifyCns.Controller);
        Assert.Equal(0x0001_0001u, BinaryPrimitives.ReadUInt32LittleEndian(id.AsSpan(IdentifyControllerLayout.Sgls)));
    }

    [Fact]
    public void Write_through_segment_chain_then_read_back_with_a_bit_bucket()
    {
        using var f = new PcieFixture();
        f.EnableWithIoQueue();
        // Write 3 blocks from three pieces of odd sizes: 1000 + 8000 + 3288 bytes, reached through a Segment (one
        // data block, then a Last Segment pointer) and a Last Segment (two data blocks).
        ulong a = f.Ram.Alloc(1000), b = f.Ram.Alloc(8000), c = f.Ram.Alloc(3288);
        byte[] expected = new byte[3 * 4096];
        new Random(7).NextBytes(expected);
        expected.AsSpan(0, 1000).CopyTo(f.Ram.Span(a, 1000));
        expected.AsSpan(1000, 8000).CopyTo(f.Ram.Span(b, 8000));
        expected.AsSpan(9000, 3288).CopyTo(f.Ram.Span(c, 3288));
        ulong seg1 = f.Ram.Alloc(32), seg2 = f.Ram.Alloc(32);
        Put(f.Ram.Span(seg1, 16), a, 1000, DataBlock);
        Put(f.Ram.Span(seg1 + 16, 16), seg2, 32, LastSegment);
        Put(f.Ram.Span(seg2, 16), b, 8000, DataBlock);
        Put(f.Ram.Span(seg2 + 16, 16), c, 3288, DataBlock);
        var write = Sqe(f, IoOpcode.Write, 0, 3, seg1, 32, Segment);
        Assert.Equal(NvmeStatus.Success, f.Driver.Execute(1, write).Status);
        byte[] stored = new byte[3 * 4096];
        Assert.True(f.Namespace.Read(0, stored).IsSuccess);
        Assert.Equal(expected, stored);

        // Read them back: the first 4096 + 100 bytes into the bit bucket, the rest into one buffer (PSDT 10b).
        ulong dst = f.Ram.Alloc(8092);
        ulong list = f.Ram.Alloc(32);
        Put(f.Ram.Span(list, 16), 0, 4196, BitBucket);
        Put(f.Ram.Span(list + 16, 16), dst, 8092, DataBlock);
        var read = Sqe(f, IoOpcode.Read, 0, 3, list, 32, LastSegment, psdt: 2);
        Assert.Equal(NvmeStatus.Success, f.Driver.Execute(1, read).Status);
        Assert.Equal(expected.AsSpan(4196).ToArray(), f.Ram.Span(dst, 8092).ToArray());
    }

    [Fact]
    public void A_single_data_block_in_the_sqe_carries_the_whole_transfer()
    {
        using var f = new PcieFixture();
        f.EnableWithIoQueue();
        ulong buf = f.Ram.Alloc(8192);
        f.Ram.Span(buf, 8192).Fill(0x5A);
        Assert.Equal(NvmeStatus.Success, f.Driver.Execute(1, Sqe(f, IoOpcode.Write, 0, 2, buf, 8192, DataBlock)).Status);
        ulong back = f.Ram.Alloc(8192);
        Assert.Equal(NvmeStatus.Success, f.Driver.Execute(1, Sqe(f, IoOpcode.Read, 0, 2, back, 8192, DataBlock)).Status);
        Assert.True(f.Ram.Span(back, 8192).IndexOfAnyExcept((byte)0x5A) < 0);
    }

    public static TheoryData<string> Malformed => new()
    {
        "short", "long", "subtype", "keyed", "bucket-in-write", "segment-length-zero", "segment-length-odd",
        "segment-not-last", "segment-in-last-segment", "outside-memory", "segment-outside-memory", "endless-chain", "psdt-11",
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void Malformed_sgls_get_their_status_and_nothing_is_written(string form)
    {
        using var f = new PcieFixture();
        f.EnableWithIoQueue();
        ulong buf = f.Ram.Alloc(8192), seg = f.Ram.Alloc(64);
        f.Ram.Span(buf, 8192).Fill(0x77);
        (SubmissionQueueEntry sqe, NvmeStatus expected) = form switch
        {
            "short" => (Sqe(f, IoOpcode.Write, 0, 2, buf, 4096, DataBlock), NvmeStatus.DataSglLengthInvalid.WithDnr()),
            "long" => (Sqe(f, IoOpcode.Write, 0, 1, buf, 8192, DataBlock), NvmeStatus.DataSglLengthInvalid.WithDnr()),
            "subtype" => (Sqe(f, IoOpcode.Write, 0, 1, buf, 4096, DataBlock | 0x1), NvmeStatus.SglDescriptorTypeInvalid.WithDnr()),
            "keyed" => (Sqe(f, IoOpcode.Write, 0, 1, buf, 4096, 0x40), NvmeStatus.SglDescriptorTypeInvalid.WithDnr()),
            "bucket-in-write" => (Sqe(f, IoOpcode.Write, 0, 1, 0, 4096, BitBucket), NvmeStatus.SglDescriptorTypeInvalid.WithDnr()),
            "segment-length-zero" => (Sqe(f, IoOpcode.Write, 0, 1, seg, 0, LastSegment), NvmeStatus.InvalidSglSegmentDescriptor.WithDnr()),
            "segment-length-odd" => (Sqe(f, IoOpcode.Write, 0, 1, seg, 24, LastSegment), NvmeStatus.InvalidSglSegmentDescriptor.WithDnr()),
            "segment-not-last" => Prepared(f, seg, IoOpcode.Write, [(seg + 32, 16u, LastSegment), (buf, 4096u, DataBlock)], NvmeStatus.InvalidSglSegmentDescriptor.WithDnr()),
            "segment-in-last-segment" => Prepared(f, seg, IoOpcode.Write, [(seg + 32, 16u, Segment)], NvmeStatus.InvalidSglSegmentDescriptor.WithDnr(), LastSegment),
            "outside-memory" => (Sqe(f, IoOpcode.Write, 0, 1, PcieFixture.RamBase - 4096, 4096, DataBlock), NvmeStatus.DataTransferError),
            "segment-outside-memory" => (Sqe(f, IoOpcode.Write, 0, 1, 0x1000, 16, LastSegment), NvmeStatus.DataTransferError),
            "endless-chain" => Prepared(f, seg, IoOpcode.Write, [(seg, 16u, Segment)], NvmeStatus.InvalidNumberOfSglDescriptors.WithDnr()),
            _ => (Sqe(f, IoOpcode.Write, 0, 1, buf, 4096, DataBlock, psdt: 3), NvmeStatus.InvalidField.WithDnr()),
        };
        Assert.Equal(expected, f.Driver.Execute(1, sqe).Status);
        Assert.Equal(0UL, f.Namespace.GetZone(0).WritePointer);
        // The queue keeps working afterwards.
        Assert.Equal(NvmeStatus.Success, f.Driver.Execute(1, Sqe(f, IoOpcode.Write, 0, 1, buf, 4096, DataBlock)).Status);
        Assert.Equal(1UL, f.Namespace.GetZone(0).WritePointer);
    }

    [Fact]
    public void Admin_commands_with_sgls_are_refused()
    {
        using var f = new PcieFixture();
        f.EnableWithIoQueue();
        ulong buf = f.Ram.Alloc(4096);
        SubmissionQueueEntry identify = f.Driver.NewSqe(AdminOpcode.Identify);
        identify.SetFlags(0x40);
        Put(identify.Bytes[24..40], buf, 4096, DataBlock);
        identify.SetCdw(10, IdentifyCns.Controller);
        Assert.Equal(NvmeStatus.InvalidField.WithDnr(), f.Driver.Execute(0, identify).Status);
    }

    // A segment at SEG holding DESCRIPTORS, pointed at by the SQE with type ID; a write of one block.
    private static (SubmissionQueueEntry, NvmeStatus) Prepared(PcieFixture f, ulong seg, byte opcode,
        (ulong Address, uint Length, byte Id)[] descriptors, NvmeStatus expected, byte id = Segment)
    {
        for (int i = 0; i < descriptors.Length; i++)
        {
            Put(f.Ram.Span(seg + (ulong)(16 * i), 16), descriptors[i].Address, descriptors[i].Length, descriptors[i].Id);
        }
        return (Sqe(f, opcode, 0, 1, seg, (uint)(16 * descriptors.Length), id), expected);
    }
}
