using Zns.Nvme;
using Zns.Protocol;
using Zns.Nvme.Layouts;
using Zns.Target.Execution;

namespace Zns.Target.Controller;

/// <summary>
/// Admin commands of one controller (admin queue only; called after the queue and controller checks).
/// </summary>
internal sealed partial class AdminCommandHandler(NvmeController controller)
{
    /// <summary>Scratch space for fixed-size logs, so a windowed read can copy from the full page.</summary>
    private readonly byte[] _scratch = new byte[4096];

    private NvmeSubsystem Subsystem => controller.Subsystem;

    public ValueTask<CompletionQueueEntry> Execute(in SubmissionQueueEntry sqe, HostData data, CompletionQueueEntry cqe)
    {
        // The one length check, against the command data table every transport uses too.
        if (!CommandData.Admin(in sqe, controller.Traits.IsMemoryBased).Accepts(data.Length))
        {
            cqe.Status = NvmeStatus.DataSglLengthInvalid.WithDnr();
            return new ValueTask<CompletionQueueEntry>(cqe);
        }
        if (sqe.Opcode == AdminOpcode.AsyncEventRequest)
        {
            return controller.QueueAsyncEventRequest(in cqe);
        }
        cqe.Status = Subsystem.IsDiscovery
            ? ExecuteDiscovery(in sqe, data.Span, ref cqe.Result)
            : ExecuteIo(in sqe, data.Span, ref cqe.Result);
        return new ValueTask<CompletionQueueEntry>(cqe);
    }

    private NvmeStatus ExecuteIo(in SubmissionQueueEntry sqe, Span<byte> data, ref ulong result) => sqe.Opcode switch
    {
        AdminOpcode.Identify => Identify(in sqe, data),
        AdminOpcode.GetLogPage => GetLogPage(in sqe, data),
        AdminOpcode.SetFeatures => SetFeatures(in sqe, data, ref result),
        AdminOpcode.GetFeatures => GetFeatures(in sqe, data, ref result),
        AdminOpcode.KeepAlive => controller.KeepAlive(),
        AdminOpcode.Abort => Abort(ref result),
        AdminOpcode.CreateIoCompletionQueue => CreateCompletionQueue(in sqe),
        AdminOpcode.CreateIoSubmissionQueue => CreateSubmissionQueue(in sqe),
        AdminOpcode.DeleteIoSubmissionQueue => DeleteSubmissionQueue(in sqe),
        AdminOpcode.DeleteIoCompletionQueue => DeleteCompletionQueue(in sqe),
        AdminOpcode.DoorbellBufferConfig => DoorbellBufferConfig(in sqe),
        _ => NvmeStatus.InvalidOpcode.WithDnr(),
    };

    /// <summary>
    /// The discovery controller implements the subset nvmet's discovery controller does: Identify Controller, the
    /// discovery log, Async Event Configuration / Keep Alive Timer features, Keep Alive and AER.
    /// </summary>
    private NvmeStatus ExecuteDiscovery(in SubmissionQueueEntry sqe, Span<byte> data, ref ulong result)
    {
        switch (sqe.Opcode)
        {
            case AdminOpcode.Identify:
                return (byte)sqe.Cdw10 == IdentifyCns.Controller ? Identify(in sqe, data) : NvmeStatus.InvalidField.WithDnr();
            case AdminOpcode.GetLogPage:
                return CheckLogPageTransfer(in sqe, out NvmeStatus bad)
                    ? GetDiscoveryLogPage(in sqe, data) : bad;
            case AdminOpcode.SetFeatures:
            case AdminOpcode.GetFeatures:
                byte fid = (byte)sqe.Cdw10;
                if (fid is not (FeatureId.AsyncEventConfiguration or FeatureId.KeepAliveTimer))
                {
                    return NvmeStatus.InvalidField.WithDnr();
                }
                return sqe.Opcode == AdminOpcode.SetFeatures ? SetFeatures(in sqe, data, ref result) : GetFeatures(in sqe, data, ref result);
            case AdminOpcode.KeepAlive:
                return controller.KeepAlive();
            default:
                return NvmeStatus.InvalidOpcode.WithDnr();
        }
    }

