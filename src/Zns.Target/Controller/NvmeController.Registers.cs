using Zns.Nvme;
using Zns.Nvme.Layouts;
using static Zns.Nvme.Layouts.ControllerProperties;

namespace Zns.Target.Controller;

/// <summary>
/// The controller's one register file, read and written by Fabrics Property Get/Set and by PCIe BAR0 accesses alike:
/// CAP, VS, CC, CSTS, and on a memory-based controller AQA, ASQ and ACQ. CC.EN and CC.SHN act here; what needs host
/// memory (the admin queue pair, deleting every queue) is asked of the transport's <see cref="IMemoryQueueOperations"/>.
/// </summary>
internal sealed partial class NvmeController
{
    private uint _cc;
    private uint _csts;
    private uint _aqa;
    private ulong _asq, _acq;

    public bool TryGetProperty(uint offset, int size, out ulong value)
    {
        bool memory = Traits.IsMemoryBased;
        lock (_lock)
        {
            value = (offset, size) switch
            {
                (Cap, 8) => CapValue,
                (Cap, 4) => (uint)CapValue,
                (Cap + 4, 4) => CapValue >> 32,
                (Vs, 4) => ControllerProperties.Version,
                (Cc, 4) => _cc,
                (Csts, 4) => _csts,
                (Aqa, 4) when memory => _aqa,
                (Asq, 8) when memory => _asq,
                (Asq, 4) when memory => (uint)_asq,
                (Asq + 4, 4) when memory => _asq >> 32,
                (Acq, 8) when memory => _acq,
                (Acq, 4) when memory => (uint)_acq,
                (Acq + 4, 4) when memory => _acq >> 32,
                _ => ulong.MaxValue,
            };
        }
        return value != ulong.MaxValue;
    }

    /// <summary>
    /// Property Set: CC (4 bytes), and AQA/ASQ/ACQ on a memory-based controller; everything else is Invalid Field,
    /// as in nvmet.
    /// </summary>
    public NvmeStatus SetProperty(uint offset, int size, ulong value)
    {
        if (offset == Cc && size == 4)
        {
            WriteCc((uint)value);
            return NvmeStatus.Success;
        }
        return Traits.IsMemoryBased && SetAdminQueueRegister(offset, size, value)
            ? NvmeStatus.Success
            : NvmeStatus.InvalidField.WithDnr();
    }

    /// <summary>AQA keeps ASQS 11:0 and ACQS 27:16 (reserved bits read as zero); ASQ/ACQ are 4 KiB aligned.</summary>
    private bool SetAdminQueueRegister(uint offset, int size, ulong value)
    {
        lock (_lock)
        {
            switch ((offset, size))
            {
                case (Aqa, 4):
                    _aqa = (uint)value & 0x0FFF_0FFF;
                    return true;
                case (Asq, 8):
                    _asq = value & ~0xFFFUL;
                    return true;
                case (Asq, 4):
                    _asq = (_asq & 0xFFFF_FFFF_0000_0000) | (value & 0xFFFF_F000);
                    return true;
                case (Asq + 4, 4):
                    _asq = (_asq & 0xFFFF_FFFF) | ((value & 0xFFFF_FFFF) << 32);
                    return true;
                case (Acq, 8):
                    _acq = value & ~0xFFFUL;
                    return true;
                case (Acq, 4):
                    _acq = (_acq & 0xFFFF_FFFF_0000_0000) | (value & 0xFFFF_F000);
                    return true;
                case (Acq + 4, 4):
                    _acq = (_acq & 0xFFFF_FFFF) | ((value & 0xFFFF_FFFF) << 32);
                    return true;
                default:
                    return false;
            }
        }
    }

