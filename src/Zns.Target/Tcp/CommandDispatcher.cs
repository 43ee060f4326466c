using Microsoft.Extensions.Logging;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Target.Controller;
using Zns.Nvme.Layouts;

namespace Zns.Target.Tcp;

/// <summary>
/// Executes a queue's commands on its <see cref="IQueueHandler"/> strictly in capsule arrival order, once their
/// data is complete, and hands each completion to the response path on the queue's loop.
/// </summary>
/// <remarks>
/// A command the handler completes synchronously (reads and writes on RAM or file backstores, zone management,
/// admin) is answered within the same call, on the thread that received it. One that completes later (an
/// Asynchronous Event Request, a delayed completion) is queued here by whichever thread completes it, and the
/// queue's loop is woken to write its response, so the output keeps a single writer.
/// </remarks>
internal sealed class CommandDispatcher(
    Action<CommandContext> respond, Action wakeLoop, Func<bool> mayExecute, ILogger logger, string remoteEndPoint)
{
    private readonly Queue<CommandContext> _arrivalOrder = new();
    private readonly Queue<CommandContext> _completedLater = new();
    private readonly Lock _completedLock = new();
    private bool _closed;

    /// <summary>The NVMe side, from ICReq on.</summary>
    public IQueueHandler? Handler { get; set; }

    /// <summary>SQID for completions the transport makes itself, known once the controller connected the queue.</summary>
    public ushort QueueId { get; set; }

    /// <summary>No command is waiting to execute: one arriving now with its data runs at once.</summary>
    public bool IsIdle => _arrivalOrder.Count == 0 && mayExecute();

    /// <summary>Adds a command in arrival order; it executes when it is <see cref="CommandState.Ready"/> and first.</summary>
    public void Enqueue(CommandContext ctx) => _arrivalOrder.Enqueue(ctx);

    /// <summary>Executes the ready commands at the head of the arrival order. Returns how many ran. Loop only.</summary>
    public int RunReady()
    {
        int executed = 0;
        while (_arrivalOrder.TryPeek(out var ctx) && ctx.State == CommandState.Ready && mayExecute())
        {
            _arrivalOrder.Dequeue();
            Execute(ctx);
            executed++;
        }
        return executed;
    }

    /// <summary>Answers a command with a status of the transport's own (SGL errors, digest errors). Loop only.</summary>
    public void RespondWithStatus(CommandContext ctx, NvmeStatus status)
    {
        ctx.Response = new CompletionQueueEntry { CommandId = ctx.Command.CommandId, SqId = QueueId, Status = status };
        respond(ctx);
    }

    /// <summary>Writes the responses of commands completed on other threads. Returns how many. Loop only.</summary>
    public int DrainCompleted()
    {
        int drained = 0;
        while (true)
        {
            CommandContext? ctx;
            lock (_completedLock)
            {
                if (!_completedLater.TryDequeue(out ctx))
                    return drained;
            }
            var pending = ctx.Pending;
            ctx.Pending = default;
            Complete(ctx, pending);
            drained++;
        }
    }

    /// <summary>
    /// The connection closed: later completions only return their buffers. Returns the commands that completed but
    /// were never answered, for their buffers to be returned.
    /// </summary>
    public List<CommandContext> Close()
    {
        lock (_completedLock)
        {
            _closed = true;
            var unanswered = new List<CommandContext>(_completedLater);
            _completedLater.Clear();
            foreach (var ctx in unanswered)
                Consume(ctx);
            return unanswered;
        }
    }

    private void Execute(CommandContext ctx)
    {
        if (ctx.TransportStatus is { } transportStatus)
        {
            RespondWithStatus(ctx, transportStatus);
            return;
        }
        ctx.State = CommandState.Executing;
        ValueTask<CompletionQueueEntry> pending;
        try
        {
            pending = Handler!.ExecuteAsync(ctx.Command, ctx.Data);
        }
        catch (Exception e)
        {
            TransportLog.HandlerFailed(logger, remoteEndPoint, ctx.Command.Opcode, ctx.Command.CommandId, e);
            RespondWithStatus(ctx, NvmeStatus.InternalError.WithDnr());
            return;
        }
        if (ctx.BorrowsReceiveBuffer)
        {
            // The handler consumed the in-capsule data before returning; the receive buffer moves on after this.
            ctx.ReturnBuffer();
        }
        if (pending.IsCompleted)
        {
            Complete(ctx, pending);
        }
        else
        {
            ctx.Pending = pending;
            pending.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(ctx.ExecutionCompletedCallback);
        }
    }

    /// <summary>Called on the thread that completed an asynchronous command.</summary>
    public void OnCompletedLater(CommandContext ctx)
    {
        bool queued;
        lock (_completedLock)
        {
            queued = !_closed;
            if (queued)
                _completedLater.Enqueue(ctx);
        }
        if (queued)
        {
            wakeLoop();
            return;
        }
        // The connection is gone and nobody can be told; the buffer was not returned at close because the handler
        // could still write to it.
        Consume(ctx);
        ctx.ReturnBuffer();
    }

    private void Complete(CommandContext ctx, ValueTask<CompletionQueueEntry> completed)
    {
        CompletionQueueEntry cqe;
        try
        {
            cqe = completed.Result;
        }
        catch (Exception e)
        {
            TransportLog.HandlerFailed(logger, remoteEndPoint, ctx.Command.Opcode, ctx.Command.CommandId, e);
            cqe = new CompletionQueueEntry
            {
                CommandId = ctx.Command.CommandId,
                SqId = QueueId,
                Status = NvmeStatus.InternalError.WithDnr(),
            };
        }
        ctx.Response = cqe;
        respond(ctx);
    }

    private static void Consume(CommandContext ctx)
    {
        var pending = ctx.Pending;
        ctx.Pending = default;
        try { _ = pending.Result; } catch { /* the connection is gone; nobody can be told */ }
    }
}
