using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Zns.Target.Controller;
using Zns.Target.Execution;
using static Zns.Nvme.Layouts.ControllerProperties;
using Zns.Nvme;
using Zns.Nvme.Layouts;

namespace Zns.Target.Pcie;

/// <summary>
/// A PCIe NVMe controller function of the target's NVM subsystem: configuration space, BAR0 (controller registers
/// and doorbells), BAR4 (MSI-X table and PBA), and queues in guest memory. The NVMe command logic is the shared one
/// (<see cref="NvmeController"/>, <see cref="SubmissionQueue"/>, admin and I/O handlers); this class is the memory-based
/// transport around it: registers instead of Property Get/Set, Create/Delete I/O Queue commands instead of Fabrics
/// Connect, PRPs in guest memory instead of SGLs and in-capsule data.
/// </summary>
/// <remarks>
/// A controller instance of the shared logic lives from CC.EN 0→1 to the next reset (CC.EN 1→0, function reset,
/// client disconnect): PCIe controller reset returns every feature to its default and deletes every queue, which is
/// what a new instance gives. Register writes and queue processing are serialised by <see cref="_stateLock"/>;
/// doorbell writes only store a value and wake the poller.
/// </remarks>
public sealed partial class NvmePcieFunction : IDisposable
{
    // BAR0 register offsets (NVMe Base 2.0 §3.1.3) beyond the shared ones.
    private const int Intms = 0x0C, Intmc = 0x10, Nssr = 0x20, Aqa = 0x24, Asq = 0x28, Acq = 0x30;
    /// <summary>Doorbells start at 1000h; DSTRD = 0, so SQ y tail is at 1000h + 8y and CQ y head at 1000h + 8y + 4.</summary>
    public const int DoorbellOffset = 0x1000;
    /// <summary>CAP.CQR: queues must be physically contiguous (PC = 1).</summary>
    private const ulong CapContiguousQueuesRequired = 1UL << 16;
    private const uint CstsFatalBit = 1u << 1;

    private readonly NvmeTarget _target;
    private readonly ILogger _logger;
    private readonly Lock _stateLock = new();
    private readonly PciConfigSpace _config;
    private readonly MsixInterrupts _msix;
    private readonly InterruptCoalescing _coalescing;
    private readonly uint[] _doorbells;

    private uint _cc, _aqa;
    private ulong _asq, _acq;
    private bool _fatal;
    private NvmeController? _controller;

    /// <summary>Creates the function for <paramref name="target"/>'s NVM subsystem; <paramref name="name"/> names it in logs.</summary>
    public NvmePcieFunction(NvmeTarget target, GuestMemory memory, string name, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(memory);
        _target = target;
        Memory = memory;
        Name = name;
        _logger = target.Logger;
        _ = loggerFactory;
        _executor = new CommandExecutor(_logger, name);
        MaxIoQueues = target.Options.MaxIoQueues;
        _msix = new MsixInterrupts(MaxIoQueues + 1);
        _coalescing = new InterruptCoalescing(_msix.VectorCount);
        _config = new PciConfigSpace(_msix.VectorCount);
        _doorbells = new uint[2 * (MaxIoQueues + 1)];
        _ioSq = new PcieSubmissionQueue?[MaxIoQueues + 1];
        _ioCq = new PcieCompletionQueue?[MaxIoQueues + 1];
        _poller = new Thread(PollLoop) { IsBackground = true, Name = $"zns-pcie {name}" };
        _poller.Start();
    }

    public string Name { get; }
    public GuestMemory Memory { get; }
    public int MaxIoQueues { get; }
    public int MsixVectorCount => _msix.VectorCount;

    /// <summary>The clock of interrupt coalescing's aggregation time (a fake one in tests).</summary>
    internal TimeProvider Clock { get; set; } = TimeProvider.System;

    /// <summary>CAP: the shared value (MQES, TO, CSS with the I/O command set bit, MPS) plus CQR, DSTRD = 0.</summary>
    public ulong Capabilities => BuildCap((ushort)(_target.Options.MaxQueueEntries - 1)) | CapContiguousQueuesRequired;

    /// <summary>
    /// A memory-based controller: byte-aligned SGLs with bit buckets as well as PRPs, Doorbell Buffer Config, queues
    /// that must be physically contiguous.
    /// </summary>
    internal static readonly TransportTraits PcieTraits = new()
    {
        IsMemoryBased = true,
        Sgls = SglWalker.SupportedSgls,
        OptionalAdminCommands = OacsDoorbellBufferConfig,
        CapabilityBits = CapContiguousQueuesRequired,
    };

    /// <summary>Controller Fatal Status is set (until the next reset).</summary>
    public bool IsFatal
    {
        get { lock (_stateLock) { return _fatal; } }
    }

