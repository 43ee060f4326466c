using System.Buffers.Binary;
using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Zns.Nvme;
using Zns.Nvme.Layouts;
using Zns.Target.Controller;
using Zns.Target.Execution;
using Zns.TestKit;

namespace Zns.Target.Tests.Conformance;

/// <summary>
/// The loop front end: an in-process fabric (as Linux's nvmet-loop) that is nothing but the transport contract. Each
/// queue is an <see cref="IQueueTransport"/> of its own with its own <see cref="TransportTraits"/>, whose
/// <see cref="IQueueHandler"/> comes from the target as <see cref="IQueueHandlerFactory"/>; the admin queue and I/O
/// queue 1 are made by Fabrics Connect and the controller enabled by Property Set CC.EN, as over any fabric. Each
/// command's direction and length come from <see cref="IQueueHandler.TransferOf"/>, its data goes to the controller
/// as <see cref="HostData"/>, and it runs through <see cref="CommandExecutor"/> with a <see cref="LoopCommand"/>.
/// </summary>
/// <remarks>
/// Writes that fit in a capsule (<see cref="InCapsuleDataLength"/>) are lent from the queue's one receive buffer
/// (<see cref="HostData.Borrowed"/>), which is overwritten as soon as the controller releases it, so a command
/// completing later must have detached its data; larger writes and all reads use a buffer of the command's own
/// (<see cref="HostData.Owned"/>).
/// </remarks>
internal sealed class LoopFrontEnd : FrontEnd
{
    /// <summary>In-capsule data up to 16 KiB: IOCCSZ (64 + 16384) / 16 = 1028, unlike NVMe/TCP's 8 KiB.</summary>
    public const int InCapsuleDataLength = 16 * 1024;

    /// <summary>
    /// A fabric with in-capsule data but no SGL addressing at all (the data travel in memory, never at an offset):
    /// SGLS says only "SGLs supported", without NVMe/TCP's bit 20.
    /// </summary>
    public static readonly TransportTraits Traits = new() { Sgls = 0x0000_0001, InCapsuleDataLength = InCapsuleDataLength };

    private LoopQueue? _admin, _io;

    private LoopFrontEnd(TargetSpec spec) : base(FrontEndKind.Loop, spec)
    {
    }

    public static async Task<LoopFrontEnd> StartAsync(TargetSpec spec)
    {
        var fe = new LoopFrontEnd(spec);
        try
        {
            await fe.ConnectAsync(retryWhileBusy: false);
            return fe;
        }
        catch
        {
            await fe.DisposeAsync();
            throw;
        }
    }

    public override async Task ReconnectAsync()
    {
        _io?.Dispose();
        _admin?.Dispose();
        await ConnectAsync(retryWhileBusy: true);
    }

    private async Task ConnectAsync(bool retryWhileBusy)
    {
        var fe = this;
        {
            IQueueHandlerFactory factory = fe.Target;
            string nqn = fe.Target.Subsystem.Nqn;
            Guid hostId = ZnsLoopback.HostIdOf(ZnsLoopback.HostA);
            CompletionQueueEntry connect;
            var deadline = DateTime.UtcNow + Conformance.Timeout;
            while (true)
            {
                fe._admin = new LoopQueue(factory, "loop-admin");
                connect = await fe._admin.SetUpAsync(Connect(0, 31), ConnectData(nqn, hostId, 0xFFFF));
                if (!retryWhileBusy || connect.Status != NvmeStatus.ConnectControllerBusy || DateTime.UtcNow > deadline)
                {
                    break;
                }
                fe._admin.Dispose();
                await Task.Delay(10);
            }
            Assert.True(connect.Status.IsSuccess, $"admin Connect: {connect.Status}");
            Assert.Equal((ushort)0, fe._admin.ConnectedQueueId);
            ushort cntlid = (ushort)connect.Result;
            SubmissionQueueEntry cc = Fabrics(FabricsCommandType.PropertySet);
            cc.SetCdw(11, ControllerProperties.Cc);
            cc.SetCdw(12, 0x00460061);
            Assert.True((await fe._admin.SetUpAsync(cc)).Status.IsSuccess, "Property Set CC.EN");
            fe._io = new LoopQueue(factory, "loop-io1");
            connect = await fe._io.SetUpAsync(Connect(1, 127), ConnectData(nqn, hostId, cntlid));
            Assert.True(connect.Status.IsSuccess, $"I/O Connect: {connect.Status}");
            Assert.Equal((ushort)1, fe._io.ConnectedQueueId);
        }
    }

    private static byte[] ConnectData(string nqn, Guid hostId, ushort cntlid)
    {
        var data = new byte[ConnectDataLayout.Size];
        ConnectDataLayout.Write(data, hostId, cntlid, nqn, ZnsLoopback.HostA);
        return data;
    }

