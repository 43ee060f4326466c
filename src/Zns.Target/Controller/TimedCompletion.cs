using System.Threading.Tasks.Sources;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Core.Timing;

namespace Zns.Target.Controller;

/// <summary>
/// A completion held back until the timing model says the command is done: the command has already executed,
/// its CQE waits in the <see cref="CompletionScheduler"/> and is released to the awaiting transport at its due
/// time. Reusable, so a delayed completion costs no allocation once the pool is warm.
/// </summary>
internal sealed class TimedCompletion(IoCommandHandler owner) : IValueTaskSource<CompletionQueueEntry>, IThreadPoolWorkItem
{
    private ManualResetValueTaskSourceCore<CompletionQueueEntry> _core;
    private CompletionQueueEntry _cqe;
    private uint _nsid;
    private byte _opcode;
    private long _arrival;

    /// <summary>Holds <paramref name="cqe"/> until <paramref name="due"/>; the latency metric counts from <paramref name="arrival"/> to then.</summary>
    public ValueTask<CompletionQueueEntry> Start(in CompletionQueueEntry cqe, long due, uint nsid, byte opcode, long arrival)
    {
        _cqe = cqe;
        _nsid = nsid;
        _opcode = opcode;
        _arrival = arrival;
        short version = _core.Version;
        CompletionScheduler.Shared.Schedule(due, this);
        return new ValueTask<CompletionQueueEntry>(this, version);
    }

    void IThreadPoolWorkItem.Execute()
    {
        // Recorded before the result is set: after it, the transport may reuse this operation.
        owner.Metrics.RecordLatency(_nsid, _opcode, _arrival);
        _core.SetResult(_cqe);
    }

    public CompletionQueueEntry GetResult(short token)
    {
        CompletionQueueEntry result = _core.GetResult(token);
        _core.Reset();
        owner.Return(this);
        return result;
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