    // ---- Regions ---------------------------------------------------------------------------------------------

    public bool ReadConfig(long offset, Span<byte> data)
    {
        lock (_stateLock)
        {
            return _config.Read(offset, data);
        }
    }

    public bool WriteConfig(long offset, ReadOnlySpan<byte> data)
    {
        lock (_stateLock)
        {
            return _config.Write(offset, data);
        }
    }

    public void ReadMsixBar(long offset, Span<byte> data) => _msix.ReadBar(offset, data);

    public void WriteMsixBar(long offset, ReadOnlySpan<byte> data) => _msix.WriteBar(offset, data);

    /// <summary>Assigns MSI-X triggers (SET_IRQS); false for a range outside the vectors.</summary>
    public bool SetMsixTriggers(int start, int count, ReadOnlySpan<IInterruptSignal?> triggers) => _msix.SetTriggers(start, count, triggers);

    /// <summary>Raises vectors from the client (SET_IRQS ACTION_TRIGGER without eventfds).</summary>
    public void TriggerMsix(int vector) => _msix.Raise(vector);

    /// <summary>BAR0 read of 1..8 bytes; false outside BAR0.</summary>
    public bool ReadBar0(long offset, Span<byte> data)
    {
        if (offset < 0 || offset > PciConfigSpace.Bar0Size - data.Length)
        {
            return false;
        }
        Span<byte> word = stackalloc byte[16];
        for (int i = 0; i < data.Length;)
        {
            long at = offset + i;
            long aligned = at & ~3L;
            BinaryPrimitives.WriteUInt32LittleEndian(word, ReadRegister32(aligned));
            int take = (int)Math.Min(4 - (at - aligned), data.Length - i);
            word.Slice((int)(at - aligned), take).CopyTo(data[i..]);
            i += take;
        }
        return true;
    }

    /// <summary>BAR0 write; registers take naturally aligned 4- or 8-byte writes (others are merged per dword).</summary>
    public bool WriteBar0(long offset, ReadOnlySpan<byte> data)
    {
        if (offset < 0 || offset > PciConfigSpace.Bar0Size - data.Length)
        {
            return false;
        }
        Span<byte> word = stackalloc byte[4];
        for (int i = 0; i < data.Length;)
        {
            long at = offset + i;
            long aligned = at & ~3L;
            int take = (int)Math.Min(4 - (at - aligned), data.Length - i);
            BinaryPrimitives.WriteUInt32LittleEndian(word, take == 4 ? 0 : ReadRegister32(aligned));
            data.Slice(i, take).CopyTo(word[(int)(at - aligned)..]);
            WriteRegister32(aligned, BinaryPrimitives.ReadUInt32LittleEndian(word));
            i += take;
        }
        return true;
    }

    private uint ReadRegister32(long offset)
    {
        if (offset >= DoorbellOffset)
        {
            // Doorbells are write-only; reads return zero (NVMe Base §3.1.3.22).
            return 0;
        }
        lock (_stateLock)
        {
            ulong cap = Capabilities;
            return offset switch
            {
                Cap => (uint)cap,
                Cap + 4 => (uint)(cap >> 32),
                Vs => Zns.Nvme.Layouts.ControllerProperties.Version,
                Cc => _cc,
                Csts => CstsLocked(),
                Aqa => _aqa,
                Asq => (uint)_asq,
                Asq + 4 => (uint)(_asq >> 32),
                Acq => (uint)_acq,
                Acq + 4 => (uint)(_acq >> 32),
                _ => 0,
            };
        }
    }

    private uint CstsLocked()
    {
        uint csts = 0;
        if (_controller is { } c && c.TryGetProperty(Csts, 4, out ulong value))
        {
            csts = (uint)value;
        }
        return _fatal ? csts | CstsFatalBit : csts;
    }

    private void WriteRegister32(long offset, uint value)
    {
        if (offset >= DoorbellOffset)
        {
            WriteDoorbell((int)((offset - DoorbellOffset) / 4), value);
            return;
        }
        lock (_stateLock)
        {
            switch (offset)
            {
                case Cc:
                    WriteCcLocked(value);
                    break;
                case Aqa:
                    // ASQS 11:0, ACQS 27:16; reserved bits read as zero.
                    _aqa = value & 0x0FFF_0FFF;
                    break;
                case Asq:
                    _asq = (_asq & 0xFFFF_FFFF_0000_0000) | (value & 0xFFFF_F000);
                    break;
                case Asq + 4:
                    _asq = (_asq & 0xFFFF_FFFF) | ((ulong)value << 32);
                    break;
                case Acq:
                    _acq = (_acq & 0xFFFF_FFFF_0000_0000) | (value & 0xFFFF_F000);
                    break;
                case Acq + 4:
                    _acq = (_acq & 0xFFFF_FFFF) | ((ulong)value << 32);
                    break;
                case Intms:
                case Intmc:
                case Nssr:
                    // Pin-based interrupt masks do not apply under MSI-X; NVM Subsystem Reset is not supported (CAP.NSSRS = 0).
                    break;
            }
        }
    }

