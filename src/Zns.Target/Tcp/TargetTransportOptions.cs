using System.Net;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Target.Controller;

namespace Zns.Target.Tcp;

/// <summary>Settings of the NVMe/TCP listener and its connections.</summary>
public sealed record TargetTransportOptions
{
    /// <summary>Address and port to listen on. Port 0 picks a free port (see <see cref="NvmeTcpListener.LocalEndPoint"/>).
    /// Default: any IPv4 address, port 4420.</summary>
    public IPEndPoint ListenEndPoint { get; init; } = new(IPAddress.Any, NvmeTcp.DefaultPort);

    /// <summary>MAXH2CDATA advertised in ICResp: the largest data segment of one H2CData PDU. At least 4096 and a
    /// multiple of 4 (the Linux host rejects anything else). Default 128 KiB.</summary>
    public int MaxH2CData { get; init; } = 128 * 1024;

    /// <summary>
    /// Largest in-capsule data a CapsuleCmd may carry, on every queue. The controller advertises IOCCSZ =
    /// (64 + this) / 16 from this value (see <see cref="TransportTraits.InCapsuleDataLength"/>), and the Linux host
    /// sends an I/O queue write in-capsule exactly when its data fits, so a write up to this size costs no R2T round
    /// trip. Default 128 KiB (the kernel's target uses 16 KiB). Must stay ≥ 8192: the Linux host sends Fabrics
    /// commands (Connect data) and admin writes in-capsule up to 8192 bytes regardless of IOCCSZ.
    /// </summary>
    public int MaxInCapsuleDataLength { get; init; } = 128 * 1024;

    /// <summary>Largest data segment of one C2HData PDU this target sends. Default 128 KiB.</summary>
    public int MaxC2HDataPduLength { get; init; } = 128 * 1024;

    /// <summary>Most connections served at once; more are accepted and closed immediately. Default 1024.</summary>
    public int MaxConnections { get; init; } = 1024;

    /// <summary>
    /// A cap on the commands outstanding on one connection below what its queue allows, or null (the default): no
    /// cap of the transport's own. The limit that always applies is the queue's depth, SQSIZE + 1 from its Fabrics
    /// Connect (1 before it), which the controller keeps within CAP.MQES + 1 (<c>TargetOptions.MaxQueueEntries</c>),
    /// so that option is the one source of the queue depth. A capsule beyond the limit is a fatal transport error
    /// (C2HTermReq, PDU Sequence Error); a cap below the controller's queue size cuts off a host that uses its queue.
    /// </summary>
    public int? MaxOutstandingCommands { get; init; }

    /// <summary>
    /// Data bytes one connection may hold for commands whose buffer the target allocates from the SGL length: writes
    /// whose data is solicited with R2T, and reads (their C2H data). A command that would take the connection past
    /// this waits, without buffer, until earlier commands release theirs: its R2T is sent, or the read executed,
    /// later. Commands still execute in arrival order, so the ones behind it wait too. A single command larger than
    /// this (up to MDTS) proceeds once nothing else is buffered, so the bound is
    /// max(this, MDTS bytes). In-capsule data is not counted here (it is bounded by
    /// <see cref="MaxInCapsuleDataLength"/> per command). Default 4 MiB (8 commands at the default MDTS of 512 KiB).
    /// </summary>
    public int MaxBufferedDataBytes { get; init; } = 4 * 1024 * 1024;

