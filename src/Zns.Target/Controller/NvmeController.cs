using Microsoft.Extensions.Logging;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Nvme.Layouts;
using static Zns.Nvme.Layouts.ControllerProperties;

namespace Zns.Target.Controller;

/// <summary>
/// One controller of the dynamic controller model: created by an admin-queue Connect, joined by I/O-queue
/// Connects, destroyed when its admin queue closes, on keep-alive expiry, or when the target stops.
/// </summary>
/// <remarks>
/// Admin commands arrive one at a time on the admin queue, but I/O queues, the keep-alive timer and namespace
/// notifications run on other threads, so register and queue state is guarded by <see cref="_lock"/>. The I/O
/// hot path reads only <see cref="IsReady"/> (volatile) and <see cref="Touch"/>es the keep-alive stamp.
/// </remarks>
internal sealed partial class NvmeController
{
    /// <summary>Async Event Configuration bits this controller accepts: SMART warnings 7:0 (never raised) and bit 8.</summary>
    private const uint SupportedAsyncEvents = 0xFF | IdentifyControllerLayout.OaesNamespaceAttribute | IdentifyControllerLayout.OaesZoneDescriptorChanged;

    /// <summary>AER completion DW0 for "namespace attribute changed": type 2 (notice), info 00h, log page 04h.</summary>
    internal const uint NamespaceChangedEvent = 0x2 | (0x00 << 8) | (LogPageId.ChangedNamespaceList << 16);

    private readonly Lock _lock = new();
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly SubmissionQueue?[] _ioQueues;
    private readonly Queue<PendingAer> _pendingAers = new();
    private readonly Queue<uint> _pendingEvents = new();
    private readonly SortedSet<uint> _changedNamespaces = [];
    private bool _changedNamespacesOverflow;
    private bool _namespaceNoticeMasked;

    private volatile bool _ready;
    private bool _destroyed;

    private uint _katoMs;
    private ITimer? _keepAliveTimer;
    private long _lastActivity;

    public NvmeController(NvmeSubsystem subsystem, ushort cntlid, string hostNqn, Guid hostId, uint katoMs, IQueueTransport adminTransport)
    {
        Subsystem = subsystem;
        Cntlid = cntlid;
        HostNqn = hostNqn;
        HostId = hostId;
        AdminTransport = adminTransport;
        _memoryBased = adminTransport.Traits.IsMemoryBased;
        _katoMs = katoMs;
        _logger = subsystem.Target.Logger;
        _time = subsystem.Target.Options.TimeProvider;
        MaxIoQueues = subsystem.IsDiscovery ? 0 : subsystem.Target.Options.MaxIoQueues;
        _ioQueues = new SubmissionQueue?[MaxIoQueues];
        ResetFeatures();
        _timestampSetAt = _time.GetTimestamp();
    }

    public NvmeSubsystem Subsystem { get; }
    public ushort Cntlid { get; }
    public string HostNqn { get; }
    public Guid HostId { get; }
    /// <summary>The transport of the admin queue: what the controller is reached through (its traits, its memory queues).</summary>
    public IQueueTransport AdminTransport { get; }

    private readonly bool _memoryBased;

    public TransportTraits Traits => AdminTransport.Traits;
    public TargetOptions Options => Subsystem.Target.Options;
    public int MaxIoQueues { get; }

    /// <summary>CC.EN = 1 and CSTS.RDY = 1: non-fabrics commands may execute.</summary>
    public bool IsReady => _ready;

    public bool IsDestroyed
    {
        get { lock (_lock) { return _destroyed; } }
    }

    public ulong CapValue => BuildCap((ushort)(Options.MaxQueueEntries - 1)) | Traits.CapabilityBits;

    // Feature values (Set/Get Features), reset with the controller.
    public uint AsyncEventConfig { get; private set; }
    public bool VolatileWriteCacheEnabled { get; private set; }
    public ushort OverTemperatureThreshold { get; private set; }
    public ushort UnderTemperatureThreshold { get; private set; }

    public uint KeepAliveTimeoutMs
    {
        get { lock (_lock) { return _katoMs; } }
    }

    /// <summary>Records activity for the keep-alive timer (any command counts, as nvmet does).</summary>
    public void Touch() => Volatile.Write(ref _lastActivity, _time.GetTimestamp());

    // ---- Queues ----------------------------------------------------------------------------------------------

