using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Microsoft.Extensions.Logging.Abstractions;
using Zns.Nvme;
using Zns.Core.Zones;
using Zns.Protocol;
using Zns.Target.Controller;
using Zns.Target.Tcp;
using Zns.TestKit;

namespace Zns.Benchmarks.Target;

/// <summary>
/// An <see cref="NvmeTarget"/> with a RAM namespace reached through two <see cref="NvmeTcpQueue"/>s (admin and one
/// I/O queue) over in-memory pipes: the whole target path from PDU bytes to PDU bytes, with no socket and no other
/// thread. <see cref="Exchange"/> hands over one receive batch and takes the responses it produced.
/// </summary>
internal sealed class PipeTarget : IDisposable
{
    private readonly ZonedNamespace _ns;
    private readonly NvmeTarget _target;
    private readonly Endpoint _admin;
    private readonly Endpoint _io;

    public PipeTarget()
    {
        _ns = ZonedNamespace.CreateInMemory(Layout.NamespaceSize, new NamespaceOptions { LogicalBlockSize = Layout.BlockSize, ZoneSize = Layout.ZoneSize });
        var data = new byte[Layout.BlockSize];
        for (ulong lba = 0; lba < (ulong)(Layout.ReadZones * Layout.ZoneBlocks); lba++)
            _ns.Write(lba, data);
        _target = new NvmeTarget(new TargetOptions(), [_ns]);
        string nqn = _target.Subsystem.Nqn;

        _admin = new Endpoint(_target);
        ushort cntlid = (ushort)_admin.Command(Connect(0, 0xFFFF, nqn));
        _admin.Command(Capsule(Fabrics(FabricsCommandType.PropertySet, 0x14, 0x00460061))); // CC.EN, 64/16-byte entries
        if ((_admin.Command(Capsule(Fabrics(FabricsCommandType.PropertyGet, 0x1C, 0))) & 1) == 0)
            throw new InvalidOperationException("controller not ready");
        _io = new Endpoint(_target);
        _io.Command(Connect(1, cntlid, nqn));
    }

    public ZonedNamespace Namespace => _ns;

    /// <summary>Delivers <paramref name="batch"/> as one receive and consumes the output; returns CapsuleResps seen.</summary>
    public int Exchange(ReadOnlySpan<byte> batch) => _io.Exchange(batch);

    /// <summary>A CapsuleCmd for an I/O command, with <paramref name="data"/> in-capsule (writes) or solicited (reads).</summary>
    public static byte[] IoCapsule(byte opcode, ushort cid, ulong slba, int blocks, int dataLength, bool inCapsule)
    {
        var sqe = NvmeTcpInitiator.IoCommand(opcode, 1, slba, blocks);
        sqe.SetFlags(NvmeTcp.SqeFlagsSgl);
        sqe.SetCommandId(cid);
        sqe.SetSgl(0, (uint)dataLength, inCapsule ? NvmeTcp.SglInCapsuleData : NvmeTcp.SglTransportDataBlock);
        var data = new byte[inCapsule ? dataLength : 0];
        new Random(cid).NextBytes(data);
        var bytes = new byte[PduWriter.CapsuleCmdLength(data.Length, DigestOptions.None)];
        PduWriter.WriteCapsuleCmd(bytes, sqe, data, DigestOptions.None);
        return bytes;
    }

    /// <summary>Rewrites the SLBA (CDW10-11) of a capsule built by <see cref="IoCapsule"/>.</summary>
    public static void SetSlba(Span<byte> capsule, ulong slba) =>
        BinaryPrimitives.WriteUInt64LittleEndian(capsule[(NvmeTcp.CommonHeaderSize + 40)..], slba);

    private static byte[] Connect(ushort qid, ushort cntlid, string nqn)
    {
        var sqe = Fabrics(FabricsCommandType.Connect, 0, 0, qid);
        var data = NvmeTcpInitiator.BuildConnectData(nqn, Layout.HostNqn, Layout.HostId, cntlid);
        sqe.SetSgl(0, (uint)data.Length, NvmeTcp.SglInCapsuleData);
        var bytes = new byte[PduWriter.CapsuleCmdLength(data.Length, DigestOptions.None)];
        PduWriter.WriteCapsuleCmd(bytes, sqe, data, DigestOptions.None);
        return bytes;
    }

