using System.Text;
using Microsoft.Extensions.Logging;
using Zns.Core.Zones;

namespace Zns.Target.Controller;

/// <summary>Where an armed cut fires relative to the command that fires it.</summary>
internal enum PowerCutStep { None, Before, After }

/// <summary>A power cut armed by a scenario: at the <paramref name="AtCommand"/>-th I/O command, or after the <paramref name="AfterFlushes"/>-th Flush.</summary>
public sealed record PowerCutArm(uint? Nsid, PowerCutPolicy Policy, int OffMs, long? AtCommand, long? AfterFlushes)
{
    /// <summary>The problem naming the field, or null.</summary>
    public string? Validate(NvmeSubsystem subsystem)
    {
        ArgumentNullException.ThrowIfNull(subsystem);
        if ((AtCommand is null) == (AfterFlushes is null))
        {
            return "at-command: give exactly one of at-command and after-flushes";
        }
        if (AtCommand is < 1)
        {
            return $"at-command: {AtCommand} is not a command count of at least 1";
        }
        if (AfterFlushes is < 1)
        {
            return $"after-flushes: {AfterFlushes} is not a flush count of at least 1";
        }
        return subsystem.ValidatePowerCut(Nsid, Policy, OffMs);
    }
}

/// <summary>What one power cut of a subsystem did.</summary>
/// <param name="Sequence">1 for the first cut of this subsystem, then 2, ...</param>
/// <param name="At">When power was cut.</param>
/// <param name="Trigger">What cut it: the control API, a scenario's command count or flush count.</param>
/// <param name="Policy">What was kept of the data that was not durable.</param>
/// <param name="OffMs">How long the device stayed off.</param>
/// <param name="Controllers">Controllers that lost power (NVMe/TCP and loop controllers, PCIe functions' controllers).</param>
/// <param name="Namespaces">Per namespace cut (all, or the one asked for), what was dropped.</param>
public sealed record SubsystemPowerCut(int Sequence, DateTimeOffset At, string Trigger, PowerCutPolicy Policy, int OffMs, int Controllers,
    IReadOnlyList<(uint Nsid, NamespacePowerCutReport Report)> Namespaces);

/// <summary>
/// A power cut of the whole subsystem: every controller loses power at once (NVMe/TCP and loop connections reset,
/// PCIe functions lose their controller), each namespace drops what was not durable by the policy and goes through
/// the power cycle, and after the off time the device comes back with the same identity. While it is off, new
/// connections are refused with a retryable Connect status and PCIe registers read as a controller not yet enabled.
/// </summary>
public sealed partial class NvmeSubsystem
{
    /// <summary>How many cut reports are kept for the control API.</summary>
    public const int PowerCutHistory = 32;

    /// <summary>Longest off time (one hour): a host stops reconnecting long before.</summary>
    public const int MaxPowerOffMs = 3_600_000;

    private readonly Lock _powerLock = new();
    private readonly List<SubsystemPowerCut> _powerCuts = [];
    private volatile bool _poweredOff;
    private int _powerCutSequence;
    private TaskCompletionSource _powerOn = Completed();
    private TaskCompletionSource _controllersGone = Completed();
    private PowerCutArm? _armedCut;
    private long _armedCommands, _armedFlushes;

