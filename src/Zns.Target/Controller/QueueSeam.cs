using Zns.Nvme;
using Zns.Protocol;

namespace Zns.Target.Controller;

/// <summary>
/// The transport side of one NVMe queue (one NVMe/TCP connection), as seen by the controller layer.
/// </summary>
public interface IQueueTransport
{
    /// <summary>Peer address, for logs.</summary>
    string RemoteEndPoint { get; }

    /// <summary>
    /// Closes the connection (controller reset, shutdown, keep-alive expiry, controller destroyed).
    /// Thread-safe and idempotent; outstanding commands are dropped.
    /// </summary>
    void Abort(string reason);

    /// <summary>
    /// The controller accepted the Fabrics Connect that made this queue <paramref name="queueId"/>: from now on the
    /// controller's keep-alive timer watches the connection, and completions the transport makes itself carry this
    /// SQID. Called on the thread executing the Connect. Transports that do not need it ignore it.
    /// </summary>
    void OnQueueConnected(ushort queueId)
    {
    }

    /// <summary>
    /// Largest data a command capsule may carry in-capsule on this transport; the controller advertises IOCCSZ =
    /// (64 + this) / 16 from it, so what Identify says is what the transport accepts. 0 on a transport without
    /// capsules (the field is reserved there).
    /// </summary>
    int InCapsuleDataLength => 0;
}

/// <summary>
/// The NVMe side of one queue: created by <see cref="IQueueHandlerFactory"/> when a connection completes ICReq,
/// disposed when the connection closes. It sees every capsule, starting with Fabrics Connect.
/// </summary>
/// <remarks>
/// Contract with the transport:
/// <list type="bullet">
/// <item>The transport derives the data direction from the opcode (bit 0 host-to-controller, bit 1
/// controller-to-host; for Fabrics commands FCTYPE bit 0) and the length from SGL1. It validates the SGL form and
/// refuses lengths above <see cref="MaxDataLength"/> itself with Invalid Field in Command, as for MDTS (no data is
/// buffered for them), and opcodes that would move data both ways with Invalid Opcode.</item>
/// <item><see cref="ExecuteAsync"/> is called in the order capsules arrive, after all host-to-controller data is
/// in <c>data</c>. The handler may complete synchronously (keeping per-queue order, as zone writes need) or
/// asynchronously (reads, Asynchronous Event Requests that wait for an event).</item>
/// <item>For controller-to-host commands <c>data</c> has exactly the SGL length; on success the handler has written
/// every byte of it and the transport sends it all as C2HData before the response. On error no data is sent.</item>
/// <item>Host-to-controller data is valid only until <see cref="ExecuteAsync"/> returns: the transport may pass
/// in-capsule data where it was received, and that buffer moves on afterwards. A handler that completes later
/// (a timing model, an injected delay) must consume or copy the data before it returns. Controller-to-host
/// <c>data</c> stays valid until the returned task completes.</item>
/// <item>The returned CQE is sent as is (the handler fills CID, SQID, SQHD, status and result).</item>
/// <item>The transport never lets more than <see cref="QueueDepth"/> commands be outstanding; it may hold a command
/// whose data it has to buffer (R2T writes, reads) until earlier commands release theirs, so ExecuteAsync can be
/// called later than the capsule arrived, but never out of order.</item>
/// </list>
/// </remarks>
public interface IQueueHandler : IDisposable
{
    /// <summary>Largest data length in bytes a single command on this queue may carry right now.</summary>
    int MaxDataLength { get; }

    /// <summary>
    /// Most commands the host may have outstanding on this queue right now: SQSIZE + 1 from the Fabrics Connect that
    /// created the queue, and 1 before that (the Connect itself). A command is outstanding from its capsule until its
    /// response has been handed to the socket. The transport treats a capsule beyond this as a fatal transport error.
    /// </summary>
    int QueueDepth { get; }

    /// <summary>Executes one command.</summary>
    ValueTask<CompletionQueueEntry> ExecuteAsync(SubmissionQueueEntry command, Memory<byte> data);
}

/// <summary>Creates the NVMe side of a new connection.</summary>
public interface IQueueHandlerFactory
{
    /// <summary>Called once per connection after ICReq/ICResp.</summary>
    IQueueHandler CreateQueueHandler(IQueueTransport transport);
}