    private static byte[] Capsule(in SubmissionQueueEntry sqe)
    {
        var bytes = new byte[PduWriter.CapsuleCmdLength(0, DigestOptions.None)];
        PduWriter.WriteCapsuleCmd(bytes, sqe, default, DigestOptions.None);
        return bytes;
    }

    private static SubmissionQueueEntry Fabrics(byte fctype, uint offset, ulong value, ushort qid = 0)
    {
        var sqe = default(SubmissionQueueEntry);
        sqe.SetOpcode(AdminOpcode.Fabrics);
        sqe.Bytes[4] = fctype;
        sqe.SetFlags(NvmeTcp.SqeFlagsSgl);
        sqe.SetCommandId(0x77);
        if (fctype == FabricsCommandType.Connect)
        {
            sqe.SetCdw(10, (uint)qid << 16);
            sqe.SetCdw(11, 127);
        }
        else
        {
            sqe.SetCdw(11, offset);
            sqe.SetCdw(12, (uint)value);
            sqe.SetCdw(13, (uint)(value >> 32));
            sqe.SetSgl(0, 0, NvmeTcp.SglInCapsuleData);
        }
        return sqe;
    }

    public void Dispose()
    {
        _io.Dispose();
        _admin.Dispose();
        _target.Dispose();
        _ns.Dispose();
    }

    private sealed class Endpoint : IDisposable
    {
        private readonly Pipe _toTarget = new(new PipeOptions(readerScheduler: PipeScheduler.Inline, writerScheduler: PipeScheduler.Inline,
            pauseWriterThreshold: 0, useSynchronizationContext: false));
        private readonly Pipe _fromTarget = new(new PipeOptions(readerScheduler: PipeScheduler.Inline, writerScheduler: PipeScheduler.Inline,
            pauseWriterThreshold: 0, useSynchronizationContext: false));
        private readonly Task _running;
        private ulong _lastResult;

        public Endpoint(NvmeTarget target)
        {
            var queue = new NvmeTcpQueue(new Duplex(_toTarget.Reader, _fromTarget.Writer), "in-memory", () => _toTarget.Writer.Complete(),
                new TargetTransportOptions(), target, NullLogger.Instance);
            _running = queue.RunAsync();
            var icReq = new byte[NvmeTcp.IcPduSize];
            PduWriter.WriteIcReq(icReq, DigestOptions.None);
            Exchange(icReq);
        }

        /// <summary>Sends one capsule and returns the result (DW0/DW1) of its response; throws on an error status.</summary>
        public ulong Command(byte[] capsule)
        {
            if (Exchange(capsule) != 1)
                throw new InvalidOperationException("no response");
            return _lastResult;
        }

        public int Exchange(ReadOnlySpan<byte> batch)
        {
            // With inline schedulers the flush runs the queue's whole loop (parse, execute, respond) before it returns.
            _toTarget.Writer.Write(batch);
            var flush = _toTarget.Writer.FlushAsync();
            if (!flush.IsCompleted)
                throw new InvalidOperationException("the queue did not consume the batch synchronously");
            if (!_fromTarget.Reader.TryRead(out var result))
                return 0;
            int responses = 0;
            var buffer = result.Buffer;
            Span<byte> header = stackalloc byte[NvmeTcp.CapsuleRespHeaderSize];
            while (buffer.Length >= NvmeTcp.CommonHeaderSize)
            {
                buffer.Slice(0, Math.Min(header.Length, buffer.Length)).CopyTo(header);
                int length = BinaryPrimitives.ReadInt32LittleEndian(header[4..]);
                if (header[0] == (byte)PduType.CapsuleResp)
                {
                    responses++;
                    _lastResult = BinaryPrimitives.ReadUInt64LittleEndian(header[8..]);
                    ushort status = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(header[22..]) >> 1);
                    if (status != 0)
                        throw new InvalidOperationException($"command failed with status {status:x}");
                }
                buffer = buffer.Slice(length);
            }
            _fromTarget.Reader.AdvanceTo(buffer.Start);
            return responses;
        }

        public void Dispose()
        {
            _toTarget.Writer.Complete();
            _running.GetAwaiter().GetResult();
        }
    }

    private sealed class Duplex(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;
        public PipeWriter Output { get; } = output;
    }
}
