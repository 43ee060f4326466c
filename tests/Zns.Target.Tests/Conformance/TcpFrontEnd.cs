using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using Microsoft.Extensions.Logging.Abstractions;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Target.Controller;
using Zns.Nvme.Layouts;
using Zns.Target.Tcp;
using Zns.TestKit;

namespace Zns.Target.Tests.Conformance;

/// <summary>
/// The NVMe/TCP front end: two <see cref="NvmeTcpQueue"/>s (admin and I/O queue 1) over in-memory pipes, driven as
/// the Linux host drives a connection: ICReq, Fabrics Connect, Property Set CC.EN; then capsules with SGL1, write
/// data in-capsule up to the in-capsule limit and otherwise sent in H2CData PDUs of at most MAXH2CDATA as R2Ts ask,
/// read data from C2HData.
/// </summary>
/// <remarks>
/// Each batch of capsules reaches the queue as one contiguous receive, as a socket receive of the host's back to
/// back commands does (the listener receives into buffers of 16 KiB and more), so the commands of a batch share one
/// receive buffer, which the queue hands back once it has parsed the batch.
/// </remarks>
internal sealed class TcpFrontEnd : FrontEnd
{
    /// <summary>In-capsule data up to 8 KiB (IOCCSZ; the Linux host's admin limit too) and H2CData PDUs of 16 KiB, so writes of 3 blocks and more go through R2T.</summary>
    public static readonly TargetTransportOptions Transport = new() { MaxInCapsuleDataLength = InCapsuleLimit, MaxH2CData = 16 * 1024 };

    /// <summary>Writes up to this size go in-capsule: IOCCSZ × 16 − 64 on I/O queues, the Linux host's 8 KiB on the admin queue.</summary>
    private const int InCapsuleLimit = 8192;

    private Connection? _admin, _io;

    private TcpFrontEnd(TargetSpec spec) : base(FrontEndKind.Tcp, spec)
    {
    }

    public static async Task<TcpFrontEnd> StartAsync(TargetSpec spec)
    {
        var fe = new TcpFrontEnd(spec);
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
        await CloseAsync();
        await ConnectAsync(retryWhileBusy: true);
    }

    private async Task CloseAsync()
    {
        if (_io is not null)
        {
            await _io.DisposeAsync();
            _io = null;
        }
        if (_admin is not null)
        {
            await _admin.DisposeAsync();
            _admin = null;
        }
    }

    private async Task ConnectAsync(bool retryWhileBusy)
    {
        var fe = this;
        {
            string nqn = fe.Target.Subsystem.Nqn;
            Guid hostId = ZnsLoopback.HostIdOf(ZnsLoopback.HostA);
            CompletionQueueEntry connect;
            var deadline = DateTime.UtcNow + Conformance.Timeout;
            while (true)
            {
                fe._admin = await Connection.OpenAsync(fe.Target);
                connect = await fe._admin.ExecuteAsync(Connect(0, 31), NvmeTcpInitiator.BuildConnectData(nqn, ZnsLoopback.HostA, hostId, 0xFFFF));
                if (!retryWhileBusy || connect.Status != NvmeStatus.ConnectControllerBusy || DateTime.UtcNow > deadline)
                {
                    break;
                }
                await fe._admin.DisposeAsync();
                await Task.Delay(10);
            }
            Assert.True(connect.Status.IsSuccess, $"admin Connect: {connect.Status}");
            ushort cntlid = (ushort)connect.Result;
            SubmissionQueueEntry cc = Fabrics(FabricsCommandType.PropertySet);
            cc.SetCdw(11, ControllerProperties.Cc);
            cc.SetCdw(12, 0x00460061);
            Assert.True((await fe._admin.ExecuteAsync(cc)).Status.IsSuccess, "Property Set CC.EN");
            fe._io = await Connection.OpenAsync(fe.Target);
            connect = await fe._io.ExecuteAsync(Connect(1, 127), NvmeTcpInitiator.BuildConnectData(nqn, ZnsLoopback.HostA, hostId, cntlid));
            Assert.True(connect.Status.IsSuccess, $"I/O Connect: {connect.Status}");
        }
    }

    protected override Task<Exchanged[][]> ExchangeAsync(ushort qid, Command[][] batches) =>
        (qid == 0 ? _admin! : _io!).RunAsync(batches);

    public override async ValueTask DisposeAsync()
    {
        await CloseAsync();
        Host.Dispose();
    }

    /// <summary>One NVMe/TCP connection (one queue) over two pipes.</summary>
    private sealed class Connection : IAsyncDisposable
    {
        // The host's bytes: resumed inline as the socket receive thread does, in segments of at least a small socket
        // receive. The target's bytes: read on the thread pool, so this host never runs inside the target's send.
        private readonly Pipe _toTarget = new(new PipeOptions(readerScheduler: PipeScheduler.Inline, writerScheduler: PipeScheduler.Inline,
            pauseWriterThreshold: 0, minimumSegmentSize: 16 * 1024, useSynchronizationContext: false));
        private readonly Pipe _fromTarget = new(new PipeOptions(readerScheduler: PipeScheduler.ThreadPool, writerScheduler: PipeScheduler.Inline,
            pauseWriterThreshold: 0, useSynchronizationContext: false));
        private readonly Task _running;
        private byte[] _received = [];
        private bool _initialized;
        private ushort _setupCid = 0xF000;

