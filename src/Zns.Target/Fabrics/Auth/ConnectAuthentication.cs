using Zns.Nvme;
using Zns.Protocol;
using Zns.Target.Controller;
using Zns.Nvme.Layouts;

namespace Zns.Target.Fabrics.Auth;

/// <summary>What Fabrics Connect asks of authentication: whether the host needs it, and whether its address may try.</summary>
internal static class ConnectAuthentication
{
    /// <summary>The host's settings when it must authenticate on <paramref name="subsystem"/> (never for discovery).</summary>
    public static HostAuthentication? For(NvmeTarget target, NvmeSubsystem subsystem, string hostNqn) =>
        !subsystem.IsDiscovery && target.Options.HostAuthentication.TryGetValue(hostNqn, out HostAuthentication? config) ? config : null;

    /// <summary>True when the source address has used up its failed attempts (the Connect is refused).</summary>
    public static bool IsRateLimited(NvmeTarget target, NvmeSubsystem subsystem, string hostNqn, string remoteEndPoint) =>
        For(target, subsystem, hostNqn) is not null && target.AuthFailures.IsBlocked(remoteEndPoint);

    /// <summary>Counts a Connect from a host that is not allowed, when the target uses authentication at all.</summary>
    public static void RecordUnknownHost(NvmeTarget target, NvmeSubsystem subsystem, string remoteEndPoint)
    {
        if (!subsystem.IsDiscovery && target.Options.HostAuthentication.Count != 0)
        {
            target.AuthFailures.RecordFailure(remoteEndPoint);
        }
    }

    /// <summary>
    /// Starts authentication for a queue that just connected, or returns null when the host has no key. The caller
    /// sets <see cref="QueueAuthentication.AuthenticationTransactionRequired"/> in the Connect response when non-null.
    /// </summary>
    public static QueueAuthentication? Begin(NvmeTarget target, NvmeSubsystem subsystem, string hostNqn, ushort qid, IQueueTransport transport)
    {
        HostAuthentication? config = For(target, subsystem, hostNqn);
        return config is null ? null : new QueueAuthentication(config, hostNqn, subsystem.Nqn, qid, transport, target.Logger,
            target.AuthFailures, target.Options.TimeProvider, target.Options.AuthenticationTimeout);
    }

    /// <summary>Authentication Send/Receive on a queue: Invalid Opcode when the host has no key (nothing to authenticate).</summary>
    public static NvmeStatus Execute(QueueAuthentication? auth, in SubmissionQueueEntry sqe, Span<byte> data)
    {
        if (auth is null)
        {
            return NvmeStatus.InvalidOpcode.WithDnr();
        }
        return sqe.FabricsCommandType == FabricsCommandType.AuthenticationSend ? auth.Send(in sqe, data) : auth.Receive(in sqe, data);
    }
}
