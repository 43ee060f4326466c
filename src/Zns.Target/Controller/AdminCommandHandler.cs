using Zns.Nvme;
using Zns.Protocol;
using Zns.Nvme.Layouts;
using Zns.Target.Execution;

namespace Zns.Target.Controller;

/// <summary>
/// Admin commands of one controller (admin queue only; called after the queue and controller checks).
/// </summary>
internal sealed class AdminCommandHandler(NvmeController controller)
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
                        // NVM command set specific namespace structure: nothing to report (no ELBAS, no PI).
                        data.Clear();
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
            controller.Traits.Sgls, controller.Traits.OptionalAdminCommands, controller.Traits.IsMemoryBased);
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

    // ---- Features --------------------------------------------------------------------------------------------

    private uint NumberOfQueuesValue
    {
        get
        {
            // NSQA/NCQA, 0's based: the configured maximum whatever was requested (the host uses the minimum).
            uint n = (uint)(controller.MaxIoQueues - 1);
            return n | (n << 16);
        }
    }

    private NvmeStatus SetFeatures(in SubmissionQueueEntry sqe, Span<byte> data, ref ulong result)
    {
        byte fid = (byte)sqe.Cdw10;
        bool save = (sqe.Cdw10 & 0x8000_0000) != 0;
        uint value = sqe.Cdw11;
        if (fid is not (FeatureId.NumberOfQueues or FeatureId.AsyncEventConfiguration or FeatureId.KeepAliveTimer
            or FeatureId.VolatileWriteCache or FeatureId.IoCommandSetProfile or FeatureId.TemperatureThreshold
            or FeatureId.Timestamp or FeatureId.HostBehaviorSupport))
        {
            return NvmeStatus.InvalidField.WithDnr();
        }
        if (save)
        {
            // Nothing is saveable across power cycles (Get Features capabilities report bit 0 = 0).
            return NvmeStatus.FeatureIdNotSaveable.WithDnr();
        }
        switch (fid)
        {
            case FeatureId.NumberOfQueues:
                // The number of queues is fixed once I/O queues exist, until a controller reset (QEMU's order).
                if (controller.IoQueuesCreated)
                {
                    return NvmeStatus.CommandSequenceError.WithDnr();
                }
                if ((value & 0xFFFF) == 0xFFFF || (value >> 16) == 0xFFFF)
                {
                    return NvmeStatus.InvalidField.WithDnr();
                }
                result = NumberOfQueuesValue;
                return NvmeStatus.Success;

            case FeatureId.AsyncEventConfiguration:
                return controller.SetAsyncEventConfig(value);

            case FeatureId.KeepAliveTimer:
                controller.SetKeepAliveTimeout(value);
                return NvmeStatus.Success;

            case FeatureId.VolatileWriteCache:
                // WCE = 0 makes every write FUA: the emulated cache is then effectively write-through.
                controller.SetVolatileWriteCache((value & 1) != 0);
                return NvmeStatus.Success;

            case FeatureId.IoCommandSetProfile:
                // Only command set combination 0 (NVM + ZNS, Identify CNS 1Ch vector 0) exists.
                return (value & 0x1FF) == 0 ? NvmeStatus.Success : NvmeStatus.IoCommandSetCombinationRejected.WithDnr();

            case FeatureId.Timestamp:
                controller.SetTimestamp(System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(data));
                return NvmeStatus.Success;

            case FeatureId.HostBehaviorSupport:
                controller.SetHostBehavior(data);
                return NvmeStatus.Success;

            case FeatureId.TemperatureThreshold:
            {
                if (!TryDecodeThreshold(value, out bool under))
                {
                    return NvmeStatus.InvalidField.WithDnr();
                }
                controller.SetTemperatureThreshold(under, (ushort)value);
                return NvmeStatus.Success;
            }

            default:
                return NvmeStatus.InvalidField.WithDnr();
        }
    }

    /// <summary>TMPSEL (bits 19:16) must be 0 (composite) or Fh (all sensors); THSEL (bits 21:20) 0 over, 1 under.</summary>
    private static bool TryDecodeThreshold(uint cdw11, out bool under)
    {
        uint tmpsel = (cdw11 >> 16) & 0xF;
        uint thsel = (cdw11 >> 20) & 0x3;
        under = thsel == 1;
        return tmpsel is 0 or 0xF && thsel <= 1;
    }

    private NvmeStatus GetFeatures(in SubmissionQueueEntry sqe, Span<byte> data, ref ulong result)
    {
        byte fid = (byte)sqe.Cdw10;
        uint sel = (sqe.Cdw10 >> 8) & 0x7;
        if (fid == FeatureId.Timestamp)
        {
            if (sel > 3)
            {
                return NvmeStatus.InvalidField.WithDnr();
            }
            if (sel == 3)
            {
                data.Clear();
                result = 0x4;
                return NvmeStatus.Success;
            }
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(data, controller.GetTimestamp());
            return NvmeStatus.Success;
        }
        if (fid == FeatureId.HostBehaviorSupport)
        {
            if (sel > 3)
            {
                return NvmeStatus.InvalidField.WithDnr();
            }
            // Current: the 512-byte structure as the host last set it. Default and saved (nothing is saveable) and
            // capabilities (changeable, bit 2, in DW0) transfer no structure in QEMU, so any buffer is taken and
            // reads as zeros (the command data table's rule).
            data.Clear();
            if (sel == 0)
            {
                controller.GetHostBehavior(data);
            }
            result = sel == 3 ? 0x4UL : 0UL;
            return NvmeStatus.Success;
        }
        if (sel > 3)
        {
            return NvmeStatus.InvalidField.WithDnr();
        }
        // SEL 1 (default) and 2 (saved; nothing is saveable so it equals the default) versus 0 (current).
        bool current = sel == 0;
        bool under = false;
        if (fid == FeatureId.TemperatureThreshold && !TryDecodeThreshold(sqe.Cdw11, out under))
        {
            return NvmeStatus.InvalidField.WithDnr();
        }
        ulong? value = fid switch
        {
            FeatureId.NumberOfQueues => NumberOfQueuesValue,
            FeatureId.AsyncEventConfiguration => current ? controller.AsyncEventConfig : 0UL,
            FeatureId.KeepAliveTimer => current ? controller.KeepAliveTimeoutMs : 0UL,
            FeatureId.VolatileWriteCache => !current || controller.VolatileWriteCacheEnabled ? 1UL : 0UL,
            FeatureId.IoCommandSetProfile => 0UL,
            FeatureId.TemperatureThreshold => under
                ? (current ? controller.UnderTemperatureThreshold : 0UL)
                : (current ? controller.OverTemperatureThreshold : (ulong)IdentifyControllerLayout.WarningTemperature),
            _ => null,
        };
        if (value is null)
        {
            return NvmeStatus.InvalidField.WithDnr();
        }
        // SEL 3: capabilities — changeable (bit 2), neither saveable (bit 0) nor namespace specific (bit 1).
        // Number of Queues is only "changeable" in the sense that Set Features is accepted; report the same.
        result = sel == 3 ? 0x4UL : value.Value;
        return NvmeStatus.Success;
    }
}
