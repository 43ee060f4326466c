using Zns.Nvme;
using Zns.Nvme.Layouts;

namespace Zns.Target.Controller;

/// <summary>Set Features and Get Features: the controller's feature values (the interrupt features are a memory-based transport's).</summary>
internal sealed partial class AdminCommandHandler
{
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
            or FeatureId.Timestamp or FeatureId.HostBehaviorSupport)
            && !(IsInterruptFeature(fid) && MemoryQueues is not null))
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

            case FeatureId.InterruptCoalescing:
            case FeatureId.InterruptVectorConfiguration:
                return MemoryQueues!.SetInterruptFeature(fid, value);

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
        if (IsInterruptFeature(fid) && MemoryQueues is { } queues)
        {
            return GetInterruptFeature(queues, in sqe, sel, ref result);
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
