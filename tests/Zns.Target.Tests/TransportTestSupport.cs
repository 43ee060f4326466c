using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Target;
using Zns.Target.Tcp;
using Zns.TestKit;
using Zns.Target.Controller;
using Zns.Nvme.Layouts;
using Zns.Target.Execution;

namespace Zns.Target.Tests;

/// <summary>
/// A stand-in controller for transport tests: Write/Read move bytes to/from one shared byte array at the byte
/// offset in CDW10-11; Fabrics Connect answers CNTLID 1; a few vendor opcodes delay, fail, throw or abort.
/// </summary>
internal sealed class LoopbackHandlerFactory : IQueueHandlerFactory
{
    public const byte DelayOpcode = 0xC0;       // no data; completes asynchronously after CDW10 ms
    public const byte AbortOpcode = 0xC4;       // no data; asks the transport to close
    public const byte ThrowOpcode = 0xC8;       // no data; throws
    public const byte FailingReadOpcode = 0xCA; // controller-to-host; fails with LBA Out of Range

    public byte[] Storage { get; } = new byte[8 * 1024 * 1024];
    public int MaxDataLength { get; set; } = 2 * 1024 * 1024;
    public int QueueDepth { get; set; } = 128;
    public ConcurrentQueue<ushort> ExecutionOrder { get; } = new();
    public ConcurrentQueue<byte[]> ConnectData { get; } = new();
    public ConcurrentBag<IQueueTransport> Transports { get; } = new();
    public int Disposed;

    public IQueueHandler CreateQueueHandler(IQueueTransport transport)
    {
        Transports.Add(transport);
        return new Handler(this, transport);
    }

    private sealed class Handler(LoopbackHandlerFactory owner, IQueueTransport transport) : IQueueHandler
    {
        private ushort _queueId;

        public ushort QueueId => _queueId;

        public int MaxDataLength => owner.MaxDataLength;

        public int QueueDepth => owner.QueueDepth;

        public DataTransfer TransferOf(in SubmissionQueueEntry command) =>
            command.Opcode == AdminOpcode.Fabrics ? CommandData.Admin(in command, memoryBased: false) : new DataTransfer((DataDirection)(command.Opcode & 3), 0, LengthRule.Any);

        public CompletionQueueEntry Refuse(in SubmissionQueueEntry command, NvmeStatus status) =>
            new() { CommandId = command.CommandId, SqId = _queueId, Status = status };

        public ValueTask<CompletionQueueEntry> ExecuteAsync(in SubmissionQueueEntry command, HostData hostData)
        {
            Memory<byte> data = hostData.Memory;
            owner.ExecutionOrder.Enqueue(command.CommandId);
            var cqe = new CompletionQueueEntry { CommandId = command.CommandId, SqId = _queueId };
            switch (command.Opcode)
            {
                case AdminOpcode.Fabrics when command.FabricsCommandType == FabricsCommandType.Connect:
                    owner.ConnectData.Enqueue(data.ToArray());
                    _queueId = (ushort)(command.Cdw10 >> 16);
                    cqe.SqId = _queueId;
                    cqe.Result = 1;
                    transport.OnQueueConnected(_queueId);
                    break;
                case AdminOpcode.Fabrics when command.FabricsCommandType == FabricsCommandType.PropertyGet:
                    cqe.Result = 0x0000_0820_0F00_007F;
                    break;
                case IoOpcode.Write:
                    data.Span.CopyTo(owner.Storage.AsSpan((int)command.Cdw10_11));
                    break;
                case IoOpcode.Read:
                    owner.Storage.AsSpan((int)command.Cdw10_11, data.Length).CopyTo(data.Span);
                    break;
                case FailingReadOpcode:
                    cqe.Status = NvmeStatus.LbaOutOfRange.WithDnr();
                    break;
                case DelayOpcode:
                    return DelayAsync(cqe, (int)command.Cdw10);
                case AbortOpcode:
                    transport.Abort("test asked to abort");
                    break;
                case ThrowOpcode:
                    throw new InvalidOperationException("handler bug");
                default:
                    cqe.Status = NvmeStatus.InvalidOpcode.WithDnr();
                    break;
            }
            return ValueTask.FromResult(cqe);
        }

        private static async ValueTask<CompletionQueueEntry> DelayAsync(CompletionQueueEntry cqe, int milliseconds)
        {
            await Task.Delay(milliseconds).ConfigureAwait(false);
            cqe.Result = (ulong)milliseconds;
            return cqe;
        }

        public void Dispose() => Interlocked.Increment(ref owner.Disposed);
    }
}

/// <summary>A listener on 127.0.0.1:0 with a <see cref="LoopbackHandlerFactory"/>.</summary>
internal sealed class LoopbackTarget : IAsyncDisposable
{
    public LoopbackTarget(TargetTransportOptions? options = null)
    {
        Options = (options ?? new TargetTransportOptions()) with { ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0) };
        Listener = new NvmeTcpListener(Options, Factory);
        Listener.Start();
    }

    public TargetTransportOptions Options { get; }
    public LoopbackHandlerFactory Factory { get; } = new();
    public NvmeTcpListener Listener { get; }
    public IPEndPoint EndPoint => Listener.LocalEndPoint;

    public Task<NvmeTcpInitiator> ConnectAsync(NvmeTcpInitiatorOptions? options = null) => NvmeTcpInitiator.ConnectAsync(EndPoint, options);

    public ValueTask DisposeAsync() => Listener.DisposeAsync();

    public static SubmissionQueueEntry Command(byte opcode, ulong cdw10_11 = 0)
    {
        var sqe = default(SubmissionQueueEntry);
        sqe.SetOpcode(opcode);
        sqe.SetCdw10_11(cdw10_11);
        return sqe;
    }

    public static byte[] Pattern(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    public static uint ReadUInt32(byte[] bytes, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset));
}
