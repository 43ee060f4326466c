using System.Threading.Tasks.Sources;
using Zns.Core.Nvme;
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
    private uint _nsid;
    private long _arrival;
    private Memory<byte> _data;
    private CompletionQueueEntry _cqe;

    public ValueTask<CompletionQueueEntry> Start(ZonedNamespace ns, uint nsid, ulong slba, Memory<byte> data, in CompletionQueueEntry cqe, long arrival)
    {
        _namespace = ns;
        _nsid = nsid;
        _arrival = arrival;
        _slba = slba;
        _data = data;
        _cqe = cqe;
        short version = _core.Version;
        ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        return new ValueTask<CompletionQueueEntry>(this, version);
    }

    void IThreadPoolWorkItem.Execute()
    {
        CompletionQueueEntry cqe = _cqe;
        try
        {
            cqe.Status = _namespace!.Read(_slba, _data.Span);
            owner.CompleteRead(_nsid, _slba, _data.Length, cqe.Status, _arrival);
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
