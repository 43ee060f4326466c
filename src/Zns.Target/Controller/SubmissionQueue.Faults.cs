using Zns.Nvme;
using Zns.Target.Execution;

namespace Zns.Target.Controller;

/// <summary>The dispatch path taken only while a fault is armed (<see cref="Zns.Core.Faults.FaultPlan.Armed"/>).</summary>
public sealed partial class SubmissionQueue
{
    private ValueTask<CompletionQueueEntry> ExecuteWithFaults(in SubmissionQueueEntry command, HostData data, CompletionQueueEntry cqe, NvmeController controller)
    {
        if (controller.IsFatal)
        {
            // The Linux host reads CSTS only around enable and shutdown, so a fatal controller shows itself to it
            // through commands that never complete (or connections that drop).
            return controller.Stall(cqe);
        }
        return _admin is not null ? _admin.Execute(in command, data, cqe) : _io!.ExecuteWithFaults(in command, data, cqe);
    }
}