        private Connection(NvmeTarget target)
        {
            var queue = new NvmeTcpQueue(new Duplex(_toTarget.Reader, _fromTarget.Writer), "conformance", () => _toTarget.Writer.Complete(),
                Transport, target, NullLogger.Instance);
            _running = queue.RunAsync();
        }

        public int MaxH2CData { get; private set; }

        public static async Task<Connection> OpenAsync(NvmeTarget target)
        {
            var c = new Connection(target);
            var icReq = new byte[NvmeTcp.IcPduSize];
            PduWriter.WriteIcReq(icReq, DigestOptions.None);
            c.Send(icReq);
            var (icResp, _) = await c.ReceiveAsync(DateTime.UtcNow + Conformance.Timeout);
            Assert.Equal(PduType.ICResp, icResp.Type);
            c.MaxH2CData = (int)icResp.MaxH2CData;
            c._initialized = true;
            return c;
        }

        /// <summary>A set-up command outside the transcript (Connect, Property Set).</summary>
        public async Task<CompletionQueueEntry> ExecuteAsync(SubmissionQueueEntry sqe, byte[]? data = null)
        {
            sqe.SetCommandId(_setupCid++);
            Exchanged[][] done = await RunAsync([[new Command(sqe, data)]]);
            return done[0][0].Cqe;
        }

        public async Task<Exchanged[][]> RunAsync(Command[][] batches)
        {
            var pending = new Dictionary<ushort, Pending>();
            long start = Stopwatch.GetTimestamp();
            foreach (Command[] batch in batches)
            {
                var capsules = new List<byte[]>();
                foreach (Command c in batch)
                {
                    SubmissionQueueEntry sqe = c.Sqe;
                    sqe.SetFlags(NvmeTcp.SqeFlagsSgl);
                    bool inCapsule = c.DataOut is { Length: > 0 and <= InCapsuleLimit };
                    int length = c.DataOut?.Length ?? c.DataInLength;
                    sqe.SetSgl(0, (uint)length, inCapsule ? NvmeTcp.SglInCapsuleData : NvmeTcp.SglTransportDataBlock);
                    ReadOnlySpan<byte> data = inCapsule ? c.DataOut : default;
                    var capsule = new byte[PduWriter.CapsuleCmdLength(data.Length, DigestOptions.None)];
                    PduWriter.WriteCapsuleCmd(capsule, sqe, data, DigestOptions.None);
                    capsules.Add(capsule);
                    pending.Add(sqe.CommandId, new Pending(c));
                }
                Send([.. capsules]);
            }

            int open = pending.Count;
            var deadline = DateTime.UtcNow + Conformance.Timeout;
            while (open > 0)
            {
                var (pdu, bytes) = await ReceiveAsync(deadline);
                switch (pdu.Type)
                {
                    case PduType.CapsuleResp:
                    {
                        Pending p = Lookup(pending, pdu.Response.CommandId, "CapsuleResp");
                        Assert.True(p.Cqe is null, $"a second CapsuleResp for CID {pdu.Response.CommandId}");
                        Assert.True(!pdu.Response.Status.IsSuccess || p.Received == p.Read.Length,
                            $"CID {pdu.Response.CommandId} succeeded with {p.Received} of {p.Read.Length} bytes of C2HData");
                        p.Cqe = pdu.Response;
                        p.Elapsed = Stopwatch.GetElapsedTime(start);
                        open--;
                        break;
                    }
                    case PduType.C2HData:
                    {
                        Pending p = Lookup(pending, pdu.CommandId, "C2HData");
                        Assert.True((pdu.Flags & PduFlags.Success) == 0, "C2HData with SUCCESS (the Linux host expects a CapsuleResp)");
                        Assert.True(pdu.TransferOffset == p.Received && p.Received + pdu.DataLength <= p.Read.Length,
                            $"C2HData for CID {pdu.CommandId} at {pdu.TransferOffset}+{pdu.DataLength}, have {p.Received} of {p.Read.Length}");
                        bytes.AsSpan(pdu.DataStart, pdu.DataLength).CopyTo(p.Read.AsSpan(p.Received));
                        p.Received += pdu.DataLength;
                        Assert.True(pdu.IsLast == (p.Received == p.Read.Length), $"LAST_PDU wrong in C2HData for CID {pdu.CommandId}");
                        break;
                    }
                    case PduType.R2T:
                    {
                        Pending p = Lookup(pending, pdu.CommandId, "R2T");
                        byte[] write = p.Command.DataOut ?? [];
                        Assert.True(write.Length > InCapsuleLimit && pdu.TransferOffset == p.Solicited && pdu.TransferOffset + pdu.TransferLength <= write.Length,
                            $"R2T for CID {pdu.CommandId} at {pdu.TransferOffset}+{pdu.TransferLength} of {write.Length} (sent {p.Solicited})");
                        p.Solicited += (int)pdu.TransferLength;
                        Send(H2CData(pdu.CommandId, pdu.TransferTag, write, (int)pdu.TransferOffset, (int)pdu.TransferLength));
                        break;
                    }
                    default:
                        Assert.Fail($"unexpected {pdu.Type} from the target ({(pdu.Type == PduType.C2HTermReq ? pdu.FatalStatus : "")})");
                        break;
                }
            }
            return [.. batches.Select(b => b.Select(c =>
            {
                Pending p = pending[c.Sqe.CommandId];
                return new Exchanged(p.Cqe!.Value, p.Read, p.Elapsed);
            }).ToArray())];
        }

