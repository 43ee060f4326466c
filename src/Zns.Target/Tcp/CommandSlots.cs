namespace Zns.Target.Tcp;

/// <summary>
/// The command contexts of one queue: a pool that never holds more than the queue depth in use, and the lookup of
/// a context by its index, which is the transfer tag (TTAG) of its R2T. Used by the queue's loop only.
/// </summary>
internal sealed class CommandSlots(Action<CommandContext, bool> completed)
{
    private readonly List<CommandContext> _all = new();
    private readonly Stack<CommandContext> _free = new();
    private int _inUse;

    /// <summary>Every context created so far.</summary>
    public IReadOnlyList<CommandContext> All => _all;

    /// <summary>A free context, or null when <paramref name="queueDepth"/> commands are outstanding already.</summary>
    public CommandContext? Acquire(int queueDepth)
    {
        if (_inUse >= queueDepth)
            return null;
        if (!_free.TryPop(out var ctx))
        {
            // queueDepth ≤ 65536 (SQSIZE ≤ CAP.MQES ≤ FFFFh), so every context index fits a transfer tag.
            ctx = new CommandContext(_all.Count, completed);
            _all.Add(ctx);
        }
        _inUse++;
        return ctx;
    }

    /// <summary>Returns a context whose command is finished (its response written or dropped).</summary>
    public void Release(CommandContext ctx)
    {
        ctx.Reset();
        _free.Push(ctx);
        _inUse--;
    }

    /// <summary>The context an H2CData PDU's TTAG names, or null for a tag never handed out.</summary>
    public CommandContext? FindByTransferTag(ushort transferTag) =>
        transferTag < _all.Count ? _all[transferTag] : null;
}