    /// <summary>Registers an I/O queue. Command Sequence Error if the QID is already connected.</summary>
    public NvmeStatus AttachIoQueue(ushort qid, SubmissionQueue queue)
    {
        lock (_lock)
        {
            if (_destroyed)
            {
                return NvmeStatus.ConnectInvalidParameters.WithDnr();
            }
            if (!_ready)
            {
                // NVMe-oF: an I/O queue Connect to a controller that is not enabled is a Command Sequence Error.
                return NvmeStatus.CommandSequenceError.WithDnr();
            }
            if (_ioQueues[qid - 1] is not null)
            {
                return NvmeStatus.CommandSequenceError.WithDnr();
            }
            _ioQueues[qid - 1] = queue;
            return NvmeStatus.Success;
        }
    }

    /// <summary>An I/O submission queue with this QID exists.</summary>
    public bool HasIoQueue(ushort qid)
    {
        lock (_lock)
        {
            return qid - 1 < _ioQueues.Length && _ioQueues[qid - 1] is not null;
        }
    }

    public void DetachIoQueue(ushort qid, SubmissionQueue queue)
    {
        lock (_lock)
        {
            if (qid - 1 < _ioQueues.Length && _ioQueues[qid - 1] == queue)
            {
                _ioQueues[qid - 1] = null;
            }
        }
    }

    private List<SubmissionQueue> DetachIoQueuesLocked()
    {
        var list = new List<SubmissionQueue>();
        for (int i = 0; i < _ioQueues.Length; i++)
        {
            if (_ioQueues[i] is { } q)
            {
                list.Add(q);
                _ioQueues[i] = null;
            }
        }
        return list;
    }

    private static void AbortAll(List<SubmissionQueue>? queues, string reason)
    {
        if (queues is null)
        {
            return;
        }
        foreach (SubmissionQueue q in queues)
        {
            q.Abort(reason);
        }
    }

    /// <summary>
    /// Tears the controller down: stops the keep-alive timer, drops pending AERs, forgets the controller and
    /// aborts the connections of all its queues (the admin queue included). Idempotent.
    /// </summary>
    public void Destroy(string reason)
    {
        List<SubmissionQueue> queues;
        PendingAer[] aers;
        lock (_lock)
        {
            if (_destroyed)
            {
                return;
            }
            _destroyed = true;
            _ready = false;
            _keepAliveTimer?.Dispose();
            _keepAliveTimer = null;
            queues = DetachIoQueuesLocked();
            aers = [.. _pendingAers];
            _pendingAers.Clear();
        }
        Subsystem.RemoveController(this);
        ReleaseFatal();
        _logger.ControllerDestroyed(Cntlid, Subsystem.Nqn, reason);
        // The admin connection is gone or about to be; completing the parked AERs only releases their awaiters,
        // the transport drops the responses.
        foreach (PendingAer aer in aers)
        {
            aer.Completion.TrySetResult(aer.Complete(NvmeStatus.CommandInterruptedOrAbortedSqDeletion, 0));
        }
        AbortAll(queues, reason);
        AdminTransport.Abort(reason);
    }

    // ---- Keep alive ------------------------------------------------------------------------------------------

    /// <summary>Starts the keep-alive timer (at admin Connect, as nvmet does); KATO 0 disables it.</summary>
    public void StartKeepAlive()
    {
        Touch();
        lock (_lock)
        {
            RearmKeepAliveLocked();
        }
    }

    private void RearmKeepAliveLocked()
    {
        if (_destroyed)
        {
            return;
        }
        if (_katoMs == 0)
        {
            _keepAliveTimer?.Dispose();
            _keepAliveTimer = null;
            return;
        }
        // KATO is a 32-bit millisecond count, but timers take at most 2^32 - 2 ms (FFFFFFFFh means "infinite" to
        // them); clamping changes the deadline by one millisecond in 49.7 days.
        TimeSpan due = TimeSpan.FromMilliseconds(Math.Min(_katoMs, uint.MaxValue - 1));
        if (_keepAliveTimer is null)
        {
            _keepAliveTimer = _time.CreateTimer(static s => ((NvmeController)s!).OnKeepAliveTimer(), this, due, Timeout.InfiniteTimeSpan);
        }
        else
        {
            _keepAliveTimer.Change(due, Timeout.InfiniteTimeSpan);
        }
    }