        private static Pending Lookup(Dictionary<ushort, Pending> pending, ushort cid, string what)
        {
            Assert.True(pending.TryGetValue(cid, out Pending? p), $"{what} for CID {cid}, which is not outstanding");
            return p;
        }

        /// <summary>The H2CData PDUs answering one R2T: chunks of at most MAXH2CDATA, LAST_PDU on the final one.</summary>
        private byte[][] H2CData(ushort cid, ushort ttag, byte[] write, int offset, int length)
        {
            var pdus = new List<byte[]>();
            for (int done = 0; done < length; done += MaxH2CData)
            {
                int n = Math.Min(MaxH2CData, length - done);
                var pdu = new byte[PduWriter.DataPduLength(n, DigestOptions.None)];
                PduWriter.WriteDataPdu(pdu, PduType.H2CData, cid, ttag, (uint)(offset + done), write.AsSpan(offset + done, n), done + n == length, DigestOptions.None);
                pdus.Add(pdu);
            }
            return [.. pdus];
        }

        /// <summary>Delivers the PDUs as one contiguous receive; the queue parses (and answers what it can) before this returns.</summary>
        private void Send(params byte[][] pdus)
        {
            int total = pdus.Sum(p => p.Length);
            Span<byte> buffer = _toTarget.Writer.GetSpan(total);
            int at = 0;
            foreach (byte[] pdu in pdus)
            {
                pdu.CopyTo(buffer[at..]);
                at += pdu.Length;
            }
            _toTarget.Writer.Advance(total);
            ValueTask<FlushResult> flush = _toTarget.Writer.FlushAsync();
            Assert.True(flush.IsCompleted, "the in-memory receive pipe never pauses");
            Assert.False(flush.Result.IsCompleted, "the target stopped reading");
        }

        /// <summary>The next PDU from the target, waiting for it until <paramref name="deadline"/>.</summary>
        private async Task<(Pdu Pdu, byte[] Bytes)> ReceiveAsync(DateTime deadline)
        {
            var options = new PduParserOptions(PduDirection.ControllerToHost, _initialized, DigestOptions.None, 0, 1 << 20);
            while (true)
            {
                PduParseStatus status = PduParser.TryParse(_received, options, out Pdu pdu, out PduError error);
                Assert.True(status != PduParseStatus.Fatal, $"the target sent a malformed PDU: {error}");
                if (status == PduParseStatus.Complete)
                {
                    byte[] bytes = _received[..pdu.Length];
                    _received = _received[pdu.Length..];
                    return (pdu, bytes);
                }
                TimeSpan left = deadline - DateTime.UtcNow;
                Assert.True(left > TimeSpan.Zero, "no answer from the target in time");
                using var timeout = new CancellationTokenSource(left);
                ReadResult result;
                try
                {
                    result = await _fromTarget.Reader.ReadAsync(timeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    Assert.Fail($"no answer from the target within {Conformance.Timeout.TotalSeconds} s");
                    throw;
                }
                _received = [.. _received, .. result.Buffer.ToArray()];
                _fromTarget.Reader.AdvanceTo(result.Buffer.End);
                Assert.False(result.IsCompleted && result.Buffer.IsEmpty, "the target closed the connection");
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _toTarget.Writer.CompleteAsync();
            await _running.WaitAsync(Conformance.Timeout);
            await _fromTarget.Reader.CompleteAsync();
        }

        private sealed class Pending(Command command)
        {
            public readonly Command Command = command;
            public readonly byte[] Read = new byte[command.DataInLength];
            public int Received;
            public int Solicited;
            public CompletionQueueEntry? Cqe;
            public TimeSpan Elapsed;
        }

        private sealed class Duplex(PipeReader input, PipeWriter output) : IDuplexPipe
        {
            public PipeReader Input { get; } = input;
            public PipeWriter Output { get; } = output;
        }
    }
}