    /// <summary>Abort is best effort (NVMe Base §5.1): nothing is aborted, DW0 bit 0 = 1 says so.</summary>
    private static NvmeStatus Abort(ref ulong result)
    {
        result = 1;
        return NvmeStatus.Success;
    }

    // ---- Identify --------------------------------------------------------------------------------------------

    private NvmeStatus Identify(in SubmissionQueueEntry sqe, Span<byte> data)
    {
        byte cns = (byte)sqe.Cdw10;
        byte csi = (byte)(sqe.Cdw11 >> 24);
        uint nsid = sqe.NamespaceId;
        switch (cns)
        {
            case IdentifyCns.Controller:
                IdentifyControllerLayout.Write(data, BuildControllerIdentity());
                return NvmeStatus.Success;

            case IdentifyCns.Namespace:
            {
                if (!IsValidNsid(nsid))
                {
                    return NvmeStatus.InvalidNamespace.WithDnr();
                }
                // An absent (or, for an NVM-only host, zoned) NSID up to NN reads as a zero-filled structure.
                if (controller.AttachedNamespace(nsid) is { } ns)
                {
                    IdentifyNamespaceLayout.Write(data, ns.Identity);
                }
                else
                {
                    data.Clear();
                }
                return NvmeStatus.Success;
            }

            case IdentifyCns.IoCommandSetIndependentNamespace:
            {
                if (!IsValidNsid(nsid))
                {
                    return NvmeStatus.InvalidNamespace.WithDnr();
                }
                if (controller.AttachedNamespace(nsid) is not { } ns)
                {
                    data.Clear();
                }
                else
                {
                    IdentifyIndependentNamespaceLayout.Write(data, ns.WriteProtected);
                }
                return NvmeStatus.Success;
            }

            case IdentifyCns.ActiveNamespaceList:
            case IdentifyCns.IoCommandSetActiveNamespaceList:
            {
                // The list holds NSIDs greater than the given one; FFFFFFFEh/FFFFFFFFh leave nothing to list.
                if (nsid >= 0xFFFF_FFFE)
                {
                    return NvmeStatus.InvalidNamespace.WithDnr();
                }
                bool filter = cns == IdentifyCns.IoCommandSetActiveNamespaceList;
                if (filter && csi is not (Csi.Nvm or Csi.Zoned))
                {
                    return NvmeStatus.InvalidField.WithDnr();
                }
                Span<uint> ids = stackalloc uint[Subsystem.NamespaceInfos.Length];
                int n = 0;
                foreach (NamespaceInfo ns in Subsystem.NamespaceInfos)
                {
                    if (ns.Nsid > nsid && (!filter || ns.Csi == csi) && controller.AttachedNamespace(ns.Nsid) is not null)
                    {
                        ids[n++] = ns.Nsid;
                    }
                }
                NamespaceListLayout.Write(data, ids[..n]);
                return NvmeStatus.Success;
            }

            case IdentifyCns.NamespaceDescriptorList:
            {
                if (!IsValidNsid(nsid))
                {
                    return NvmeStatus.InvalidNamespace.WithDnr();
                }
                if (controller.AttachedNamespace(nsid) is not { } ns)
                {
                    return NvmeStatus.InvalidField.WithDnr();
                }
                NamespaceDescriptorListLayout.Write(data, ns.Uuid, ns.Nguid, ns.Csi, ns.Eui64);
                return NvmeStatus.Success;
            }

            case IdentifyCns.IoCommandSetNamespace:
            {
                if (!IsValidNsid(nsid))
                {
                    return NvmeStatus.InvalidNamespace.WithDnr();
                }
                if (controller.AttachedNamespace(nsid) is not { } ns)
                {
                    if (csi is not (Csi.Nvm or Csi.Zoned))
                    {
                        return NvmeStatus.InvalidField.WithDnr();
                    }
                    data.Clear();
                    return NvmeStatus.Success;
                }
                switch (csi)
                {
                    case Csi.Nvm:
                        // NVM command set specific namespace structure: the extended LBA format (PI format).
                        IdentifyNvmNamespaceLayout.Write(data, ns.Identity);
                        return NvmeStatus.Success;
                    case Csi.Zoned when ns.Csi == Csi.Zoned:
                        IdentifyZonedNamespaceLayout.Write(data, ns.Identity);
                        var health = Subsystem.HealthMonitor(ns.Nsid).Policy;
                        IdentifyZonedNamespaceLayout.WriteLimits(data, health.ResetRecommendedLimitSeconds, health.FinishRecommendedLimitSeconds);
                        return NvmeStatus.Success;
                    default:
                        return NvmeStatus.InvalidField.WithDnr();
                }
            }

            case IdentifyCns.IoCommandSetController:
                switch (csi)
                {
                    case Csi.Nvm:
                        // QEMU's values: VSL, DMRL 255, DMRSL what one block-layer request takes, DMSL = DMRL × DMRSL.
                        IdentifyNvmControllerLayout.Write(data, Subsystem.Vsl, Subsystem.Dmrsl);
                        return NvmeStatus.Success;
                    case Csi.Zoned:
                        IdentifyZonedControllerLayout.Write(data, Subsystem.Zasl);
                        return NvmeStatus.Success;
                    default:
                        return NvmeStatus.InvalidField.WithDnr();
                }

            case IdentifyCns.IoCommandSetVector:
                IoCommandSetVectorLayout.Write(data);
                return NvmeStatus.Success;

            default:
                return NvmeStatus.InvalidField.WithDnr();
        }
    }

