using System.IO.Pipelines;
using Zns.Nvme;
using Zns.Protocol;

namespace Zns.Target.Tcp;

/// <summary>
/// The controller-to-host side of one queue: serializes ICResp, R2T, C2HData and CapsuleResp PDUs into the
/// queue's output <see cref="PipeWriter"/>. PDUs are appended whole and in order, so one PDU's bytes are never
/// interleaved with another's; nothing is flushed here, so the responses of one receive batch leave in one send.
/// Used by the queue's loop only (the pipe has a single writer).
/// </summary>
internal sealed class ResponseWriter(PipeWriter output, TargetTransportOptions options)
{
    private DigestOptions _digests;

    /// <summary>Bytes written since the last <see cref="FlushAsync"/>.</summary>
    public long Unflushed { get; private set; }

    /// <summary>Digests in force from ICReq on.</summary>
    public void UseDigests(DigestOptions digests) => _digests = digests;

    /// <summary>ICResp: digest bits echoed exactly, since the Linux host fails the connection on any mismatch.</summary>
    public void WriteIcResp() =>
        Advance(PduWriter.WriteIcResp(output.GetSpan(NvmeTcp.IcPduSize), _digests, (uint)options.MaxH2CData));

    /// <summary>One R2T soliciting all of a command's data (MAXR2T is 0's based and the Linux host sends 0).</summary>
    public void WriteR2T(CommandContext ctx) =>
        Advance(PduWriter.WriteR2T(output.GetSpan(PduWriter.R2TLength(_digests)), ctx.Command.CommandId,
            (ushort)ctx.Index, 0, (uint)ctx.Length, _digests));

    /// <summary>A command's C2HData PDUs (when it read data successfully) followed by its CapsuleResp.</summary>
    public void WriteResponse(CommandContext ctx)
    {
        if (ctx.SendsData)
        {
            // Ascending offsets, no padding, LAST_PDU on the final PDU, never SUCCESS: the CapsuleResp follows.
            int chunk = options.MaxC2HDataPduLength;
            int headerLength = PduWriter.DataPduHeaderLength(_digests);
            int dd = PduWriter.DataDigestLength(_digests);
            ReadOnlySpan<byte> all = ctx.Data.Span;
            for (int offset = 0; offset < ctx.Length; offset += chunk)
            {
                int n = Math.Min(chunk, ctx.Length - offset);
                var data = all.Slice(offset, n);
                Advance(PduWriter.WriteDataPduHeader(output.GetSpan(headerLength), PduType.C2HData,
                    ctx.Command.CommandId, 0, (uint)offset, n, offset + n == ctx.Length, _digests));
                Write(data);
                if (dd != 0)
                {
                    Digest.Write(data, output.GetSpan(dd));
                    Advance(dd);
                }
            }
        }
        Advance(PduWriter.WriteCapsuleResp(output.GetSpan(PduWriter.CapsuleRespLength(_digests)), ctx.Response, _digests));
    }

    /// <summary>A prepared C2HTermReq.</summary>
    public void WriteTermReq(ReadOnlySpan<byte> pdu) => Write(pdu);

    /// <summary>Hands what was written to the socket side.</summary>
    public ValueTask<FlushResult> FlushAsync()
    {
        Unflushed = 0;
        return output.FlushAsync();
    }

    private void Write(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            var span = output.GetSpan(1);
            int n = Math.Min(span.Length, data.Length);
            data[..n].CopyTo(span);
            Advance(n);
            data = data[n..];
        }
    }

    private void Advance(int bytes)
    {
        output.Advance(bytes);
        Unflushed += bytes;
    }
}
