using Zns.Nvme;

namespace Zns.Core.Faults;

/// <summary>How often an armed rule fires: a number of times (then it is spent and removed), always, and/or with a probability per matching command.</summary>
/// <param name="Times">Fire at most this many times (1 = once); null = no limit.</param>
/// <param name="Probability">Fire for a matching command with this probability (0 &lt; p ≤ 1); null = every time.</param>
public readonly record struct FaultTrigger(int? Times = null, double? Probability = null)
{
    /// <summary>Always fires.</summary>
    public static FaultTrigger Always => default;
}

/// <summary>Which data transfers a media error applies to.</summary>
[Flags]
public enum MediaAccess
{
    /// <summary>Reads fail with Unrecovered Read Error.</summary>
    Read = 1,
    /// <summary>Writes, appends and Write Zeroes fail with Write Fault.</summary>
    Write = 2,
    Both = Read | Write,
}

/// <summary>A media error on the LBA range [<paramref name="FirstLba"/>, <paramref name="FirstLba"/> + <paramref name="Blocks"/>) of namespace <paramref name="Nsid"/>.</summary>
public sealed record MediaErrorRule(uint Nsid, ulong FirstLba, ulong Blocks, MediaAccess Access, FaultTrigger Trigger, bool Dnr = false)
{
    /// <summary>Assigned when the rule is added.</summary>
    public int Id { get; init; }

    /// <summary>Times it has fired.</summary>
    public int Fired { get; init; }

    internal bool Overlaps(ulong slba, ulong nlb) => slba < FirstLba + Blocks && FirstLba < slba + nlb;
}

/// <summary>The kinds of injected latency.</summary>
public enum LatencyDistribution
{
    /// <summary>Always <c>MeanUs</c>.</summary>
    Fixed,
    /// <summary>Uniform in [<c>MinUs</c>, <c>MaxUs</c>].</summary>
    Uniform,
    /// <summary>Normal with <c>MeanUs</c> and <c>StdDevUs</c>, clipped at 0.</summary>
    Normal,
    /// <summary>Exponential with mean <c>MeanUs</c>.</summary>
    Exponential,
}

/// <summary>A delay added to every I/O command with opcode <paramref name="Opcode"/> (null: every I/O opcode).</summary>
public sealed record LatencyRule(byte? Opcode, LatencyDistribution Distribution, double MeanUs, double MinUs = 0, double MaxUs = 0, double StdDevUs = 0)
{
    public int Id { get; init; }
}

/// <summary>A command failing with a retryable status (Namespace Not Ready, Command Abort Requested; no DNR).</summary>
public sealed record TransientRule(byte? Opcode, uint? Nsid, NvmeStatus Status, FaultTrigger Trigger)
{
    public int Id { get; init; }
    public int Fired { get; init; }
}

/// <summary>
/// The command-level faults armed on a target: media errors on LBA ranges, latency per opcode and transient
/// failures. The I/O path reads only <see cref="Armed"/> (one volatile field) unless something is armed; the rest
/// takes a lock, which is the price of an armed fault, not of normal I/O.
/// </summary>
public sealed class FaultPlan
{
    private readonly Lock _lock = new();
    private readonly List<MediaErrorRule> _media = [];
    private readonly List<LatencyRule> _latency = [];
    private readonly List<TransientRule> _transient = [];
    private Random _random = new();
    private int _nextId = 1;
    private int _externalArms;
    private volatile bool _armed;

    /// <summary>True while any rule (or an external fault such as a fatal controller) is armed.</summary>
    public bool Armed => _armed;

    /// <summary>Makes random triggers reproducible.</summary>
    public void Seed(int seed)
    {
        lock (_lock) { _random = new Random(seed); }
    }

    public MediaErrorRule Add(MediaErrorRule rule) => Add(_media, rule with { Id = NextId(), Fired = 0 });
    public LatencyRule Add(LatencyRule rule) => Add(_latency, rule with { Id = NextId() });
    public TransientRule Add(TransientRule rule) => Add(_transient, rule with { Id = NextId(), Fired = 0 });

    public IReadOnlyList<MediaErrorRule> MediaErrors { get { lock (_lock) { return [.. _media]; } } }
    public IReadOnlyList<LatencyRule> Latencies { get { lock (_lock) { return [.. _latency]; } } }
    public IReadOnlyList<TransientRule> Transients { get { lock (_lock) { return [.. _transient]; } } }