    private void WriteCc(uint value)
    {
        IMemoryQueueOperations? memoryQueues = AdminTransport.MemoryQueues;
        List<SubmissionQueue>? abort = null;
        bool shutdown = false, deleteQueues = false;
        SubmissionQueue? adminQueue = null;
        ulong asq = 0, acq = 0;
        int asqs = 0, acqs = 0;
        lock (_lock)
        {
            uint old = _cc;
            _cc = value;
            _nvmOnly = CcEnabled(value) && CcCss(value) == CssNvm;
            if (CcEnabled(value) && !CcEnabled(old))
            {
                if (!IsValidConfiguration(value))
                {
                    _csts |= CstsFatal;
                    _logger.InvalidControllerConfiguration(Cntlid, value);
                }
                else if (memoryQueues is null)
                {
                    // RDY follows EN immediately: there is nothing to initialise.
                    _csts = (_csts & ~CstsFatal) | CstsReady;
                    _ready = true;
                }
                else
                {
                    // CAP.MQES bounds the I/O queues the host creates; the admin queue may always have Linux's 32 entries.
                    asqs = (int)(_aqa & 0xFFF) + 1;
                    acqs = (int)((_aqa >> 16) & 0xFFF) + 1;
                    int maxEntries = Math.Max(Options.MaxQueueEntries, 32);
                    if (asqs < 2 || acqs < 2 || asqs > maxEntries || acqs > maxEntries)
                    {
                        _csts |= CstsFatal;
                        _logger.InvalidControllerConfiguration(Cntlid, value);
                    }
                    else
                    {
                        adminQueue = new SubmissionQueue(this, 0, asqs, AdminTransport);
                        asq = _asq;
                        acq = _acq;
                    }
                }
            }
            if (!CcEnabled(value) && CcEnabled(old))
            {
                // Controller reset (EN 1 -> 0): I/O queues are deleted, which for a fabric means their connections
                // are terminated; features return to defaults. A fabric's admin queue and its controller stay; a
                // memory-based controller's admin queue is deleted with the others, and a fatal condition the
                // transport reported ends here.
                _ready = false;
                _csts = 0;
                abort = DetachIoQueuesLocked();
                ResetFeatures();
                deleteQueues = true;
                if (_stalled is null)
                {
                    _fatal = false;
                }
            }
            else if (!CcEnabled(value) && _fatal && _stalled is null)
            {
                // A host resetting a controller that was never enabled (one back from a power cut with CSTS.CFS set)
                // writes EN = 0 without a 1 -> 0 transition: the fatal condition the transport reported ends too.
                _csts &= ~CstsFatal;
                _fatal = false;
            }
            if (CcShn(value) != 0 && CcShn(old) == 0)
            {
                // Normal/abrupt shutdown: stop processing (commands now get Command Sequence Error), shut the
                // namespaces down as QEMU does (open zones become Closed, or Empty if unwritten; state and data made
                // durable) and report SHST = complete at once so `nvme disconnect` does not wait out its timeout.
                _ready = false;
                _csts = (_csts & ~CstsReady) | CstsShutdownComplete;
                abort ??= DetachIoQueuesLocked();
                shutdown = true;
                deleteQueues = true;
            }
            else if (CcShn(value) == 0 && CcShn(old) != 0)
            {
                _csts &= ~CstsShutdownComplete;
            }
        }
        if (adminQueue is not null)
        {
            // Outside the lock: the transport takes its own locks, and its poller calls into this controller.
            NvmeStatus enabled = memoryQueues!.EnableAdminQueue(asq, asqs, acq, acqs, adminQueue);
            lock (_lock)
            {
                if (!enabled.IsSuccess)
                {
                    _csts |= CstsFatal;
                }
                else if (CcEnabled(_cc) && CcShn(_cc) == 0)
                {
                    _csts = (_csts & ~CstsFatal) | CstsReady;
                    _ready = true;
                }
            }
        }
        if (shutdown)
        {
            _logger.Shutdown(Cntlid, CcShn(value));
            ShutdownNamespaces();
        }
        AbortAll(abort, "controller reset or shutdown");
        if (deleteQueues && memoryQueues is not null)
        {
            DeleteMemoryQueues(memoryQueues, "controller reset or shutdown");
        }
    }

    /// <summary>
    /// A memory-based controller's reset or shutdown: the admin queue stops, parked AERs are aborted (their
    /// completions dropped with the queue), then the transport deletes every queue. Called without the lock.
    /// </summary>
    private void DeleteMemoryQueues(IMemoryQueueOperations memoryQueues, string reason)
    {
        AdminTransport.Abort(reason);
        PendingAer[] aers;
        lock (_lock)
        {
            aers = [.. _pendingAers];
            _pendingAers.Clear();
        }
        foreach (PendingAer aer in aers)
        {
            aer.Completion.TrySetResult(aer.Complete(NvmeStatus.CommandInterruptedOrAbortedSqDeletion, 0));
        }
        memoryQueues.DeleteAllQueues(reason);
    }

    /// <summary>
    /// A fatal condition the transport detected (queue memory outside host memory, an internal error while fetching
    /// or posting): CSTS.CFS until the next controller reset.
    /// </summary>
    public void SetFatal()
    {
        lock (_lock)
        {
            _csts |= CstsFatal;
            _fatal = true;
        }
    }

    /// <summary>
    /// CC checks at enable: 64-byte SQEs and 16-byte CQEs, 4 KiB pages (CAP.MPSMIN/MPSMAX = 0), round robin
    /// arbitration, and CSS NVM-only or all-supported (CAP advertises both; admin-only is not advertised).
    /// </summary>
    private static bool IsValidConfiguration(uint cc) =>
        CcIosqes(cc) == 6 && CcIocqes(cc) == 4 && CcMps(cc) == 0 && CcAms(cc) == 0 &&
        CcCss(cc) is CssNvm or CssAllSupported;

    private void ShutdownNamespaces()
    {
        foreach (NamespaceInfo ns in Subsystem.NamespaceInfos)
        {
            try
            {
                ns.Namespace.Shutdown();
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException)
            {
                _logger.NamespaceShutdownFailed(ex, Cntlid, ns.Nsid);
            }
        }
    }
}