    private void OnKeepAliveTimer()
    {
        TimeSpan elapsed = _time.GetElapsedTime(Volatile.Read(ref _lastActivity));
        uint kato;
        lock (_lock)
        {
            if (_destroyed || _keepAliveTimer is null)
            {
                return;
            }
            kato = _katoMs;
            TimeSpan limit = TimeSpan.FromMilliseconds(kato);
            if (_fatal)
            {
                // A controller with injected fatal status is hung: it times nothing out itself, so the host's own
                // Keep Alive timeout is what detects it (the connections it then closes end this controller).
                _keepAliveTimer.Change(limit, Timeout.InfiniteTimeSpan);
                return;
            }
            if (elapsed < limit)
            {
                // Traffic arrived since the timer was armed: sleep only for the rest of the window.
                _keepAliveTimer.Change(limit - elapsed, Timeout.InfiniteTimeSpan);
                return;
            }
        }
        _logger.KeepAliveExpired(Cntlid, HostNqn, (long)elapsed.TotalMilliseconds, kato);
        Destroy("keep-alive timeout");
    }

    /// <summary>Keep Alive command: Keep Alive Timeout Invalid when KATO is 0 (nvmet; the host set no timer).</summary>
    public NvmeStatus KeepAlive()
    {
        lock (_lock)
        {
            if (_katoMs == 0)
            {
                return NvmeStatus.KeepAliveTimeoutInvalid.WithDnr();
            }
        }
        Touch();
        return NvmeStatus.Success;
    }

    public void SetKeepAliveTimeout(uint ms)
    {
        Touch();
        lock (_lock)
        {
            _katoMs = ms;
            RearmKeepAliveLocked();
        }
    }

    // ---- Features --------------------------------------------------------------------------------------------

    /// <summary>
    /// The namespace an NSID names for this controller: with CC.CSS = NVM command set only, zoned namespaces are
    /// not attached (QEMU's nvme_start_ctrl / nvme_csi_supported), so such a host never sees them.
    /// </summary>
    /// <remarks>
    /// A namespace whose metadata travels in a buffer of its own (MPTR) is not attached over a fabric: NVMe over
    /// Fabrics carries metadata only inside an extended LBA, and a fabric command has no MPTR.
    /// </remarks>
    internal NamespaceInfo? AttachedNamespace(uint nsid) =>
        Subsystem.GetNamespace(nsid) is { } ns && (ns.Csi != Csi.Zoned || !NvmOnly)
            && (_memoryBased || !ns.DataFormat.Metadata.HasMetadata || ns.DataFormat.Metadata.Extended) ? ns : null;

    /// <summary>What the data length of an I/O command depends on in namespace <paramref name="nsid"/>; null when none is attached.</summary>
    internal NamespaceDataFormat? DataFormat(uint nsid) => AttachedNamespace(nsid)?.DataFormat;

    /// <summary>CC.CSS selected the NVM command set only. Read on every I/O command, so kept apart from CC and read without the lock.</summary>
    internal bool NvmOnly => _nvmOnly;

    private volatile bool _nvmOnly;

    // Set once an I/O queue is created (Connect, Create I/O SQ) and until the controller is reset: Number of Queues
    // may then no longer be set (QEMU's qs_created).
    private bool _ioQueuesCreated;

    internal bool IoQueuesCreated
    {
        get { lock (_lock) { return _ioQueuesCreated; } }
    }

    /// <summary>An I/O queue was made (a Connect, or a Create I/O Submission Queue the transport accepted).</summary>
    internal void OnIoQueueCreated()
    {
        lock (_lock)
        {
            _ioQueuesCreated = true;
        }
    }

    // Timestamp feature (FID 0Eh): milliseconds since the epoch as the host last set it, running on from then.
    private ulong _hostTimestamp;
    private long _timestampSetAt;

    internal void SetTimestamp(ulong milliseconds)
    {
        lock (_lock)
        {
            _hostTimestamp = milliseconds & 0xFFFF_FFFF_FFFF;
            _timestampSetAt = _time.GetTimestamp();
        }
    }

    /// <summary>Timestamp data: bits 47:0 the timestamp, bits 51:49 origin (1 = set by a host, 0 = since reset).</summary>
    internal ulong GetTimestamp()
    {
        lock (_lock)
        {
            ulong elapsed = (ulong)_time.GetElapsedTime(_timestampSetAt).TotalMilliseconds;
            ulong origin = _hostTimestamp != 0 ? 1UL : 0UL;
            return ((_hostTimestamp + elapsed) & 0xFFFF_FFFF_FFFF) | (origin << 49);
        }
    }