    private void WriteCcLocked(uint value)
    {
        uint old = _cc;
        _cc = value;
        bool wasEnabled = CcEnabled(old), enabled = CcEnabled(value);
        if (wasEnabled && !enabled)
        {
            ResetControllerLocked("CC.EN cleared");
            return;
        }
        if (!wasEnabled && enabled)
        {
            EnableLocked(value);
            return;
        }
        // Shutdown notifications and other changes while enabled go to the shared controller logic.
        _controller?.SetProperty(Cc, 4, value);
    }

    private void EnableLocked(uint cc)
    {
        int asqs = (int)(_aqa & 0xFFF) + 1, acqs = (int)((_aqa >> 16) & 0xFFF) + 1;
        // CAP.MQES bounds the I/O queues the host creates; the admin queue may always have Linux's 32 entries.
        int maxEntries = Math.Max(_target.Options.MaxQueueEntries, 32);
        if (asqs < 2 || acqs < 2 || asqs > maxEntries || acqs > maxEntries)
        {
            SetFatalLocked($"admin queue sizes ASQS {asqs} / ACQS {acqs} outside 2..{maxEntries}");
            return;
        }
        var adminTransport = new PcieQueueTransport(this, 0);
        NvmeSubsystem subsystem = _target.Subsystem;
        NvmeController? controller = subsystem.CreateController(id =>
            new NvmeController(subsystem, id, HostNqn, Guid.Empty, 0, adminTransport));
        if (controller is null)
        {
            SetFatalLocked("no free controller ID");
            return;
        }
        controller.SetProperty(Cc, 4, cc);
        if (!controller.IsReady)
        {
            // The shared logic refused the configuration (entry sizes, page size, command set) and set CFS itself.
            _controller = controller;
            return;
        }
        _controller = controller;
        var adminQueue = new SubmissionQueue(controller, 0, asqs, adminTransport);
        ((IMemoryQueueOperations)this).EnableAdminQueue(_asq, asqs, _acq, acqs, adminQueue);
    }

    /// <summary>Host NQN of the controllers this function creates (there is no Connect to carry one).</summary>
    private string HostNqn => $"nqn.2014-08.org.nvmexpress:pcie:{Name}";

    /// <summary>Controller reset: queues deleted, the controller instance destroyed, CSTS back to 0.</summary>
    private void ResetControllerLocked(string reason)
    {
        // The controller's parked AERs complete when it is destroyed: to stopped queues, so they are dropped.
        StopAllQueuesLocked();
        _controller?.Destroy(reason);
        DeleteAllQueuesLocked(reason);
        _controller = null;
        _fatal = false;
    }

    private void SetFatalLocked(string reason)
    {
        if (!_fatal)
        {
            _fatal = true;
            _logger.Fatal(Name, reason);
        }
    }

    /// <summary>Function level reset (VFIO_USER_DEVICE_RESET): the controller and the configuration space.</summary>
    public void ResetFunction(string reason)
    {
        lock (_stateLock)
        {
            ResetControllerLocked(reason);
            _cc = 0;
            _aqa = 0;
            _asq = _acq = 0;
            _config.Reset();
            _msix.Reset();
        }
    }

    /// <summary>The client went away: its memory and eventfds are gone, so the controller is reset.</summary>
    public void ClientDisconnected()
    {
        ResetFunction("client disconnected");
        _msix.ClearTriggers();
    }

    public void Dispose()
    {
        _stopping = true;
        _wake.Set();
        _poller.Join();
        lock (_stateLock)
        {
            ResetControllerLocked("function removed");
        }
        _msix.ClearTriggers();
        _wake.Dispose();
    }

    /// <summary>The transport side of a PCIe queue as the shared controller logic sees it.</summary>
    private sealed class PcieQueueTransport(NvmePcieFunction function, ushort qid) : IQueueTransport
    {
        public string RemoteEndPoint => $"{function.Name} queue {qid}";

        public TransportTraits Traits => PcieTraits;

        public IMemoryQueueOperations MemoryQueues => function;

        /// <summary>Controller teardown or shutdown: stop fetching from the queue (a reset deletes it later).</summary>
        public void Abort(string reason) => function.StopQueue(qid);
    }
}
