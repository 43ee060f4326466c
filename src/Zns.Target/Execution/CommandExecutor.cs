using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Zns.Nvme;
using Zns.Target.Controller;

namespace Zns.Target.Execution;

/// <summary>
/// Runs commands on a queue's <see cref="IQueueHandler"/> for every transport alike: it calls the handler, hands a
/// completion that comes later back to the transport's <see cref="ExecutingCommand"/>, and applies the one exception
/// policy: an exception the handler did not turn into a status is an Internal Error (with DNR: a defect does not go
/// away on retry) for that command alone, logged once, and the queue, its transport and the process go on.
/// </summary>
public sealed class CommandExecutor(ILogger logger, string name)
{
    /// <summary>Executes <paramref name="command"/> with <paramref name="data"/>; completes it now or later.</summary>
    public void Execute(IQueueHandler queue, ExecutingCommand command, HostData data)
    {
        ValueTask<CompletionQueueEntry> pending;
        try
        {
            pending = queue.ExecuteAsync(in command.Command, data);
        }
        catch (Exception e)
        {
            command.HostDataReleased();
            command.Complete(Failed(in command.Command, queue.QueueId, e), synchronously: true);
            return;
        }
        command.HostDataReleased();
        if (!pending.IsCompleted)
        {
            command.AwaitCompletion(this, queue, pending);
            return;
        }
        CompletionQueueEntry cqe;
        try
        {
            cqe = pending.Result;
        }
        catch (Exception e)
        {
            cqe = Failed(in command.Command, queue.QueueId, e);
        }
        command.Complete(in cqe, synchronously: true);
    }

    /// <summary>Completes <paramref name="command"/> with a status the transport found (a bad PRP, an SGL error).</summary>
    public static void Refuse(IQueueHandler queue, ExecutingCommand command, NvmeStatus status)
    {
        command.HostDataReleased();
        CompletionQueueEntry cqe = queue.Refuse(in command.Command, status);
        command.Complete(in cqe, synchronously: true);
    }

    internal void CompleteLater(ExecutingCommand command, IQueueHandler queue, ConfiguredValueTaskAwaitable<CompletionQueueEntry>.ConfiguredValueTaskAwaiter awaiter)
    {
        CompletionQueueEntry cqe;
        try
        {
            cqe = awaiter.GetResult();
        }
        catch (Exception e)
        {
            cqe = Failed(in command.Command, queue.QueueId, e);
        }
        command.Complete(in cqe, synchronously: false);
    }

    private CompletionQueueEntry Failed(in SubmissionQueueEntry sqe, ushort queueId, Exception e)
    {
        TargetLog.CommandException(logger, e, name, sqe.Opcode, sqe.CommandId, queueId);
        return new CompletionQueueEntry
        {
            CommandId = sqe.CommandId,
            SqId = queueId,
            Status = NvmeStatus.InternalError.WithDnr(),
        };
    }
}
