// Every wait in these tests is bounded by an explicit timeout, so test cancellation tokens add nothing.
#pragma warning disable xUnit1051

using Xunit;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Target.Tcp;
using Zns.TestKit;

namespace Zns.Target.Tests;

public class TransportTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    public static TheoryData<DigestOptions> AllDigests() =>
        new(DigestOptions.None, DigestOptions.Header, DigestOptions.Data, DigestOptions.Header | DigestOptions.Data);

    [Fact]
    public async Task ListenerOnPortZeroReportsTheBoundPort()
    {
        await using var target = new LoopbackTarget();
        Assert.NotEqual(0, target.EndPoint.Port);
    }

    [Theory]
    [MemberData(nameof(AllDigests))]
    public async Task IcRespEchoesDigestsAndAdvertisesMaxH2CData(DigestOptions digests)
    {
        await using var target = new LoopbackTarget(new TargetTransportOptions { MaxH2CData = 65536 });
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint);
        var icResp = await raw.HandshakeAsync(digests);
        Assert.Equal(PduType.ICResp, icResp.Type);
        Assert.Equal(128, icResp.Length);
        Assert.Equal(PduFlags.None, icResp.Flags);
        Assert.Equal(0, icResp.FormatVersion);
        Assert.Equal(0, icResp.DataAlignment);
        Assert.Equal(digests, icResp.Digests);
        Assert.Equal(65536u, icResp.MaxH2CData);
    }

    [Fact]
    public async Task FabricsConnectDeliversTheConnectDataInCapsule()
    {
        await using var target = new LoopbackTarget();
        await using var host = await target.ConnectAsync();
        var hostId = Guid.NewGuid();
        var cqe = await host.ConnectAdminQueueAsync("nqn.2024-01.org.zns:test", "nqn.2014-08.org.nvmexpress:uuid:host", hostId);
        Assert.True(cqe.Status.IsSuccess);
        Assert.Equal(1, host.ControllerId);
        Assert.True(target.Factory.ConnectData.TryDequeue(out var data));
        Assert.Equal(1024, data.Length);
        Assert.Equal(hostId.ToByteArray(bigEndian: true), data[..16]);
        Assert.Equal(0xFFFF, BitConverter.ToUInt16(data, 16));
        Assert.Equal("nqn.2024-01.org.zns:test", System.Text.Encoding.ASCII.GetString(data, 256, 256).TrimEnd('\0'));

        var cap = await host.PropertyGetAsync(0, eightBytes: true);
        Assert.Equal(0x0000_0820_0F00_007FUL, cap.Result);
    }

    [Fact]
    public async Task IoConnectAnswerCarriesTheQueueId()
    {
        await using var target = new LoopbackTarget();
        await using var host = await target.ConnectAsync();
        var cqe = await host.ConnectIoQueueAsync(3, 1, "nqn.sub", "nqn.host", Guid.NewGuid());
        Assert.Equal(3, cqe.SqId);
        // Transport-generated errors after Connect carry the queue id too.
        var bad = LoopbackTarget.Command(IoOpcode.Write);
        bad.SetFlags(NvmeTcp.SqeFlagsSgl);
        bad.SetSgl(0, 16, 0x00);
        cqe = await host.SubmitAsync(bad, options: new SubmitOptions { PreserveSgl = true });
        Assert.Equal(3, cqe.SqId);
    }

    [Theory]
    [MemberData(nameof(AllDigests))]
    public async Task InCapsuleWriteThenRead(DigestOptions digests)
    {
        await using var target = new LoopbackTarget();
        await using var host = await target.ConnectAsync(new NvmeTcpInitiatorOptions { Digests = digests });
        var data = LoopbackTarget.Pattern(4096, 1);
        var cqe = await host.SubmitAsync(LoopbackTarget.Command(IoOpcode.Write, 8192), data);
        Assert.True(cqe.Status.IsSuccess);
        Assert.Equal(data, target.Factory.Storage[8192..(8192 + 4096)]);

        var read = new byte[4096];
        cqe = await host.SubmitAsync(LoopbackTarget.Command(IoOpcode.Read, 8192), readBuffer: read);
        Assert.True(cqe.Status.IsSuccess);
        Assert.Equal(data, read);
    }

    [Theory]
    [MemberData(nameof(AllDigests))]
    public async Task R2TWriteAcrossManyH2CDataPdusAndMultiPduRead(DigestOptions digests)
    {
        var options = new TargetTransportOptions { MaxH2CData = 4096, MaxC2HDataPduLength = 8192 };
        await using var target = new LoopbackTarget(options);
        await using var host = await target.ConnectAsync(new NvmeTcpInitiatorOptions { Digests = digests });
        Assert.Equal(4096, host.MaxH2CData);
        var data = LoopbackTarget.Pattern(100_000, 2); // 25 H2CData PDUs, the last one short
        var cqe = await host.SubmitAsync(LoopbackTarget.Command(IoOpcode.Write, 0), data);
        Assert.True(cqe.Status.IsSuccess);
        Assert.Equal(data, target.Factory.Storage[..data.Length]);

        var read = new byte[data.Length];
        cqe = await host.SubmitAsync(LoopbackTarget.Command(IoOpcode.Read, 0), readBuffer: read);
        Assert.True(cqe.Status.IsSuccess);
        Assert.Equal(data, read);
    }

    [Fact]
    public async Task LargeWriteAboveInlineSizeUsesR2TWithDefaultSettings()
    {
        await using var target = new LoopbackTarget();
        await using var host = await target.ConnectAsync();
        var data = LoopbackTarget.Pattern(1024 * 1024, 3);
        Assert.True((await host.SubmitAsync(LoopbackTarget.Command(IoOpcode.Write, 4096), data)).Status.IsSuccess);
        var read = new byte[data.Length];
        Assert.True((await host.SubmitAsync(LoopbackTarget.Command(IoOpcode.Read, 4096), readBuffer: read)).Status.IsSuccess);
        Assert.Equal(data, read);
    }

    [Fact]
    public async Task SmallWriteForcedThroughR2T()
    {
        // Linux never does this (it sends ≤ inline size in-capsule) but it is legal and must complete.
        await using var target = new LoopbackTarget();
        await using var host = await target.ConnectAsync();
        var data = LoopbackTarget.Pattern(512, 4);
        var cqe = await host.SubmitAsync(LoopbackTarget.Command(IoOpcode.Write, 0), data, options: new SubmitOptions { InCapsule = false });
        Assert.True(cqe.Status.IsSuccess);
        Assert.Equal(data, target.Factory.Storage[..512]);
    }

    [Theory]
    [InlineData(DigestOptions.None)]
    [InlineData(DigestOptions.Header | DigestOptions.Data)]
    public async Task ManyOutstandingCommandsComplete(DigestOptions digests)
    {
        await using var target = new LoopbackTarget(new TargetTransportOptions { MaxH2CData = 8192, MaxOutstandingCommands = 256 });
        target.Factory.QueueDepth = 256;
        await using var host = await target.ConnectAsync(new NvmeTcpInitiatorOptions { Digests = digests });
        var tasks = new List<Task<(int Index, CompletionQueueEntry Cqe, byte[]? Read)>>();
        for (int i = 0; i < 256; i++)
        {
            int index = i;
            ulong offset = (ulong)i * 32768;
            switch (i % 4)
            {
                case 0: // in-capsule write
                    tasks.Add(Run(index, host.SubmitAsync(LoopbackTarget.Command(IoOpcode.Write, offset), LoopbackTarget.Pattern(4096, i)), null));
                    break;
                case 1: // R2T write
                    tasks.Add(Run(index, host.SubmitAsync(LoopbackTarget.Command(IoOpcode.Write, offset), LoopbackTarget.Pattern(20000, i)), null));
                    break;
                case 2: // delayed, asynchronous completion
                    var delay = LoopbackTarget.Command(LoopbackHandlerFactory.DelayOpcode, (ulong)(i % 7));
                    tasks.Add(Run(index, host.SubmitAsync(delay), null));
                    break;
                default: // read
                    var buffer = new byte[16384];
                    tasks.Add(Run(index, host.SubmitAsync(LoopbackTarget.Command(IoOpcode.Read, offset), readBuffer: buffer), buffer));
                    break;
            }
        }
        var results = await Task.WhenAll(tasks).WaitAsync(Timeout);
        Assert.All(results, r => Assert.True(r.Cqe.Status.IsSuccess, $"command {r.Index}: {r.Cqe.Status}"));
        Assert.Equal(256, results.Select(r => r.Cqe.CommandId).Distinct().Count());
        Assert.Equal(0, host.OutstandingCommands);
        for (int i = 0; i < 256; i += 4)
            Assert.Equal(LoopbackTarget.Pattern(4096, i), target.Factory.Storage.AsSpan(i * 32768, 4096).ToArray());

        static async Task<(int, CompletionQueueEntry, byte[]?)> Run(int index, Task<CompletionQueueEntry> task, byte[]? read) =>
            (index, await task, read);
    }

    [Fact]
    public async Task AsynchronousCompletionsMayOvertakeEarlierCommands()
    {
        await using var target = new LoopbackTarget();
        await using var host = await target.ConnectAsync();
        var slow = host.SubmitAsync(LoopbackTarget.Command(LoopbackHandlerFactory.DelayOpcode, 500));
        var fast = host.SubmitAsync(LoopbackTarget.Command(IoOpcode.Write, 0), new byte[16]);
        await fast.WaitAsync(Timeout);
        Assert.False(slow.IsCompleted);
        Assert.Equal(500UL, (await slow.WaitAsync(Timeout)).Result);
    }

    [Fact]
    public async Task CommandsExecuteInCapsuleArrivalOrderEvenWhenDataArrivesLater()
    {
        await using var target = new LoopbackTarget(new TargetTransportOptions { MaxH2CData = 4096 });
        await using var host = await target.ConnectAsync();
        // The first command's data comes through R2T after the second, in-capsule command has fully arrived.
        var first = host.SubmitAsync(LoopbackTarget.Command(IoOpcode.Write, 0), LoopbackTarget.Pattern(200_000, 5));
        var second = host.SubmitAsync(LoopbackTarget.Command(IoOpcode.Write, 0), LoopbackTarget.Pattern(1000, 6));
        var cqes = await Task.WhenAll(first, second).WaitAsync(Timeout);
        Assert.Equal(new[] { cqes[0].CommandId, cqes[1].CommandId }, target.Factory.ExecutionOrder.ToArray());
        Assert.Equal(LoopbackTarget.Pattern(1000, 6), target.Factory.Storage[..1000]);
    }

    [Fact]
    public async Task FailedReadSendsNoData()
    {
        await using var target = new LoopbackTarget();
        await using var host = await target.ConnectAsync();
        var cmd = LoopbackTarget.Command(LoopbackHandlerFactory.FailingReadOpcode);
        var cqe = await host.SubmitAsync(cmd, readBuffer: new byte[4096]);
        Assert.Equal(NvmeStatus.LbaOutOfRange.WithDnr(), cqe.Status);
        // The connection is still in sync.
        Assert.True((await host.SubmitAsync(LoopbackTarget.Command(IoOpcode.Read), readBuffer: new byte[512])).Status.IsSuccess);
    }

    [Fact]
    public async Task ZeroLengthCommandsCarryNoData()
    {
        await using var target = new LoopbackTarget();
        await using var host = await target.ConnectAsync();
        Assert.True((await host.SubmitAsync(LoopbackTarget.Command(LoopbackHandlerFactory.DelayOpcode, 0))).Status.IsSuccess);
        Assert.Equal(NvmeStatus.InvalidOpcode.WithDnr(), (await host.KeepAliveAsync()).Status); // the stand-in handler knows no Keep Alive
    }

    [Fact]
    public async Task StoppingTheListenerClosesConnectionsAndDisposesHandlers()
    {
        var target = new LoopbackTarget();
        var host = await target.ConnectAsync();
        await host.SubmitAsync(LoopbackTarget.Command(IoOpcode.Write), new byte[8]);
        Assert.Equal(1, target.Listener.ConnectionCount);
        await target.DisposeAsync();
        await host.Closed.WaitAsync(Timeout);
        Assert.Equal(1, target.Factory.Disposed);
        Assert.Equal(0, target.Listener.ConnectionCount);
        await host.DisposeAsync();
    }

    [Fact]
    public async Task HostClosingTheSocketDisposesTheHandler()
    {
        await using var target = new LoopbackTarget();
        var host = await target.ConnectAsync();
        await host.SubmitAsync(LoopbackTarget.Command(IoOpcode.Write), new byte[8]);
        await host.DisposeAsync();
        var deadline = DateTime.UtcNow + Timeout;
        while (Volatile.Read(ref target.Factory.Disposed) == 0 && DateTime.UtcNow < deadline)
            await Task.Delay(10);
        Assert.Equal(1, target.Factory.Disposed);
    }

    [Fact]
    public void OptionsAreValidated()
    {
        Assert.Throws<ArgumentException>(() => new TargetTransportOptions { MaxH2CData = 4094 }.Validate());
        Assert.Throws<ArgumentException>(() => new TargetTransportOptions { MaxH2CData = 2048 }.Validate());
        Assert.Throws<ArgumentException>(() => new TargetTransportOptions { MaxInCapsuleDataLength = 100 }.Validate());
        new TargetTransportOptions().Validate();
    }
}