    private void ResetFeatures()
    {
        AsyncEventConfig = 0;
        VolatileWriteCacheEnabled = true;
        OverTemperatureThreshold = IdentifyControllerLayout.WarningTemperature;
        UnderTemperatureThreshold = 0;
        ResetHostBehavior();
        _ioQueuesCreated = false;
    }

    public NvmeStatus SetAsyncEventConfig(uint value)
    {
        if ((value & ~SupportedAsyncEvents) != 0)
        {
            return NvmeStatus.InvalidField.WithDnr();
        }
        lock (_lock)
        {
            AsyncEventConfig = value;
        }
        return NvmeStatus.Success;
    }

    public void SetVolatileWriteCache(bool enabled) => VolatileWriteCacheEnabled = enabled;

    public void SetTemperatureThreshold(bool under, ushort kelvin)
    {
        if (under)
        {
            UnderTemperatureThreshold = kelvin;
        }
        else
        {
            OverTemperatureThreshold = kelvin;
        }
    }

    // ---- Asynchronous events ---------------------------------------------------------------------------------

    /// <summary>
    /// Parks an AER until an event occurs. At most AERL+1 may be outstanding; one more gets Asynchronous Event
    /// Request Limit Exceeded. A queued event completes it at once.
    /// </summary>
    public ValueTask<CompletionQueueEntry> QueueAsyncEventRequest(in CompletionQueueEntry template)
    {
        lock (_lock)
        {
            if (_pendingEvents.TryDequeue(out uint result))
            {
                CompletionQueueEntry cqe = template;
                cqe.Result = result;
                return new ValueTask<CompletionQueueEntry>(cqe);
            }
            if (_pendingAers.Count > Options.AsyncEventRequestLimit)
            {
                CompletionQueueEntry cqe = template;
                cqe.Status = NvmeStatus.AsyncEventRequestLimitExceeded.WithDnr();
                return new ValueTask<CompletionQueueEntry>(cqe);
            }
            var aer = new PendingAer(template);
            _pendingAers.Enqueue(aer);
            return new ValueTask<CompletionQueueEntry>(aer.Completion.Task);
        }
    }

    public void OnNamespaceChanged(uint nsid)
    {
        PendingAer? aer = null;
        lock (_lock)
        {
            if (_destroyed)
            {
                return;
            }
            if (_changedNamespaces.Count >= NamespaceListLayout.MaxEntries)
            {
                _changedNamespacesOverflow = true;
            }
            else
            {
                _changedNamespaces.Add(nsid);
            }
            // Further notices of this type stay masked until the host reads log page 04h without RAE.
            aer = RaiseNoticeLocked(IdentifyControllerLayout.OaesNamespaceAttribute, ref _namespaceNoticeMasked, NamespaceChangedEvent);
        }
        aer?.Completion.TrySetResult(aer.Complete(NvmeStatus.Success, NamespaceChangedEvent));
    }

    /// <summary>
    /// A notice the host enabled with Asynchronous Event Configuration bit <paramref name="enableBit"/>: masked
    /// after it is raised until its log is read; completes a parked AER (returned, to be completed outside the lock)
    /// or waits for the next one.
    /// </summary>
    private PendingAer? RaiseNoticeLocked(uint enableBit, ref bool masked, uint eventResult)
    {
        if ((AsyncEventConfig & enableBit) == 0 || masked)
        {
            return null;
        }
        masked = true;
        if (_pendingAers.TryDequeue(out PendingAer? aer))
        {
            return aer;
        }
        _pendingEvents.Enqueue(eventResult);
        return null;
    }

    /// <summary>Changed Namespace List (LID 04h): the NSIDs changed since the last read, or FFFFFFFFh on overflow.</summary>
    public uint[] ReadChangedNamespaces(bool retainAsyncEvent)
    {
        lock (_lock)
        {
            uint[] ids = _changedNamespacesOverflow ? [uint.MaxValue] : [.. _changedNamespaces];
            if (!retainAsyncEvent)
            {
                _changedNamespaces.Clear();
                _changedNamespacesOverflow = false;
                _namespaceNoticeMasked = false;
            }
            return ids;
        }
    }

    private sealed class PendingAer(CompletionQueueEntry template)
    {
        public TaskCompletionSource<CompletionQueueEntry> Completion { get; } =
            new(TaskCreationOptions.RunContinuationsAsynchronously);

        public CompletionQueueEntry Complete(NvmeStatus status, uint result)
        {
            CompletionQueueEntry cqe = template;
            cqe.Status = status;
            cqe.Result = result;
            return cqe;
        }
    }
}
