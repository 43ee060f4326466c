namespace Zns.Target.Controller;

/// <summary>
/// The transport side of one NVMe queue (an NVMe/TCP connection, a PCIe queue pair), as the controller sees it:
/// what the transport is, and the few things the controller asks of it. A transport never patches the controller's
/// answers and keeps no copy of controller state.
/// </summary>
public interface IQueueTransport
{
    /// <summary>Peer address or queue name, for logs.</summary>
    string RemoteEndPoint { get; }

    /// <summary>What the transport is: the controller's Identify and CAP follow from it.</summary>
    TransportTraits Traits { get; }

    /// <summary>
    /// The queue operations of a memory-based transport (create/delete I/O queues, doorbell buffer, interrupt
    /// features), which the admin command handler calls after parsing the command; null on a fabric, where those
    /// opcodes are Invalid Opcode.
    /// </summary>
    IMemoryQueueOperations? MemoryQueues => null;

    /// <summary>
    /// Stops the queue (controller reset, shutdown, keep-alive expiry, controller destroyed): a fabric closes the
    /// connection, a memory-based transport stops fetching from it. Thread-safe and idempotent; outstanding commands
    /// are dropped.
    /// </summary>
    void Abort(string reason);

    /// <summary>
    /// The controller accepted the Fabrics Connect that made this queue <paramref name="queueId"/>: from now on the
    /// controller's keep-alive timer watches the connection, and completions carry this SQID. Called on the thread
    /// executing the Connect.
    /// </summary>
    void OnQueueConnected(ushort queueId)
    {
    }
}
