namespace Zns.Target.Tcp;

/// <summary>
/// The data bytes one connection may hold for commands whose buffer the target allocates from the SGL length (R2T
/// writes and reads), <see cref="TargetTransportOptions.MaxBufferedDataBytes"/>. Commands wait for it in arrival
/// order; a command larger than the whole budget proceeds once nothing else is buffered. Used by the queue's loop
/// only.
/// </summary>
/// <remarks>
/// Cannot deadlock: every command holding budget arrived before every waiting one and needs nothing from later
/// commands (its data comes from the host after its R2T, or it is executing or being sent), so releases follow.
/// </remarks>
internal sealed class DataBudget(long limit)
{
    private readonly Queue<CommandContext> _waiting = new();
    private long _held;

    /// <summary>Commands queued for a buffer.</summary>
    public bool HasWaiters => _waiting.Count > 0;

    /// <summary>Queues a command whose <see cref="CommandContext.Length"/> is set, for a buffer.</summary>
    public void Wait(CommandContext ctx)
    {
        ctx.State = CommandState.WaitingForBuffer;
        _waiting.Enqueue(ctx);
    }

    /// <summary>The oldest waiting command once it fits, with its buffer allocated and its bytes counted; else null.</summary>
    public CommandContext? TryGrantNext()
    {
        if (!_waiting.TryPeek(out var ctx))
            return null;
        if (_held > 0 && _held + ctx.Length > limit)
            return null;
        _waiting.Dequeue();
        _held += ctx.Length;
        ctx.BudgetedBytes = ctx.Length;
        ctx.SetBuffer(ctx.Length);
        return ctx;
    }

    /// <summary>Gives back what a finished command held.</summary>
    public void Release(CommandContext ctx) => _held -= ctx.BudgetedBytes;
}