    /// <summary>NSIDs 1..NN name a namespace slot (present or not); 0 and anything above NN do not.</summary>
    private static bool IsValidNsid(uint nsid) => nsid - 1 < NvmeSubsystem.MaxNamespaces;

    private ControllerIdentity BuildControllerIdentity()
    {
        TargetOptions o = controller.Options;
        return new ControllerIdentity(
            o.SerialNumber, o.ModelNumber, o.FirmwareRevision, controller.Cntlid,
            Subsystem.IsDiscovery ? (byte)0 : Subsystem.Mdts, (ushort)Math.Min(o.MaxQueueEntries, ushort.MaxValue),
            Subsystem.IsDiscovery ? 0 : NvmeSubsystem.MaxNamespaces,
            Subsystem.Nqn, (uint)((SubmissionQueueEntry.Size + controller.Traits.InCapsuleDataLength) / 16), Subsystem.IsDiscovery,
            IdentifyControllerLayout.OptionalNvmCommands, o.AsyncEventRequestLimit, Zns.Core.Zones.ZonedNamespace.CopyFormatsSupported,
            controller.Traits.Sgls, controller.Traits.OptionalAdminCommands, controller.Traits.IsMemoryBased,
            Subsystem.HasGuard64Namespace);
    }

    // ---- Get Log Page ----------------------------------------------------------------------------------------

    /// <summary>LPO must be dword aligned (NVMe Base §5.16).</summary>
    private static bool CheckLogPageTransfer(in SubmissionQueueEntry sqe, out NvmeStatus status)
    {
        if ((GetLogPageCommandLayout.Offset(in sqe) & 3) != 0)
        {
            status = NvmeStatus.InvalidField.WithDnr();
            return false;
        }
        status = NvmeStatus.Success;
        return true;
    }

