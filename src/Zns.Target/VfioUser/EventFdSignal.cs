using Zns.Core.Interop;
using Zns.Target.Pcie;

namespace Zns.Target.VfioUser;

/// <summary>An MSI-X vector signalled through the eventfd the client gave for it (SET_IRQS).</summary>
internal sealed class EventFdSignal(int fd) : IInterruptSignal
{
    public void Signal() => Posix.SignalEventFd(fd);

    public void Close() => Posix.close(fd);
}
