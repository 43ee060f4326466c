using Microsoft.Extensions.Logging;
using Zns.Nvme;
using Zns.Target.Controller;
using Zns.Target.Execution;

namespace Zns.Target.Tcp;

/// <summary>
/// Runs a queue's commands through the <see cref="CommandExecutor"/> strictly in capsule arrival order, once their
/// data is complete, and hands each completion to the response path on the queue's loop.
/// </summary>
/// <remarks>
/// A command the controller completes synchronously (reads and writes on RAM or file backstores, zone management,
/// admin) is answered within the same call, on the thread that received it. One that completes later (an
/// Asynchronous Event Request, a delayed completion) is queued here by whichever thread completes it, and the
/// queue's loop is woken to write its response, so the output keeps a single writer.
/// </remarks>
internal sealed class CommandDispatcher(
    Action<CommandContext> respond, Action wakeLoop, Func<bool> mayExecute, ILogger logger, string remoteEndPoint)
{
    private readonly CommandExecutor _executor = new(logger, remoteEndPoint);
    private readonly Queue<CommandContext> _arrivalOrder = new();
    private readonly Queue<CommandContext> _completedLater = new();
    private readonly Lock _completedLock = new();
    private bool _closed;

    /// <summary>The controller side, from ICReq on.</summary>
    public IQueueHandler? Handler { get; set; }

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
    public void RespondWithStatus(CommandContext ctx, NvmeStatus status) => CommandExecutor.Refuse(Handler!, ctx, status);

    /// <summary>A command's completion, from <see cref="CommandContext.Complete"/>.</summary>
    public void OnCompleted(CommandContext ctx, bool synchronously)
    {
        if (synchronously)
        {
            // On the loop, inside Execute or RespondWithStatus.
            respond(ctx);
            return;
        }
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
        ctx.ReturnBuffer();
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
            respond(ctx);
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
        // In-capsule data that executes where it was received is lent: the receive buffer moves on after the call.
        HostData data = ctx.BorrowsReceiveBuffer ? HostData.Borrowed(ctx.Data) : HostData.Owned(ctx.Data);
        _executor.Execute(Handler!, ctx, data);
    }
}
