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
/// One controller of the shared logic exists from the function's creation to the next function reset or client
/// disconnect (a synthetic connect: there is no Connect on PCIe), so its registers exist before CC.EN. BAR0 register
/// accesses are that controller's Property Get/Set (one register file); CC.EN and shutdown make it call back the
/// function's memory-queue operations. Doorbells stay here: a doorbell write only stores a value and wakes the poller.
/// The queues, the doorbells and their processing are the function's <see cref="PcieQueuePoller"/>, whose lock also
/// serialises configuration space accesses and the controller's replacement.
/// </remarks>
public sealed class NvmePcieFunction : IDisposable
{
    // BAR0 register offsets (NVMe Base 2.0 §3.1.3) beyond the shared ones.
    private const int Intms = 0x0C, Intmc = 0x10, Nssr = 0x20;
    /// <summary>Doorbells start at 1000h; DSTRD = 0, so SQ y tail is at 1000h + 8y and CQ y head at 1000h + 8y + 4.</summary>
    public const int DoorbellOffset = 0x1000;
    /// <summary>CAP.CQR: queues must be physically contiguous (PC = 1).</summary>
    private const ulong CapContiguousQueuesRequired = 1UL << 16;

    private readonly NvmeTarget _target;
    private readonly ILogger _logger;
    /// <summary>OACS bit 8: Doorbell Buffer Config supported.</summary>
    internal const ushort OacsDoorbellBufferConfig = 1 << 8;

    private readonly PciConfigSpace _config;
    private readonly MsixInterrupts _msix;
    private readonly PcieQueuePoller _queues;

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
        MaxIoQueues = target.Options.MaxIoQueues;
        _msix = new MsixInterrupts(MaxIoQueues + 1);
        _config = new PciConfigSpace(_msix.VectorCount);
        _queues = new PcieQueuePoller(target, memory, _msix, name);
        lock (_queues.Lock)
        {
            _queues.Controller = CreateController();
        }
        target.Subsystem.PowerChanged += OnPowerChanged;
    }

    /// <summary>
    /// A power cut of the subsystem. Off: the controller and every queue go at once (commands in flight never
    /// complete) and, until power is back, registers read as zeros (CSTS.RDY = 0) and writes are dropped. Reading all
    /// ones, as a removed device does, would be taken by Linux's nvme-pci for a dead device if its reset ran during the
    /// off time (it then removes the device for good). On: a new controller, with CSTS.CFS set so the host's timeout
    /// handler resets it at once (instead of first trying an Abort) and re-creates its queues; configuration space,
    /// MSI-X and the namespaces' identity stay, so the block device stays too.
    /// </summary>
    private void OnPowerChanged(bool on)
    {
        lock (_queues.Lock)
        {
            if (!on)
            {
                DestroyControllerLocked("power cut");
                return;
            }
            if (_queues.Controller is null)
            {
                _queues.Controller = CreateController();
                _queues.Controller?.SetFatal();
            }
        }
    }

    public string Name { get; }
    public GuestMemory Memory { get; }
    public int MaxIoQueues { get; }
    public int MsixVectorCount => _msix.VectorCount;

    /// <summary>The clock of interrupt coalescing's aggregation time (a fake one in tests).</summary>
    internal TimeProvider Clock
    {
        get => _queues.Clock;
        set => _queues.Clock = value;
    }

    /// <summary>Commands completed since creation (all queues); for tests and statistics.</summary>
    public long CompletedCommands => _queues.CompletedCommands;

    private NvmeController? Controller => _queues.Controller;

    /// <summary>CAP, as the controller builds it from the PCIe traits (CQR, DSTRD = 0).</summary>
    public ulong Capabilities => Controller?.CapValue ?? 0;

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
    public bool IsFatal => Controller?.IsFatal ?? false;

    // ---- Regions ---------------------------------------------------------------------------------------------

    public bool ReadConfig(long offset, Span<byte> data)
    {
        lock (_queues.Lock)
        {
            return _config.Read(offset, data);
        }
    }

    public bool WriteConfig(long offset, ReadOnlySpan<byte> data)
    {
        lock (_queues.Lock)
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
        // Doorbells are write-only and read as zero (NVMe Base §3.1.3.22), as do reserved registers.
        return offset < DoorbellOffset && Controller is { } controller && controller.TryGetProperty((uint)offset, 4, out ulong value)
            ? (uint)value
            : 0;
    }

    private void WriteRegister32(long offset, uint value)
    {
        if (offset >= DoorbellOffset)
        {
            // While power is off a doorbell write is dropped like any other: a tail the host rang then (an Abort,
            // a retried I/O) must not be taken by the controller that comes back with power.
            if (Controller is not null)
            {
                _queues.WriteDoorbell((int)((offset - DoorbellOffset) / 4), value);
            }
            return;
        }
        if (offset is Intms or Intmc or Nssr)
        {
            // Pin-based interrupt masks do not apply under MSI-X; NVM Subsystem Reset is not supported (CAP.NSSRS = 0).
            return;
        }
        // Read-only and reserved registers ignore writes, as a Property Set of them is refused.
        Controller?.SetProperty((uint)offset, 4, value);
    }

    /// <summary>The function's controller (a synthetic connect): its admin queue's transport is this function's.</summary>
    private NvmeController? CreateController()
    {
        var adminTransport = new PcieQueuePoller.PcieQueueTransport(_queues, 0);
        NvmeSubsystem subsystem = _target.Subsystem;
        NvmeController? controller = subsystem.CreateController(id =>
            new NvmeController(subsystem, id, HostNqn, Guid.Empty, 0, adminTransport));
        if (controller is null)
        {
            _logger.Fatal(Name, "no free controller ID");
        }
        return controller;
    }

    /// <summary>Host NQN of the controllers this function creates (there is no Connect to carry one).</summary>
    private string HostNqn => $"nqn.2014-08.org.nvmexpress:pcie:{Name}";

    /// <summary>
    /// Ends the function's controller: queues stop (so the completions of its parked AERs are dropped), the controller
    /// is destroyed, and every queue is deleted once the commands still moving data are done.
    /// </summary>
    private void DestroyControllerLocked(string reason)
    {
        _queues.StopAllQueuesLocked();
        _queues.Controller?.Destroy(reason);
        _queues.Controller = null;
        _queues.DeleteAllQueuesLocked(reason);
    }

    /// <summary>Function level reset (VFIO_USER_DEVICE_RESET): the controller and the configuration space.</summary>
    public void ResetFunction(string reason)
    {
        lock (_queues.Lock)
        {
            DestroyControllerLocked(reason);
            _config.Reset();
            _msix.Reset();
            // While power is off the controller comes back with it (OnPowerChanged).
            _queues.Controller = _target.Subsystem.IsPoweredOff ? null : CreateController();
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
        _target.Subsystem.PowerChanged -= OnPowerChanged;
        _queues.Dispose();
        lock (_queues.Lock)
        {
            DestroyControllerLocked("function removed");
        }
        _msix.ClearTriggers();
        _queues.DisposeWake();
    }
}
