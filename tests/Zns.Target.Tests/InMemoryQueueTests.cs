using Zns.Nvme;
using Zns.Protocol;
using static Zns.Target.Tests.ZnsLoopback;

namespace Zns.Target.Tests;

/// <summary>
/// The NVMe/TCP queue over in-memory pipes, with no socket: commands that complete synchronously are answered before
/// the bytes that carried them are handed over, the responses of one receive batch leave in one flush, and commands
/// that complete later are answered once they do.
/// </summary>
public sealed class InMemoryQueueTests
{
    private static byte[] IcReq()
    {
        var bytes = new byte[NvmeTcp.IcPduSize];
        PduWriter.WriteIcReq(bytes, DigestOptions.None);
        return bytes;
    }

    private static byte[] ConnectCapsule(ushort qid)
    {
        var sqe = LoopbackTarget.Command(AdminOpcode.Fabrics);
        sqe.Bytes[4] = FabricsCommandType.Connect;
        sqe.SetCdw(10, (uint)qid << 16);
        sqe.SetFlags(NvmeTcp.SqeFlagsSgl);
        sqe.SetCommandId(0x77);
        sqe.SetSgl(0, 1024, NvmeTcp.SglInCapsuleData);
        return Capsule(sqe, new byte[1024]);
    }

    private static byte[] DataCommand(byte opcode, ushort cid, ulong offset, int length, ReadOnlySpan<byte> inCapsule = default)
    {
        var sqe = LoopbackTarget.Command(opcode, offset);
        sqe.SetFlags(NvmeTcp.SqeFlagsSgl);
        sqe.SetCommandId(cid);
        sqe.SetSgl(0, (uint)length, inCapsule.IsEmpty ? NvmeTcp.SglTransportDataBlock : NvmeTcp.SglInCapsuleData);
        return Capsule(sqe, inCapsule);
    }

    private static async Task<InMemoryQueue> ConnectedAsync(LoopbackHandlerFactory factory)
    {
        var queue = new InMemoryQueue(factory);
        await queue.SendAsync(IcReq());
        Assert.Equal(PduType.ICResp, Assert.Single(queue.TakeOutput(initialized: false)).Pdu.Type);
        await queue.SendAsync(ConnectCapsule(1));
        var connect = Assert.Single(queue.TakeOutput()).Pdu;
        Assert.Equal(PduType.CapsuleResp, connect.Type);
        Assert.True(connect.Response.Status.IsSuccess);
        return queue;
    }

    [Fact]
    public async Task SynchronousCommands_AreAnsweredOnTheReceivingCall_InOneFlushPerBatch()
    {
        var factory = new LoopbackHandlerFactory();
        await using var queue = await ConnectedAsync(factory);
        int flushes = queue.Flushes;

        // Eight in-capsule writes and eight reads of what they write, in one receive batch.
        var batch = new List<byte[]>();
        for (int i = 0; i < 8; i++)
            batch.Add(DataCommand(IoOpcode.Write, (ushort)i, (ulong)i * 4096, 4096, Pattern(4096, i)));
        for (int i = 0; i < 8; i++)
            batch.Add(DataCommand(IoOpcode.Read, (ushort)(100 + i), (ulong)i * 4096, 4096));
        await queue.SendAsync([.. batch]);

        // Everything is answered by the time the batch was handed over, with one flush.
        var output = queue.TakeOutput();
        Assert.Equal(flushes + 1, queue.Flushes);
        Assert.Equal(8 + 8 * 2, output.Count);
        for (int i = 0; i < 8; i++)
        {
            var resp = output[i].Pdu;
            Assert.Equal(PduType.CapsuleResp, resp.Type);
            Assert.Equal((ushort)i, resp.Response.CommandId);
            Assert.True(resp.Response.Status.IsSuccess);
            Assert.Equal(Pattern(4096, i), factory.Storage.AsSpan(i * 4096, 4096).ToArray());
        }
        for (int i = 0; i < 8; i++)
        {
            var (data, bytes) = output[8 + 2 * i];
            Assert.Equal(PduType.C2HData, data.Type);
            Assert.Equal((ushort)(100 + i), data.CommandId);
            Assert.True(data.IsLast);
            Assert.Equal(Pattern(4096, i), bytes.AsSpan(data.DataStart, data.DataLength).ToArray());
            var resp = output[9 + 2 * i].Pdu;
            Assert.Equal((ushort)(100 + i), resp.Response.CommandId);
            Assert.True(resp.Response.Status.IsSuccess);
        }
        Assert.Equal(Enumerable.Range(0, 8).Select(i => (ushort)i).Concat(Enumerable.Range(100, 8).Select(i => (ushort)i)),
            factory.ExecutionOrder.Skip(1));
    }

    [Fact]
    public async Task R2TWrite_IsSolicitedAndCompletedWithoutWaiting()
    {
        var factory = new LoopbackHandlerFactory();
        await using var queue = await ConnectedAsync(factory);
        const int length = 32 * 1024;
        await queue.SendAsync(DataCommand(IoOpcode.Write, 5, 8192, length));
        var r2t = Assert.Single(queue.TakeOutput()).Pdu;
        Assert.Equal(PduType.R2T, r2t.Type);
        Assert.Equal((uint)length, r2t.TransferLength);

        var data = Pattern(length, 5);
        var h2c = new byte[PduWriter.DataPduLength(length, DigestOptions.None)];
        PduWriter.WriteDataPdu(h2c, PduType.H2CData, 5, r2t.TransferTag, 0, data, last: true, DigestOptions.None);
        await queue.SendAsync(h2c);
        var resp = Assert.Single(queue.TakeOutput()).Pdu;
        Assert.Equal((ushort)5, resp.Response.CommandId);
        Assert.True(resp.Response.Status.IsSuccess);
        Assert.Equal(data, factory.Storage.AsSpan(8192, length).ToArray());
    }

    [Fact]
    public async Task CommandCompletedLater_IsAnsweredWhenItCompletes_WithoutHoldingBackLaterOnes()
    {
        var factory = new LoopbackHandlerFactory();
        await using var queue = await ConnectedAsync(factory);
        var delayed = LoopbackTarget.Command(LoopbackHandlerFactory.DelayOpcode);
        delayed.SetCdw(10, 100);
        delayed.SetFlags(NvmeTcp.SqeFlagsSgl);
        delayed.SetCommandId(1);
        delayed.SetSgl(0, 0, NvmeTcp.SglTransportDataBlock);
        await queue.SendAsync(Capsule(delayed), DataCommand(IoOpcode.Write, 2, 0, 4096, Pattern(4096, 2)));

        // The write behind it executed (in arrival order) and is answered at once; the delayed command later.
        var first = Assert.Single(queue.TakeOutput()).Pdu;
        Assert.Equal((ushort)2, first.Response.CommandId);
        var later = Assert.Single(await queue.ExpectOutputAsync(1)).Pdu;
        Assert.Equal((ushort)1, later.Response.CommandId);
        Assert.Equal(100UL, later.Response.Result);
    }
}