    /// <summary>Removes the rule with this id (of any kind); false if there is none.</summary>
    public bool Remove(int id)
    {
        lock (_lock)
        {
            int n = _media.RemoveAll(r => r.Id == id) + _latency.RemoveAll(r => r.Id == id) + _transient.RemoveAll(r => r.Id == id);
            Rearm();
            return n > 0;
        }
    }

    /// <summary>Removes every rule.</summary>
    public void Clear()
    {
        lock (_lock)
        {
            _media.Clear();
            _latency.Clear();
            _transient.Clear();
            Rearm();
        }
    }

    /// <summary>Keeps <see cref="Armed"/> true for a fault kept elsewhere (fatal controllers); pair with <see cref="Disarm"/>.</summary>
    public void ArmExternal()
    {
        lock (_lock) { _externalArms++; Rearm(); }
    }

    public void Disarm()
    {
        lock (_lock) { _externalArms = Math.Max(0, _externalArms - 1); Rearm(); }
    }

    /// <summary>A media error for this transfer, if one fires: Unrecovered Read Error for reads, Write Fault for writes.</summary>
    public bool TryMediaError(uint nsid, bool write, ulong slba, ulong nlb, out NvmeStatus status)
    {
        status = default;
        lock (_lock)
        {
            MediaAccess access = write ? MediaAccess.Write : MediaAccess.Read;
            for (int i = 0; i < _media.Count; i++)
            {
                MediaErrorRule r = _media[i];
                if (r.Nsid != nsid || (r.Access & access) == 0 || !r.Overlaps(slba, nlb) || !Fires(r.Trigger))
                {
                    continue;
                }
                _media[i] = r = r with { Fired = r.Fired + 1 };
                if (r.Trigger.Times is { } t && r.Fired >= t)
                {
                    _media.RemoveAt(i);
                    Rearm();
                }
                status = write ? NvmeStatus.WriteFault : NvmeStatus.UnrecoveredReadError;
                if (r.Dnr)
                {
                    status = status.WithDnr();
                }
                return true;
            }
        }
        return false;
    }

    /// <summary>A transient failure for this command, if one fires.</summary>
    public bool TryTransient(uint nsid, byte opcode, out NvmeStatus status)
    {
        status = default;
        lock (_lock)
        {
            for (int i = 0; i < _transient.Count; i++)
            {
                TransientRule r = _transient[i];
                if ((r.Opcode is { } op && op != opcode) || (r.Nsid is { } n && n != nsid) || !Fires(r.Trigger))
                {
                    continue;
                }
                _transient[i] = r = r with { Fired = r.Fired + 1 };
                if (r.Trigger.Times is { } t && r.Fired >= t)
                {
                    _transient.RemoveAt(i);
                    Rearm();
                }
                status = r.Status.WithoutDnr();
                return true;
            }
        }
        return false;
    }

    /// <summary>The delay to add to a command (the sum of every matching rule); zero when none.</summary>
    public TimeSpan Latency(byte opcode)
    {
        lock (_lock)
        {
            double us = 0;
            foreach (LatencyRule r in _latency)
            {
                if (r.Opcode is { } op && op != opcode)
                {
                    continue;
                }
                us += r.Distribution switch
                {
                    LatencyDistribution.Fixed => r.MeanUs,
                    LatencyDistribution.Uniform => r.MinUs + _random.NextDouble() * (r.MaxUs - r.MinUs),
                    LatencyDistribution.Normal => Math.Max(0, r.MeanUs + r.StdDevUs * Gaussian()),
                    LatencyDistribution.Exponential => -r.MeanUs * Math.Log(1 - _random.NextDouble()),
                    _ => 0,
                };
            }
            return TimeSpan.FromMicroseconds(us);
        }
    }

    private double Gaussian()
    {
        // Box–Muller.
        double u1 = 1 - _random.NextDouble(), u2 = _random.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    private bool Fires(FaultTrigger t) => t.Probability is not { } p || _random.NextDouble() < p;

    private int NextId()
    {
        lock (_lock) { return _nextId++; }
    }

    private T Add<T>(List<T> list, T rule)
    {
        lock (_lock)
        {
            list.Add(rule);
            Rearm();
        }
        return rule;
    }

    private void Rearm() => _armed = _externalArms > 0 || _media.Count > 0 || _latency.Count > 0 || _transient.Count > 0;
}
