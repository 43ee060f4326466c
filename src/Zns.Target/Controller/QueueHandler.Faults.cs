using Zns.Nvme;
using Zns.Protocol;

namespace Zns.Target.Controller;

/// <summary>The dispatch path taken only while a fault is armed (<see cref="Zns.Core.Faults.FaultPlan.Armed"/>).</summary>
internal sealed partial class QueueHandler
{
    private ValueTask<CompletionQueueEntry> ExecuteWithFaults(in SubmissionQueueEntry command, Memory<byte> data, CompletionQueueEntry cqe, NvmeController controller)
    {
        if (controller.IsFatal)
        {
            // The Linux host reads CSTS only around enable and shutdown, so a fatal controller shows itself to it
            // through commands that never complete (or connections that drop).
            return controller.Stall(cqe);
        }
        return _qid == 0 ? _admin!.Execute(in command, data, cqe) : _io!.ExecuteWithFaults(in command, data, cqe);
    }
}
