using System.Runtime.CompilerServices;
using Zns.Nvme;
using Zns.Target.Controller;

namespace Zns.Target.Execution;

/// <summary>
/// A transport's record of one command while the controller executes it (an NVMe/TCP command context, a PCIe
/// command slot): what <see cref="CommandExecutor"/> needs to hand the completion back, however late it comes.
/// </summary>
/// <remarks>Pooled by the transport and reused; awaiting a later completion allocates nothing.</remarks>
public abstract class ExecutingCommand
{
    private readonly Action _completedLater;
    private ConfiguredValueTaskAwaitable<CompletionQueueEntry>.ConfiguredValueTaskAwaiter _awaiter;
    private CommandExecutor? _executor;
    private IQueueHandler? _queue;

    protected ExecutingCommand()
    {
        _completedLater = OnCompletedLater;
    }

    /// <summary>The command as the host submitted it.</summary>
    public SubmissionQueueEntry Command;

    /// <summary>
    /// Called once per command with its completion: <paramref name="synchronously"/> on the thread that called
    /// <see cref="CommandExecutor.Execute"/>, before it returns; otherwise on whichever thread completed it.
    /// </summary>
    protected internal abstract void Complete(in CompletionQueueEntry cqe, bool synchronously);

    /// <summary>
    /// The handler returned: borrowed host-to-controller data has been consumed or detached and the transport may
    /// reuse the buffer now. Called before <see cref="Complete"/> of a command that completes synchronously.
    /// </summary>
    protected internal virtual void HostDataReleased()
    {
    }

    internal void AwaitCompletion(CommandExecutor executor, IQueueHandler queue, ValueTask<CompletionQueueEntry> pending)
    {
        _executor = executor;
        _queue = queue;
        _awaiter = pending.ConfigureAwait(false).GetAwaiter();
        _awaiter.UnsafeOnCompleted(_completedLater);
    }

    private void OnCompletedLater()
    {
        var awaiter = _awaiter;
        CommandExecutor executor = _executor!;
        IQueueHandler queue = _queue!;
        _awaiter = default;
        _executor = null;
        _queue = null;
        executor.CompleteLater(this, queue, awaiter);
    }
}