    private NvmeStatus GetDiscoveryLogPage(in SubmissionQueueEntry sqe, Span<byte> data)
    {
        if (GetLogPageCommandLayout.Lid(in sqe) != LogPageId.Discovery)
        {
            return NvmeStatus.InvalidField.WithDnr();
        }
        byte[] log = Subsystem.Target.BuildDiscoveryLog(controller.HostNqn);
        return CopyWindow(log, GetLogPageCommandLayout.Offset(in sqe), data);
    }

    private NvmeStatus GetLogPage(in SubmissionQueueEntry sqe, Span<byte> data)
    {
        if (!CheckLogPageTransfer(in sqe, out NvmeStatus bad))
        {
            return bad;
        }
        ulong offset = GetLogPageCommandLayout.Offset(in sqe);
        uint nsid = sqe.NamespaceId;
        Span<byte> page = _scratch;
        int size;
        switch (GetLogPageCommandLayout.Lid(in sqe))
        {
            case LogPageId.ErrorInformation:
                size = ErrorLogLayout.Size;
                page[..size].Clear();
                break;

            case LogPageId.SmartHealth:
                // LPA bit 0: per-namespace SMART is accepted, but the counters are subsystem-wide.
                if (nsid is not (0 or uint.MaxValue) && controller.AttachedNamespace(nsid) is null)
                {
                    return NvmeStatus.InvalidNamespace.WithDnr();
                }
                size = SmartLogLayout.Size;
                SmartLogLayout.Write(page, Subsystem.GetSmartValues());
                break;

            case LogPageId.FirmwareSlot:
                size = FirmwareSlotLogLayout.Size;
                FirmwareSlotLogLayout.Write(page, controller.Options.FirmwareRevision);
                break;

            case LogPageId.ChangedNamespaceList:
                size = NamespaceListLayout.MaxEntries * 4;
                NamespaceListLayout.Write(page, controller.ReadChangedNamespaces(GetLogPageCommandLayout.Rae(in sqe)));
                break;

            case LogPageId.CommandsSupportedAndEffects:
            {
                // QEMU: a command set without I/O commands gets the admin part only; an NVM-only host always gets
                // the NVM table.
                byte csi = controller.NvmOnly ? Csi.Nvm : GetLogPageCommandLayout.Csi(in sqe);
                size = EffectsLogLayout.Size;
                EffectsLogLayout.Write(page, csi);
                break;
            }

            case LogPageId.ChangedZoneList:
            {
                // Per zoned namespace: zones the controller changed on its own since the host last read the list.
                if (controller.AttachedNamespace(nsid) is not { } ns)
                {
                    return NvmeStatus.InvalidNamespace.WithDnr();
                }
                if (ns.Csi != Csi.Zoned || GetLogPageCommandLayout.Csi(in sqe) != Csi.Zoned)
                {
                    return NvmeStatus.InvalidField.WithDnr();
                }
                size = ChangedZoneListLayout.Size;
                controller.ReadChangedZones(nsid, GetLogPageCommandLayout.Rae(in sqe), page);
                break;
            }

            default:
                // Unsupported LIDs (the discovery log included) get Invalid Field, as nvmet and QEMU answer.
                return NvmeStatus.InvalidField.WithDnr();
        }
        // QEMU: an offset at or past the end of the log is Invalid Field.
        return offset >= (ulong)size ? NvmeStatus.InvalidField.WithDnr() : CopyWindow(page[..size], offset, data);
    }

    /// <summary>
    /// Copies the requested window of a log: an offset past the end is Invalid Field; bytes past the end of the log
    /// read as zeros, so the host always gets exactly the length it asked for.
    /// </summary>
    private static NvmeStatus CopyWindow(ReadOnlySpan<byte> log, ulong offset, Span<byte> destination)
    {
        if (offset > (ulong)log.Length)
        {
            return NvmeStatus.InvalidField.WithDnr();
        }
        ReadOnlySpan<byte> source = log[(int)offset..];
        int n = Math.Min(source.Length, destination.Length);
        source[..n].CopyTo(destination);
        destination[n..].Clear();
        return NvmeStatus.Success;
    }
}