    protected override Task<Exchanged[][]> ExchangeAsync(ushort qid, Command[][] batches) =>
        (qid == 0 ? _admin! : _io!).RunAsync(batches);

    public override ValueTask DisposeAsync()
    {
        // As a host tearing down its connections: I/O queue first, then the admin queue (which ends the controller).
        _io?.Dispose();
        _admin?.Dispose();
        Host.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>One loop queue: the transport side of one <see cref="IQueueHandler"/>.</summary>
    private sealed class LoopQueue : IQueueTransport, IDisposable
    {
        private readonly IQueueHandler _handler;
        private readonly CommandExecutor _executor;
        private readonly byte[] _receiveBuffer = new byte[InCapsuleDataLength];
        private readonly Lock _lock = new();
        private readonly HashSet<LoopCommand> _outstanding = [];
        private string? _aborted;
        private ushort _setupCid = 0xF000;

        public LoopQueue(IQueueHandlerFactory factory, string name)
        {
            RemoteEndPoint = name;
            _executor = new CommandExecutor(NullLogger.Instance, name);
            _handler = factory.CreateQueueHandler(this);
        }

        public string RemoteEndPoint { get; }

        TransportTraits IQueueTransport.Traits => Traits;

        /// <summary>The SQID the controller gave this queue with its Connect; null before.</summary>
        public ushort? ConnectedQueueId { get; private set; }

        public void OnQueueConnected(ushort queueId) => ConnectedQueueId = queueId;

        public void Abort(string reason)
        {
            LoopCommand[] dropped;
            lock (_lock)
            {
                _aborted ??= reason;
                dropped = [.. _outstanding];
                _outstanding.Clear();
            }
            foreach (LoopCommand c in dropped)
            {
                c.Drop(reason);
            }
        }

        /// <summary>A set-up command outside the transcript (Connect, Property Set).</summary>
        public async Task<CompletionQueueEntry> SetUpAsync(SubmissionQueueEntry sqe, byte[]? data = null)
        {
            sqe.SetCommandId(_setupCid++);
            Exchanged[][] done = await RunAsync([[new Command(sqe, data)]]);
            return done[0][0].Cqe;
        }

        /// <summary>
        /// Submits the commands in order, each as soon as the queue has room for it (<see cref="IQueueHandler.QueueDepth"/>),
        /// then waits for all of them.
        /// </summary>
        public async Task<Exchanged[][]> RunAsync(Command[][] batches)
        {
            long start = Stopwatch.GetTimestamp();
            var submitted = new List<LoopCommand>[batches.Length];
            for (int b = 0; b < batches.Length; b++)
            {
                submitted[b] = [];
                foreach (Command c in batches[b])
                {
                    while (Outstanding() is { } full && full.Length >= _handler.QueueDepth)
                    {
                        await Task.WhenAny(full.Select(f => f.Done)).WaitAsync(Conformance.Timeout).ConfigureAwait(false);
                    }
                    submitted[b].Add(Submit(c, start));
                }
            }
            var result = new Exchanged[batches.Length][];
            for (int b = 0; b < batches.Length; b++)
            {
                result[b] = new Exchanged[batches[b].Length];
                for (int i = 0; i < batches[b].Length; i++)
                {
                    LoopCommand c = submitted[b][i];
                    Task<CompletionQueueEntry> done = c.Done;
                    try
                    {
                        await done.WaitAsync(Conformance.Timeout).ConfigureAwait(false);
                    }
                    catch (TimeoutException)
                    {
                        Assert.Fail($"CID {c.Command.CommandId} on {RemoteEndPoint} never completed");
                    }
                    result[b][i] = new Exchanged(done.Result, c.ReadData, c.Elapsed);
                }
            }
            return result;
        }

        private LoopCommand[] Outstanding()
        {
            lock (_lock)
            {
                return [.. _outstanding];
            }
        }

        /// <summary>One command, as a fabric transport handles a capsule: its transfer from the table, then execute or refuse.</summary>
        private LoopCommand Submit(Command c, long start)
        {
            SubmissionQueueEntry sqe = c.Sqe;
            int described = c.DataOut?.Length ?? c.DataInLength;
            bool inCapsule = c.DataOut is { Length: > 0 and <= InCapsuleDataLength };
            // PSDT 01b: a fabric command describes its data with an SGL; here one data block of the host's length.
            sqe.SetFlags(0x40);
            sqe.SetSgl(0, (uint)described, inCapsule ? SglInCapsule : SglTransportData);
            var command = new LoopCommand(this, start) { Command = sqe };
            lock (_lock)
            {
                Assert.True(_aborted is null, $"{RemoteEndPoint} was aborted: {_aborted}");
                _outstanding.Add(command);
            }

            DataTransfer transfer = _handler.TransferOf(in command.Command);
            if (transfer.Direction == DataDirection.Bidirectional)
            {
                CommandExecutor.Refuse(_handler, command, NvmeStatus.InvalidOpcode.WithDnr());
                return command;
            }
            if (described > 0 && (c.DataOut is null) != (transfer.Direction == DataDirection.ControllerToHost))
            {
                // Data the wrong way (or data for a command that moves none): the host's descriptor cannot be used.
                CommandExecutor.Refuse(_handler, command, NvmeStatus.SglDescriptorTypeInvalid.WithDnr());
                return command;
            }
            if (transfer.Direction != DataDirection.None && described > _handler.MaxDataLength)
            {
                CommandExecutor.Refuse(_handler, command, NvmeStatus.InvalidField.WithDnr());
                return command;
            }

            HostData data;
            if (transfer.Direction == DataDirection.None || described == 0)
            {
                data = HostData.Empty;
            }
            else if (transfer.Direction == DataDirection.ControllerToHost)
            {
                command.ReadData = new byte[described];
                data = HostData.Owned(command.ReadData);
            }
            else if (inCapsule)
            {
                c.DataOut!.CopyTo(_receiveBuffer, 0);
                command.LentReceiveBuffer = true;
                data = HostData.Borrowed(_receiveBuffer.AsMemory(0, described));
            }
            else
            {
                data = HostData.Owned(c.DataOut!.AsSpan().ToArray());
            }
            _executor.Execute(_handler, command, data);
            return command;
        }

        private const byte SglInCapsule = 0x01, SglTransportData = 0x5A;

        /// <summary>The controller released the receive buffer: the next capsule lands in it.</summary>
        private void ReceiveBufferReleased() => _receiveBuffer.AsSpan().Fill(0xEE);

        private void Completed(LoopCommand command)
        {
            lock (_lock)
            {
                _outstanding.Remove(command);
            }
        }

        public void Dispose() => _handler.Dispose();

        /// <summary>The loop's record of one command while the controller executes it.</summary>
        private sealed class LoopCommand(LoopQueue queue, long start) : ExecutingCommand
        {
            private readonly TaskCompletionSource<CompletionQueueEntry> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
            private int _released;

            public Task<CompletionQueueEntry> Done => _done.Task;
            public byte[] ReadData = [];
            public bool LentReceiveBuffer;
            public TimeSpan Elapsed;

            protected internal override void HostDataReleased()
            {
                Assert.Equal(0, Interlocked.Exchange(ref _released, 1));
                if (LentReceiveBuffer)
                {
                    queue.ReceiveBufferReleased();
                }
            }

            protected internal override void Complete(in CompletionQueueEntry cqe, bool synchronously)
            {
                Elapsed = Stopwatch.GetElapsedTime(start);
                bool released = Volatile.Read(ref _released) == 1;
                queue.Completed(this);
                if (!released)
                {
                    _done.TrySetException(new InvalidOperationException($"CID {cqe.CommandId} completed before its host data was released"));
                    return;
                }
                _done.TrySetResult(cqe);
            }

            public void Drop(string reason) =>
                _done.TrySetException(new InvalidOperationException($"CID {Command.CommandId} dropped: the queue was aborted ({reason})"));
        }
    }
}

/// <summary>The loop transport's own traits reach the controller through the contract alone.</summary>
public sealed class LoopTransportTests
{
    [Fact]
    public async Task IdentifyControllerFollowsTheLoopTraits()
    {
        await using FrontEnd fe = await LoopFrontEnd.StartAsync(TargetSpec.Default);
        Completion c = await fe.AdminAsync(Sqe.Identify(IdentifyCns.Controller, 0, 0), dataInLength: IdentifyCns.DataSize);
        Conformance.Ok(c);
        byte[] id = c.Data;
        Assert.Equal((uint)(64 + LoopFrontEnd.InCapsuleDataLength) / 16, BinaryPrimitives.ReadUInt32LittleEndian(id.AsSpan(IdentifyControllerLayout.Ioccsz)));
        Assert.Equal(1028u, BinaryPrimitives.ReadUInt32LittleEndian(id.AsSpan(IdentifyControllerLayout.Ioccsz)));
        Assert.Equal(LoopFrontEnd.Traits.Sgls, BinaryPrimitives.ReadUInt32LittleEndian(id.AsSpan(IdentifyControllerLayout.Sgls)));
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(id.AsSpan(IdentifyControllerLayout.Iorcsz)));
        Assert.Equal(0, BinaryPrimitives.ReadUInt16LittleEndian(id.AsSpan(IdentifyControllerLayout.Oacs)) & 1 << 8);

        // The in-capsule limit the controller announces is the loop's, not NVMe/TCP's.
        Assert.NotEqual(LoopFrontEnd.InCapsuleDataLength, TcpFrontEnd.Transport.MaxInCapsuleDataLength);
        Assert.NotEqual(IdentifyControllerLayout.FabricSgls, LoopFrontEnd.Traits.Sgls);
    }
}
