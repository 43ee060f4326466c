using System.Threading.Tasks.Sources;
using Zns.Core.Nvme;
using Zns.Core.Timing;
using Zns.Core.Zones;

namespace Zns.Target.Nvme;

/// <summary>
/// A reusable asynchronous Read: queued to the thread pool as a work item and awaited through a
/// <see cref="ValueTask{T}"/> backed by this object, so a read costs no allocation once the pool is warm.
/// </summary>
internal sealed class ReadOperation(IoCommandHandler owner) : IValueTaskSource<CompletionQueueEntry>, IThreadPoolWorkItem
{
    private ManualResetValueTaskSourceCore<CompletionQueueEntry> _core;
    private ZonedNamespace? _namespace;
    private ulong _slba;
    private Memory<byte> _data;
    private CompletionQueueEntry _cqe;

    /// <summary>Reads now, or at <paramref name="due"/> (<see cref="CompletionScheduler.Now"/> clock) when that is later.</summary>
    public ValueTask<CompletionQueueEntry> Start(ZonedNamespace ns, ulong slba, Memory<byte> data, in CompletionQueueEntry cqe, long due = 0)
    {
        _namespace = ns;
        _slba = slba;
        _data = data;
        _cqe = cqe;
        short version = _core.Version;
        if (due > 0 && due > CompletionScheduler.Now)
        {
            CompletionScheduler.Shared.Schedule(due, this);
        }
        else
        {
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }
        return new ValueTask<CompletionQueueEntry>(this, version);
    }

    void IThreadPoolWorkItem.Execute()
    {
        CompletionQueueEntry cqe = _cqe;
        try
        {
            cqe.Status = _namespace!.Read(_slba, _data.Span);
            if (cqe.Status.IsSuccess)
            {
                owner.CountRead(_data.Length);
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or UnauthorizedAccessException)
        {
            cqe.Status = owner.InternalError(ex, IoOpcode.Read);
        }
        // Drop references before completing: the buffer belongs to the transport again once the CQE is out.
        _namespace = null;
        _data = default;
        _core.SetResult(cqe);
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