    /// <summary>How long a new connection may take to send ICReq and complete a Fabrics Connect before it is closed
    /// (afterwards the controller's keep-alive timeout applies). Default 10 s.</summary>
    public TimeSpan InitializationTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>After a C2HTermReq, how long to wait for the host to read it and close before the socket is closed.
    /// Default 2 s.</summary>
    public TimeSpan TerminationLinger { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Managed memory one connection may hold while it is idle or stalled before its Fabrics Connect: 96 KiB.
    /// </summary>
    /// <remarks>
    /// What a connection holds: its receive pipe (one <see cref="SmallReceiveSize"/> segment while a partial PDU waits; a PDU is never
    /// waited for beyond the configured maxima, so a stalled PDU holds at most <see cref="ReceivePauseThreshold"/>),
    /// its command contexts (<see cref="ConnectedMemoryBound"/>), and send pipe segments only while responses wait
    /// to be sent; a receive that does not fill its buffer makes the next one small. Before Connect a
    /// queue allows one outstanding command of at most 8 KiB. ConnectionMemoryTests checks this bound with many
    /// silent and stalled connections. Until it has completed a Fabrics Connect a connection lives at most
    /// <see cref="InitializationTimeout"/>; afterwards the controller's keep-alive timeout applies.
    /// </remarks>
    public const int IdleConnectionMemoryBudget = 96 * 1024;

    /// <summary>Managed memory one command context may hold besides its buffered data: the context itself and the
    /// small data buffer (up to 16 KiB) it keeps for its next command, which also serves in-capsule data.</summary>
    public const int CommandContextMemory = KeptCommandBuffer + 1024;

    /// <summary>The data buffer a command context keeps for its next command.</summary>
    internal const int KeptCommandBuffer = 16 * 1024;

    /// <summary>Unsent response bytes at which a connection stops executing commands until the host reads.</summary>
    public const int SendPauseThreshold = 256 * 1024;

    /// <summary>Smallest segment of a connection's send pipe. One send covers at most one segment, so it is sized
    /// for a receive batch's worth of responses (32 4 KiB reads are 132 KiB).</summary>
    public const int SendSegmentSize = 64 * 1024;

    /// <summary>Size of a socket receive on a connected queue while the host keeps it busy (a receive filled its
    /// buffer). A receive batch is what one receive returns, so this bounds how many commands share one
    /// parse-execute-send pass (32 4 KiB in-capsule writes are 133 KiB), and a receive this large holds a whole
    /// in-capsule write of <see cref="MaxInCapsuleDataLength"/> in one contiguous buffer.</summary>
    public const int ReceiveSegmentSize = 256 * 1024;

    /// <summary>Size of a socket receive otherwise: an idle, stalled, not yet connected or lightly loaded connection
    /// holds no more.</summary>
    public const int SmallReceiveSize = 16 * 1024;

    /// <summary>
    /// Receive bytes at which a connection stops reading its socket until the parser catches up: at least
    /// 256 KiB, and twice the largest legal PDU so a whole PDU always fits.
    /// </summary>
    public long ReceivePauseThreshold => Math.Max(256 * 1024, 2 * (Math.Max(MaxInCapsuleDataLength, MaxH2CData) + 512L));

    /// <summary>
    /// Upper bound of the managed memory one connected connection holds, whatever its host sends:
    /// <see cref="ReceivePauseThreshold"/> (plus one receive segment) + the send pipe
    /// (<see cref="SendPauseThreshold"/> plus the one response that crosses it, up to
    /// <paramref name="largestCommandData"/> and one segment) + max(<see cref="MaxBufferedDataBytes"/>,
    /// <paramref name="largestCommandData"/>) + the in-capsule assembly buffer + the queue depth ×
    /// (<see cref="CommandContextMemory"/> + an in-capsule copy larger than the context keeps).
    /// With the defaults and MDTS 512 KiB: 257 + 256 + 256 + 512 + 64 + 4096 + 128 + 128 × (17 + 128) KiB = 24,129 KiB
    /// ≈ 23.6 MiB, reached only by a host that fills its queue with in-capsule writes behind one whose R2T data it
    /// holds back (the kernel's target allocates every outstanding command's data, up to queue depth × MDTS). A host
    /// cannot raise it: outstanding commands are capped by SQSIZE + 1 (and <see cref="MaxOutstandingCommands"/>), R2Ts
    /// and reads wait for <see cref="MaxBufferedDataBytes"/>, commands stop executing while the host leaves
    /// responses unread, and no length a host sends is allocated before it is checked against these limits.
    /// ConnectionMemoryTests drives deep queues of 512 KiB R2T writes, reads and in-capsule writes against this bound.
    /// </summary>
    /// <param name="largestCommandData">The largest data transfer of one command (MDTS in bytes on I/O queues).</param>
    /// <param name="queueEntries">The controller's queue size (<c>TargetOptions.MaxQueueEntries</c>).</param>
    public long ConnectedMemoryBound(int largestCommandData, int queueEntries = TargetOptions.DefaultMaxQueueEntries) =>
        ReceivePauseThreshold + ReceiveSegmentSize + SendPauseThreshold + largestCommandData + SendSegmentSize
        + Math.Max(MaxBufferedDataBytes, largestCommandData) + MaxInCapsuleDataLength
        + (long)Math.Min(MaxOutstandingCommands ?? queueEntries, queueEntries)
          * (CommandContextMemory + (MaxInCapsuleDataLength > KeptCommandBuffer ? MaxInCapsuleDataLength : 0));

    /// <summary>
    /// How long a connection's receive thread keeps polling its socket for the host's next bytes before it sleeps
    /// in the kernel's receive. Zero (the default): it sleeps at once. Polling spends a CPU while it lasts and saves
    /// the wake-up and context switch of a sleeping thread, which is what a queue-depth-1 command costs most where
    /// switches are slow (a guest under emulation).
    /// </summary>
    public TimeSpan ReceivePoll { get; init; }

    /// <summary>Listen backlog. Default 512.</summary>
    public int ListenBacklog { get; init; } = 512;

    /// <summary>Throws <see cref="ArgumentException"/> when a setting is out of range.</summary>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(ListenEndPoint);
        if (MaxH2CData < NvmeTcp.MinMaxH2CData || MaxH2CData % 4 != 0)
            throw new ArgumentException($"MaxH2CData must be ≥ {NvmeTcp.MinMaxH2CData} and a multiple of 4 (was {MaxH2CData}).");
        if (MaxInCapsuleDataLength < 0 || MaxInCapsuleDataLength % 16 != 0 || MaxInCapsuleDataLength > 1024 * 1024)
            throw new ArgumentException($"MaxInCapsuleDataLength must be a multiple of 16 in 0..1 MiB (was {MaxInCapsuleDataLength}).");
        if (MaxC2HDataPduLength < 512)
            throw new ArgumentException($"MaxC2HDataPduLength must be ≥ 512 (was {MaxC2HDataPduLength}).");
        if (MaxConnections < 1)
            throw new ArgumentException("MaxConnections must be positive.");
        if (MaxOutstandingCommands is < 1 or > ushort.MaxValue)
            throw new ArgumentException("MaxOutstandingCommands must be in 1..65535 (it bounds the R2T transfer tags).");
        if (MaxBufferedDataBytes < 4096)
            throw new ArgumentException($"MaxBufferedDataBytes must be ≥ 4096 (was {MaxBufferedDataBytes}).");
        if (ReceivePoll < TimeSpan.Zero || ReceivePoll > TimeSpan.FromSeconds(1))
            throw new ArgumentException($"ReceivePoll must be in 0..1 s (was {ReceivePoll}).");
        if (InitializationTimeout <= TimeSpan.Zero || TerminationLinger < TimeSpan.Zero)
            throw new ArgumentException("Timeouts must be positive.");
    }
}
