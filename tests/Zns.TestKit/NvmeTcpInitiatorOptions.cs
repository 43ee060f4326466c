using Zns.Nvme;
using Zns.Protocol;

namespace Zns.TestKit;

/// <summary>Settings of <see cref="NvmeTcpInitiator"/>.</summary>
public sealed record NvmeTcpInitiatorOptions
{
    /// <summary>Digests to request in ICReq. Default none.</summary>
    public DigestOptions Digests { get; init; } = DigestOptions.None;

    /// <summary>Writes up to this many bytes go in-capsule; larger ones wait for an R2T. Default 8192 (the Linux
    /// host's admin/fabrics limit; I/O queues use IOCCSZ × 16 − 64).</summary>
    public int InlineDataLength { get; init; } = 8192;

    /// <summary>Largest C2HData data segment accepted. Default 16 MiB.</summary>
    public int MaxC2HDataPduLength { get; init; } = 16 * 1024 * 1024;

    /// <summary>How long ICResp and each command may take before failing with <see cref="TimeoutException"/>. Default 30 s.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>HPDA to send in ICReq (the Linux host always sends 0). Default 0.</summary>
    public byte Hpda { get; init; }
}

/// <summary>How <see cref="NvmeTcpInitiator.SubmitAsync"/> fills SGL1 and places write data.</summary>
public readonly record struct SubmitOptions
{
    /// <summary>Keep the SQE's SGL1 and FLAGS as given (for tests that send invalid descriptors).</summary>
    public bool PreserveSgl { get; init; }

    /// <summary>Force write data in-capsule (true) or through R2T (false); null decides by
    /// <see cref="NvmeTcpInitiatorOptions.InlineDataLength"/>.</summary>
    public bool? InCapsule { get; init; }
}

/// <summary>A C2HTermReq received from the controller.</summary>
/// <param name="Status">FES.</param>
/// <param name="Information">FEI.</param>
/// <param name="ErrorData">The echoed header of the PDU the controller rejected.</param>
public sealed record TermReqInfo(FatalErrorStatus Status, uint Information, byte[] ErrorData);

/// <summary>The controller ended the connection or broke the protocol.</summary>
public sealed class NvmeTcpTransportException : IOException
{
    /// <summary>Creates the exception.</summary>
    public NvmeTcpTransportException(string message, TermReqInfo? termReq = null) : base(message) => TermReq = termReq;

    /// <summary>The C2HTermReq that ended the connection, if any.</summary>
    public TermReqInfo? TermReq { get; }
}