    private static TaskCompletionSource Completed()
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        done.SetResult();
        return done;
    }

    /// <summary>True from the moment power is cut until it comes back.</summary>
    public bool IsPoweredOff => _poweredOff;

    /// <summary>Raised with false when power is cut (before the namespaces are cut) and true when it comes back (PCIe functions follow it).</summary>
    internal event Action<bool>? PowerChanged;

    /// <summary>The last cuts, oldest first (at most <see cref="PowerCutHistory"/>).</summary>
    public IReadOnlyList<SubsystemPowerCut> PowerCuts
    {
        get { lock (_powerLock) { return [.. _powerCuts]; } }
    }

    /// <summary>
    /// Completes once the last cut has taken the fabric controllers' connections down. Commands held by the cut are
    /// answered then (aborted): no host sees that answer over a dropped connection, and a PCIe function must see its
    /// commands done before it deletes its queues.
    /// </summary>
    internal Task ControllersGone
    {
        get { lock (_powerLock) { return _controllersGone.Task; } }
    }

    /// <summary>Completes when power is back after the last cut.</summary>
    public Task PoweredOn
    {
        get { lock (_powerLock) { return _powerOn.Task; } }
    }

    /// <summary>
    /// The problem with a cut request, naming the field, or null: <paramref name="nsid"/> must be a namespace of this
    /// subsystem, the policy valid and <paramref name="offMs"/> between 0 and <see cref="MaxPowerOffMs"/>.
    /// </summary>
    public string? ValidatePowerCut(uint? nsid, PowerCutPolicy policy, long offMs)
    {
        ArgumentNullException.ThrowIfNull(policy);
        if (nsid is { } n && GetNamespace(n) is null)
        {
            return $"nsid: {n} is not a namespace of {Nqn} (1..{Namespaces.Count})";
        }
        if (offMs is < 0 or > MaxPowerOffMs)
        {
            return $"off-ms: {offMs} is not between 0 and {MaxPowerOffMs}";
        }
        return policy.Validate();
    }

    /// <summary>
    /// Cuts power: every controller goes (commands in flight never complete), then namespace <paramref name="nsid"/>
    /// (or every namespace) drops what was not durable by <paramref name="policy"/>, one <see cref="Random"/> seeded
    /// from the policy drawing for them in NSID order. Power comes back after <paramref name="offMs"/>
    /// (<see cref="PoweredOn"/>). Throws <see cref="ArgumentException"/> for what <see cref="ValidatePowerCut"/>
    /// refuses and <see cref="InvalidOperationException"/> while power is already off.
    /// </summary>
    public SubsystemPowerCut CutPower(uint? nsid, PowerCutPolicy policy, int offMs, string trigger)
    {
        if (ValidatePowerCut(nsid, policy, offMs) is string problem)
        {
            throw new ArgumentException(problem);
        }
        if (!BeginPowerCut())
        {
            throw new InvalidOperationException("power is already off");
        }
        return FinishPowerCut(nsid, policy, offMs, trigger);
    }

    // Power fails: from here every I/O command is held (it takes the armed path, see IoCommandHandler) and new
    // connections are refused. False when power is already off.
    private bool BeginPowerCut()
    {
        lock (_powerLock)
        {
            if (_poweredOff)
            {
                return false;
            }
            _poweredOff = true;
            _powerOn = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _controllersGone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        Target.Faults.ArmExternal();
        return true;
    }

    private SubsystemPowerCut FinishPowerCut(uint? nsid, PowerCutPolicy policy, int offMs, string trigger)
    {
        try
        {
            int controllers = 0;
            foreach (NvmeController controller in _controllers.Values.ToArray())
            {
                controllers++;
                if (controller.AdminTransport.MemoryQueues is null)
                {
                    controller.DropConnections(includeAdmin: true);
                }
            }
            lock (_powerLock)
            {
                _controllersGone.TrySetResult();
            }
            // PCIe functions drop their controller themselves.
            PowerChanged?.Invoke(false);
            var random = policy.CreateRandom();
            var reports = new List<(uint, NamespacePowerCutReport)>();
            foreach (NamespaceInfo info in _namespaces)
            {
                if (nsid is null || info.Nsid == nsid)
                {
                    reports.Add((info.Nsid, info.Namespace.CutPower(policy, random)));
                }
            }
            SubsystemPowerCut cut;
            lock (_powerLock)
            {
                cut = new SubsystemPowerCut(++_powerCutSequence, Target.Options.TimeProvider.GetUtcNow(), trigger, policy, offMs, controllers, reports);
                _powerCuts.Add(cut);
                if (_powerCuts.Count > PowerCutHistory)
                {
                    _powerCuts.RemoveAt(0);
                }
            }
            _ = PowerOnAfter(offMs);
            Target.Logger.PowerCut(cut.Sequence, Nqn, trigger, PowerCutPolicy.KeepName(policy.Keep), policy.Torn, policy.Seed, offMs, controllers, Describe(cut));
            return cut;
        }
        catch
        {
            PowerOn();
            throw;
        }
    }

    private async Task PowerOnAfter(int offMs)
    {
        if (offMs > 0)
        {
            await Task.Delay(offMs).ConfigureAwait(false);
        }
        else
        {
            await Task.Yield();
        }
        PowerOn();
    }

    private void PowerOn()
    {
        TaskCompletionSource on;
        lock (_powerLock)
        {
            if (!_poweredOff)
            {
                return;
            }
            _poweredOff = false;
            on = _powerOn;
            _controllersGone.TrySetResult();
        }
        Target.Faults.Disarm();
        PowerChanged?.Invoke(true);
        Target.Logger.PowerRestored(Nqn);
        on.TrySetResult();
    }

    // ---------------------------------------------------------------- cuts armed by a scenario

    /// <summary>The cut a scenario armed and not yet fired, or null.</summary>
    public PowerCutArm? ArmedPowerCut
    {
        get { lock (_powerLock) { return _armedCut; } }
    }

    /// <summary>
    /// Arms a cut that fires at the <see cref="PowerCutArm.AtCommand"/>-th I/O command from now (which is then not
    /// executed) or right after the <see cref="PowerCutArm.AfterFlushes"/>-th Flush from now has made its data durable
    /// (before its completion reaches the host). Replaces an armed cut. Throws <see cref="ArgumentException"/> naming
    /// the field for a bad request.
    /// </summary>
    public void ArmPowerCut(PowerCutArm arm)
    {
        ArgumentNullException.ThrowIfNull(arm);
        if (arm.Validate(this) is string problem)
        {
            throw new ArgumentException(problem);
        }
        lock (_powerLock)
        {
            if (_armedCut is null)
            {
                Target.Faults.ArmExternal();
            }
            _armedCut = arm;
            _armedCommands = 0;
            _armedFlushes = 0;
        }
    }

    /// <summary>Removes an armed cut; false when there was none.</summary>
    public bool DisarmPowerCut()
    {
        lock (_powerLock)
        {
            if (_armedCut is null)
            {
                return false;
            }
            _armedCut = null;
        }
        Target.Faults.Disarm();
        return true;
    }

    /// <summary>
    /// An I/O command with <paramref name="opcode"/> arrived while a cut is armed: whether the cut fires before it
    /// (power is then failing, and the cut runs on the thread pool) or after it.
    /// </summary>
    internal PowerCutStep CountForPowerCut(byte opcode, out PowerCutArm? fired)
    {
        fired = null;
        PowerCutStep step;
        lock (_powerLock)
        {
            PowerCutArm? arm = _armedCut;
            if (arm is null)
            {
                return PowerCutStep.None;
            }
            step =
                arm.AtCommand is { } n && ++_armedCommands >= n ? PowerCutStep.Before :
                arm.AfterFlushes is { } f && opcode == Zns.Nvme.IoOpcode.Flush && ++_armedFlushes >= f ? PowerCutStep.After :
                PowerCutStep.None;
            if (step == PowerCutStep.None)
            {
                return step;
            }
            _armedCut = null;
            fired = arm;
        }
        Target.Faults.Disarm();
        if (step == PowerCutStep.Before)
        {
            FireArmed(fired);
        }
        return step;
    }

    /// <summary>Cuts power for an armed cut (power fails at once; the rest runs on the thread pool).</summary>
    internal void FireArmed(PowerCutArm arm)
    {
        if (!BeginPowerCut())
        {
            return;
        }
        string trigger = arm.AtCommand is { } n ? $"at command {n}" : $"after flush {arm.AfterFlushes}";
        _ = Task.Run(() =>
        {
            try
            {
                FinishPowerCut(arm.Nsid, arm.Policy, arm.OffMs, trigger);
            }
            catch (Exception e) when (e is IOException or ArgumentException or InvalidOperationException)
            {
                Target.Logger.PowerCutFailed(e, Nqn);
            }
        });
    }

    /// <summary>One line per namespace: what each zone lost (or a conventional namespace's block counts).</summary>
    public static string Describe(SubsystemPowerCut cut)
    {
        var text = new StringBuilder();
        foreach (var (nsid, report) in cut.Namespaces)
        {
            text.Append(System.Globalization.CultureInfo.InvariantCulture,
                $"nsid {nsid}: {report.BlocksDropped} blocks dropped, {report.BlocksKept} unflushed kept");
            foreach (ZonePowerCut z in report.Zones)
            {
                text.Append(System.Globalization.CultureInfo.InvariantCulture,
                    $"; zone {z.Zone} wp {z.WritePointerBefore:x}->{z.WritePointerAfter:x} (durable {z.DurableWritePointer:x}, {z.BlocksDropped} dropped{(z.Torn ? ", torn" : "")}{(z.BlockGranularity ? ", any block" : "")})");
            }
            text.Append(". ");
        }
        return text.ToString().TrimEnd();
    }
}
