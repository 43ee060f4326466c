using System.Globalization;
using Zns.Core.Faults;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Core.Zones;
using Zns.Target.Metrics;
using Zns.Target.Controller;

namespace Zns.Control;

/// <summary>
/// What the management endpoint does, independent of HTTP: zone reports, zone faults and attributes, fault rules,
/// health policies and statistics of one <see cref="NvmeTarget"/>. Every refusal is a <see cref="ControlException"/>
/// naming the field.
/// </summary>
/// <param name="target">The target it manages.</param>
/// <param name="historyTimer">Whether the endpoint ticks <see cref="Sampler"/> every second (tests tick it themselves).</param>
public sealed class ControlService(NvmeTarget target, bool historyTimer = true)
{
    private static readonly string[] ConditionNames =
        ["", "empty", "implicitly_opened", "explicitly_opened", "closed", "", "", "", "", "", "", "", "", "read_only", "full", "offline"];

    private static readonly (string Name, byte Opcode)[] Opcodes =
    [
        ("read", IoOpcode.Read), ("write", IoOpcode.Write), ("append", IoOpcode.ZoneAppend), ("write-zeroes", IoOpcode.WriteZeroes),
        ("flush", IoOpcode.Flush), ("dsm", IoOpcode.DatasetManagement), ("zone-send", IoOpcode.ZoneManagementSend),
        ("zone-receive", IoOpcode.ZoneManagementReceive),
    ];

    public NvmeTarget Target => target;

    /// <summary>The one-second samples behind <c>GET /api/history</c>.</summary>
    public HistorySampler Sampler { get; } = new(target);

    /// <summary>Whether the endpoint starts <see cref="Sampler"/>'s one-second timer.</summary>
    public bool HistoryTimer => historyTimer;

    private FaultPlan Faults => target.Faults;

    public NamespaceDto[] Namespaces() => [.. Enumerable.Range(1, target.Subsystem.Namespaces.Count).Select(i => Describe((uint)i))];

    public NamespaceDto Describe(uint nsid)
    {
        ZonedNamespace ns = Namespace(nsid, "nsid");
        ZoneGeometry g = ns.Geometry;
        return new NamespaceDto(nsid, ns.IsZoned, g.BlockSize, g.NamespaceSizeLbas, ns.IsZoned ? g.ZoneCount : 0,
            g.ZoneSizeLbas, g.ZoneCapacityLbas, g.MaxOpen, g.MaxActive, ns.OpenZoneCount, ns.ActiveZoneCount, Conditions(ns),
            target.Subsystem.IsWriteProtected(nsid),
            ns.WriteLog is { } log ? new WriteLogDto(log.Path, log.Entries, log.Flushes, log.Bytes, log.MaxBytes, log.Dropped, log.StopReason) : null);
    }

    /// <summary>
    /// Write-protects a namespace or lifts the protection (Identify NSATTR bit 0; writes then fail with Namespace is
    /// Write Protected); a change raises a Namespace Attribute Changed notice, after which the host re-reads Identify.
    /// </summary>
    public NamespaceDto SetWriteProtect(uint nsid, WriteProtectDto request)
    {
        Namespace(nsid, "nsid");
        bool enabled = request.Enabled ?? throw ControlException.BadField("enabled", "required: true or false");
        target.Subsystem.SetWriteProtected(nsid, enabled);
        return Describe(nsid);
    }

    public ZonesDto Zones(uint nsid)
    {
        ZonedNamespace ns = ZonedOnly(nsid, "nsid");
        var zones = new ZoneInfo[ns.Geometry.ZoneCount];
        ns.CopyZones(zones);
        ZoneActivity? activity = target.Metrics.Activity(nsid);
        var media = Faults.MediaErrors.Where(r => r.Nsid == nsid).ToArray();
        return new ZonesDto(Describe(nsid), [.. zones.Select(z => Zone(ns, z, activity, media))]);
    }

    public ZoneDto Zone(uint nsid, uint zone)
    {
        ZonedNamespace ns = ZonedOnly(nsid, "nsid");
        CheckZone(ns, zone, "zone");
        var media = Faults.MediaErrors.Where(r => r.Nsid == nsid).ToArray();
        return Zone(ns, ns.GetZone(zone), target.Metrics.Activity(nsid), media);
    }

    /// <summary>A zone with its last commands and its descriptor extension.</summary>
    public ZoneDetailDto ZoneDetail(uint nsid, uint zone)
    {
        ZoneDto z = Zone(nsid, zone);
        ZonedNamespace ns = target.Subsystem.Namespaces[(int)nsid - 1];
        RecentCommandDto[] recent = [.. (target.Metrics.Recent(nsid)?.Read(zone) ?? [])
            .Select(c => new RecentCommandDto(c.UnixMs, c.Operation, c.Slba, c.Blocks, c.Status))];
        string? extension = ns.Geometry.DescriptorExtensionSize == 0 ? null : Convert.ToHexStringLower(ns.GetDescriptorExtension(zone));
        return new ZoneDetailDto(z.Zone, z.Start, z.Capacity, z.WritePointer, z.WritePointerValid, z.Condition, z.State,
            z.AttributeBits, z.Attributes, z.Reads, z.Writes, z.MediaFault, recent, extension);
    }

    /// <summary>
    /// <c>GET /api/history</c>: <paramref name="nsidText"/> (absent for all namespaces) and <paramref name="secondsText"/>
    /// (1..600, default 300) as given in the query.
    /// </summary>
    public HistoryDto History(string? nsidText, string? secondsText)
    {
        uint? nsid = null;
        if (nsidText is not null)
        {
            nsid = uint.TryParse(nsidText, NumberStyles.None, CultureInfo.InvariantCulture, out uint n) && n >= 1 && n <= target.Subsystem.Namespaces.Count
                ? n : throw ControlException.BadField("nsid", $"'{nsidText}' is not a namespace (1..{target.Subsystem.Namespaces.Count})");
        }
        int seconds = 300;
        if (secondsText is not null)
        {
            seconds = int.TryParse(secondsText, NumberStyles.None, CultureInfo.InvariantCulture, out int s) && s >= 1 && s <= HistorySampler.Capacity
                ? s : throw ControlException.BadField("seconds", $"'{secondsText}' is not a whole number of seconds from 1 to {HistorySampler.Capacity}");
        }
        return new HistoryDto(HistorySampler.IntervalMs, nsid, [.. Sampler.Samples(nsid, seconds).Select(s => new HistorySampleDto(
            s.UnixMs, Math.Round(s.ReadIops, 3), Math.Round(s.WriteIops, 3), Math.Round(s.ReadMBps, 6), Math.Round(s.WriteMBps, 6),
            s.P50Us, s.P99Us, s.P999Us, Math.Round(s.ResetsPerSec, 3), Math.Round(s.FinishesPerSec, 3),
            new ZoneCountsDto(s.Zones.Empty, s.Zones.ImplicitlyOpened, s.Zones.ExplicitlyOpened, s.Zones.Closed, s.Zones.Full,
                s.Zones.ReadOnly, s.Zones.Offline)))]);
    }

    private static ZoneDto Zone(ZonedNamespace ns, ZoneInfo z, ZoneActivity? activity, MediaErrorRule[] media)
    {
        var names = new List<string>();
        if ((z.Attributes & ZoneAttributes.FinishedByController) != 0) { names.Add("zfc"); }
        if ((z.Attributes & ZoneAttributes.FinishRecommended) != 0) { names.Add("fzr"); }
        if ((z.Attributes & ZoneAttributes.ResetRecommended) != 0) { names.Add("rzr"); }
        if ((z.Attributes & ZoneAttributes.ZrwaValid) != 0) { names.Add("zrwav"); }
        if ((z.Attributes & ZoneAttributes.DescriptorExtensionValid) != 0) { names.Add("zdev"); }
        ulong size = ns.Geometry.ZoneSizeLbas;
        bool fault = media.Any(r => r.FirstLba < z.StartLba + size && z.StartLba < r.FirstLba + r.Blocks);
        return new ZoneDto(z.Index, z.StartLba, z.Capacity, z.WritePointer, z.WritePointerValid, ConditionNames[(int)z.State],
            (int)z.State, (int)z.Attributes, [.. names], activity?.Reads(z.Index) ?? 0, activity?.Writes(z.Index) ?? 0, fault);
    }

    /// <summary>
    /// A zone action on the controller's own account: readonly, offline, repair (Read Only/Offline back to Empty),
    /// finish (Full with Zone Finished by Controller), finish-recommended, reset-recommended, clear-recommended.
    /// </summary>
    public ZoneDto ZoneAction(uint nsid, uint zone, string action)
    {
        ZonedNamespace ns = ZonedOnly(nsid, "nsid");
        CheckZone(ns, zone, "zone");
        NvmeStatus status = action switch
        {
            "readonly" => ns.MakeZoneReadOnly(zone),
            "offline" => ns.MakeZoneOffline(zone),
            "repair" => ns.RepairZone(zone),
            "finish" => ns.FinishZoneByController(zone),
            "finish-recommended" => ns.SetZoneRecommendation(zone, ZoneAttributes.FinishRecommended),
            "reset-recommended" => ns.SetZoneRecommendation(zone, ZoneAttributes.ResetRecommended),
            "clear-recommended" => ns.ClearZoneRecommendation(zone, ZoneAttributes.FinishRecommended | ZoneAttributes.ResetRecommended),
            _ => throw ControlException.BadField("action", $"'{action}' is not one of readonly, offline, repair, finish, finish-recommended, reset-recommended, clear-recommended"),
        };
        if (status.WithoutDnr() == NvmeStatus.InvalidZoneStateTransition)
        {
            throw new ControlException(409, $"zone: {action} is not possible for zone {zone} in condition {ConditionNames[(int)ns.GetZone(zone).State]}");
        }
        if (!status.IsSuccess)
        {
            throw new ControlException(500, $"zone: {action} of zone {zone} failed: {status}");
        }
        return Zone(nsid, zone);
    }

    // ---- faults ----------------------------------------------------------------------------------------------

    public FaultsDto ListFaults() => new(
        [.. Faults.MediaErrors.Select(r => new MediaErrorDto
        {
            Id = r.Id, Nsid = r.Nsid, Lba = r.FirstLba, Blocks = r.Blocks, On = r.Access switch { MediaAccess.Read => "read", MediaAccess.Write => "write", _ => "both" },
            Times = r.Trigger.Times, Probability = r.Trigger.Probability, Dnr = r.Dnr, Fired = r.Fired,
        })],
        [.. Faults.Latencies.Select(r => new LatencyDto
        {
            Id = r.Id, Opcode = r.Opcode is { } o ? OpcodeName(o) : null, Distribution = r.Distribution.ToString().ToLowerInvariant(),
            MeanUs = r.MeanUs, MinUs = r.Distribution == LatencyDistribution.Uniform ? r.MinUs : null,
            MaxUs = r.Distribution == LatencyDistribution.Uniform ? r.MaxUs : null, StdDevUs = r.Distribution == LatencyDistribution.Normal ? r.StdDevUs : null,
        })],
        [.. Faults.Transients.Select(r => new TransientDto
        {
            Id = r.Id, Opcode = r.Opcode is { } o ? OpcodeName(o) : null, Nsid = r.Nsid,
            Status = r.Status == NvmeStatus.NamespaceNotReady ? "namespace-not-ready" : "command-aborted",
            Times = r.Trigger.Times, Probability = r.Trigger.Probability, Fired = r.Fired,
        })],
        target.Subsystem.FatalControllerCount);

    /// <summary>Validates a whole scenario first (nothing is applied if any part is wrong), then arms it.</summary>
    public FaultsDto Apply(FaultScenarioDto scenario)
    {
        var media = (scenario.MediaErrors ?? []).Select((m, i) => ToRule(m, $"mediaErrors[{i}]")).ToArray();
        var latency = (scenario.Latency ?? []).Select((l, i) => ToRule(l, $"latency[{i}]")).ToArray();
        var transient = (scenario.Transient ?? []).Select((t, i) => ToRule(t, $"transient[{i}]")).ToArray();
        var zones = (scenario.Zones ?? []).Select((z, i) => ToZoneFault(z, $"zones[{i}]")).ToArray();
        var health = (scenario.Health ?? []).Select((h, i) => (Nsid: h.Nsid ?? 1, Policy: ToPolicy(h, $"health[{i}]"))).ToArray();
        PowerCutArm? cut = scenario.PowerCut is { } p ? ToArm(p, "powerCut", requireTrigger: true) : null;
        if (scenario.Seed is { } seed)
        {
            Faults.Seed(seed);
        }
        foreach (var r in media) { Faults.Add(r); }
        foreach (var r in latency) { Faults.Add(r); }
        foreach (var r in transient) { Faults.Add(r); }
        foreach (var (nsid, zone, condition) in zones) { ZoneAction(nsid, zone, condition); }
        foreach (var (nsid, policy) in health) { target.Subsystem.HealthMonitor(nsid).Policy = policy; }
        if (cut is not null)
        {
            target.Subsystem.ArmPowerCut(cut);
        }
        return ListFaults();
    }

    public void RemoveFault(string id)
    {
        if (!int.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || !Faults.Remove(n))
        {
            throw new ControlException(404, $"id: no fault rule {id}");
        }
    }

    public void ClearFaults()
    {
        Faults.Clear();
        target.Subsystem.DisarmPowerCut();
    }

    /// <summary>
    /// <c>POST /api/faults/power-cut</c>: cuts power now, or arms a cut when <c>atCommand</c> or <c>afterFlushes</c>
    /// is given. 409 while power is already off.
    /// </summary>
    public PowerCutsDto PowerCut(PowerCutDto request)
    {
        PowerCutArm arm = ToArm(request, "powerCut", requireTrigger: false);
        if (arm.AtCommand is not null || arm.AfterFlushes is not null)
        {
            target.Subsystem.ArmPowerCut(arm);
            return PowerCuts();
        }
        try
        {
            target.Subsystem.CutPower(arm.Nsid, arm.Policy, arm.OffMs, "control API");
        }
        catch (InvalidOperationException e)
        {
            throw new ControlException(409, $"powerCut: {e.Message}");
        }
        catch (IOException e)
        {
            throw new ControlException(500, $"powerCut: {e.Message}");
        }
        return PowerCuts();
    }

    /// <summary><c>GET /api/faults/power-cuts</c>.</summary>
    public PowerCutsDto PowerCuts()
    {
        NvmeSubsystem s = target.Subsystem;
        PowerCutDto? armed = s.ArmedPowerCut is { } a ? new PowerCutDto
        {
            Nsid = a.Nsid, Keep = PowerCutPolicy.KeepName(a.Policy.Keep), Torn = a.Policy.Torn, Seed = a.Policy.Seed, OffMs = a.OffMs,
            AtCommand = a.AtCommand, AfterFlushes = a.AfterFlushes,
        } : null;
        return new PowerCutsDto(armed, [.. s.PowerCuts.Select(ToDto)], s.IsPoweredOff);
    }

    private static PowerCutReportDto ToDto(SubsystemPowerCut c) => new(c.Sequence, c.At, c.Trigger, PowerCutPolicy.KeepName(c.Policy.Keep),
        c.Policy.Torn, c.Policy.Seed, c.OffMs, c.Controllers,
        [.. c.Namespaces.Select(n => new NamespaceCutDto(n.Nsid, n.Report.BlocksDropped, n.Report.BlocksKept,
            [.. n.Report.Zones.Select(z => new ZoneCutDto(z.Zone, z.WritePointerBefore, z.DurableWritePointer, z.WritePointerAfter, z.BlocksDropped,
                z.Torn, z.BlockGranularity, StateName(z.StateBefore), StateName(z.StateAfter)))]))]);

    private static string StateName(ZoneState s) => s switch
    {
        ZoneState.Empty => "empty", ZoneState.ImplicitlyOpened => "implicitly_opened", ZoneState.ExplicitlyOpened => "explicitly_opened",
        ZoneState.Closed => "closed", ZoneState.Full => "full", ZoneState.ReadOnly => "read_only", ZoneState.Offline => "offline",
        _ => ((int)s).ToString(CultureInfo.InvariantCulture),
    };

    private PowerCutArm ToArm(PowerCutDto p, string at, bool requireTrigger)
    {
        if (p.Nsid is { } nsid)
        {
            Namespace(nsid, $"{at}.nsid");
        }
        PowerCutKeep keep = p.Keep is null ? PowerCutKeep.None
            : PowerCutPolicy.ParseKeep(p.Keep) ?? throw ControlException.BadField($"{at}.keep", $"'{p.Keep}' is not none, all or random");
        var policy = new PowerCutPolicy(keep, p.Torn ?? false, p.Seed ?? (ulong)Random.Shared.NextInt64());
        if (policy.Validate() is string problem)
        {
            throw ControlException.BadField($"{at}.{problem[..problem.IndexOf(':')]}", problem[(problem.IndexOf(':') + 2)..]);
        }
        long offMs = p.OffMs ?? 0;
        if (offMs is < 0 or > NvmeSubsystem.MaxPowerOffMs)
        {
            throw ControlException.BadField($"{at}.offMs", $"{offMs} is not between 0 and {NvmeSubsystem.MaxPowerOffMs}");
        }
        if (p.AtCommand is not null && p.AfterFlushes is not null)
        {
            throw ControlException.BadField($"{at}.atCommand", "give atCommand or afterFlushes, not both");
        }
        if (requireTrigger && p.AtCommand is null && p.AfterFlushes is null)
        {
            throw ControlException.BadField($"{at}.atCommand", "a scenario's power cut needs atCommand or afterFlushes");
        }
        if (p.AtCommand is < 1)
        {
            throw ControlException.BadField($"{at}.atCommand", $"{p.AtCommand} is not a command count of at least 1");
        }
        if (p.AfterFlushes is < 1)
        {
            throw ControlException.BadField($"{at}.afterFlushes", $"{p.AfterFlushes} is not a flush count of at least 1");
        }
        return new PowerCutArm(p.Nsid, policy, (int)offMs, p.AtCommand, p.AfterFlushes);
    }

    public AffectedDto DropConnections(DropConnectionsDto request) => new(target.Subsystem.DropConnections(request.Admin ?? false));

    public AffectedDto ControllerFatal(ControllerFatalDto request) => new(target.Subsystem.InjectControllerFatal(request.Then switch
    {
        null or "stall" => FatalBehavior.Stall,
        "drop" => FatalBehavior.Drop,
        _ => throw ControlException.BadField("then", $"'{request.Then}' is not stall or drop"),
    }));

    public HealthDto Health(uint nsid)
    {
        ZonedOnly(nsid, "nsid");
        var p = target.Subsystem.HealthMonitor(nsid).Policy;
        return new HealthDto
        {
            Nsid = nsid, FinishRecommendedAfterMs = p.FinishRecommendedAfterMs, ResetRecommendedAfterMs = p.ResetRecommendedAfterMs,
            Frl = p.FinishRecommendedLimitSeconds, Rrl = p.ResetRecommendedLimitSeconds,
        };
    }

    public HealthDto SetHealth(uint nsid, HealthDto request)
    {
        ZonedOnly(nsid, "nsid");
        if (request.Nsid is { } n && n != nsid)
        {
            throw ControlException.BadField("nsid", $"{n} differs from the namespace in the path ({nsid})");
        }
        target.Subsystem.HealthMonitor(nsid).Policy = ToPolicy(request, "health");
        return Health(nsid);
    }

    public StatsDto Stats()
    {
        TargetMetrics m = target.Metrics;
        var list = new List<NamespaceStatsDto>();
        for (uint nsid = 1; nsid <= target.Subsystem.Namespaces.Count; nsid++)
        {
            ZonedNamespace ns = target.Subsystem.Namespaces[(int)nsid - 1];
            var reads = m.Totals(nsid, IoOpcode.Read);
            var writes = m.Totals(nsid, IoOpcode.Write);
            var appends = m.Totals(nsid, IoOpcode.ZoneAppend);
            long other = Opcodes.Skip(3).Sum(o => m.Totals(nsid, o.Opcode).Commands);
            list.Add(new NamespaceStatsDto(nsid, reads.Commands, writes.Commands, appends.Commands, reads.Bytes, writes.Bytes + appends.Bytes,
                other, m.Errors(nsid), ns.OpenZoneCount, ns.ActiveZoneCount, Conditions(ns)));
        }
        return new StatsDto([.. list], target.Subsystem.ControllerCount, target.Subsystem.IoQueueCount, m.ConnectionCount?.Invoke() ?? 0);
    }

    // ---- validation ------------------------------------------------------------------------------------------

    public uint ParseNsid(string text) =>
        uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out uint n) && n >= 1 && n <= target.Subsystem.Namespaces.Count
            ? n : throw new ControlException(404, $"nsid: '{text}' is not a namespace (1..{target.Subsystem.Namespaces.Count})");

    public static uint ParseZone(string text) =>
        uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out uint n) ? n : throw ControlException.BadField("zone", $"'{text}' is not a zone number");

    private ZonedNamespace Namespace(uint nsid, string field) =>
        nsid >= 1 && nsid <= target.Subsystem.Namespaces.Count
            ? target.Subsystem.Namespaces[(int)nsid - 1]
            : throw new ControlException(404, $"{field}: {nsid} is not a namespace (1..{target.Subsystem.Namespaces.Count})");

    private ZonedNamespace ZonedOnly(uint nsid, string field)
    {
        ZonedNamespace ns = Namespace(nsid, field);
        return ns.IsZoned ? ns : throw ControlException.BadField(field, $"namespace {nsid} is not zoned");
    }

    private static void CheckZone(ZonedNamespace ns, uint zone, string field)
    {
        if (zone >= ns.Geometry.ZoneCount)
        {
            throw new ControlException(404, $"{field}: {zone} is past the last zone ({ns.Geometry.ZoneCount - 1})");
        }
    }

    private MediaErrorRule ToRule(MediaErrorDto m, string at)
    {
        uint nsid = m.Nsid ?? 1;
        ZonedNamespace ns = Namespace(nsid, $"{at}.nsid");
        ulong lba = m.Lba ?? throw ControlException.BadField($"{at}.lba", "required");
        ulong blocks = m.Blocks ?? 1;
        if (blocks == 0)
        {
            throw ControlException.BadField($"{at}.blocks", "must be at least 1");
        }
        if (lba >= ns.Geometry.NamespaceSizeLbas || blocks > ns.Geometry.NamespaceSizeLbas - lba)
        {
            throw ControlException.BadField($"{at}.lba", $"range {lba}+{blocks} is past the end of namespace {nsid} ({ns.Geometry.NamespaceSizeLbas} blocks)");
        }
        var access = m.On switch
        {
            null or "both" => MediaAccess.Both,
            "read" => MediaAccess.Read,
            "write" => MediaAccess.Write,
            _ => throw ControlException.BadField($"{at}.on", $"'{m.On}' is not read, write or both"),
        };
        if (m.Id is not null || m.Fired is not null)
        {
            throw ControlException.BadField($"{at}.{(m.Id is not null ? "id" : "fired")}", "is assigned by the target");
        }
        return new MediaErrorRule(nsid, lba, blocks, access, Trigger(m.Times, m.Probability, at), m.Dnr ?? false);
    }

    private LatencyRule ToRule(LatencyDto l, string at)
    {
        byte? opcode = l.Opcode is null ? null : ParseOpcode(l.Opcode, $"{at}.opcode");
        string distribution = l.Distribution ?? "fixed";
        double NonNegative(double? v, string name) => v is { } x && x >= 0 && double.IsFinite(x) && x <= 60_000_000
            ? x : throw ControlException.BadField($"{at}.{name}", v is null ? $"required for {distribution}" : "must be between 0 and 60000000 (one minute)");
        if (l.Id is not null)
        {
            throw ControlException.BadField($"{at}.id", "is assigned by the target");
        }
        return distribution switch
        {
            "fixed" => new LatencyRule(opcode, LatencyDistribution.Fixed, NonNegative(l.Us ?? l.MeanUs, "us")),
            "uniform" => UniformRule(opcode, NonNegative(l.MinUs, "minUs"), NonNegative(l.MaxUs, "maxUs"), at),
            "normal" => new LatencyRule(opcode, LatencyDistribution.Normal, NonNegative(l.MeanUs, "meanUs"), StdDevUs: NonNegative(l.StdDevUs, "stdDevUs")),
            "exponential" => new LatencyRule(opcode, LatencyDistribution.Exponential, NonNegative(l.MeanUs, "meanUs")),
            _ => throw ControlException.BadField($"{at}.distribution", $"'{distribution}' is not fixed, uniform, normal or exponential"),
        };
    }

    private static LatencyRule UniformRule(byte? opcode, double min, double max, string at) => max >= min
        ? new LatencyRule(opcode, LatencyDistribution.Uniform, (min + max) / 2, min, max)
        : throw ControlException.BadField($"{at}.maxUs", $"{max} is below minUs {min}");

    private TransientRule ToRule(TransientDto t, string at)
    {
        byte? opcode = t.Opcode is null ? null : ParseOpcode(t.Opcode, $"{at}.opcode");
        if (t.Nsid is { } nsid)
        {
            Namespace(nsid, $"{at}.nsid");
        }
        NvmeStatus status = t.Status switch
        {
            "namespace-not-ready" => NvmeStatus.NamespaceNotReady,
            "command-aborted" => NvmeStatus.AbortRequested,
            null => throw ControlException.BadField($"{at}.status", "required: namespace-not-ready or command-aborted"),
            _ => throw ControlException.BadField($"{at}.status", $"'{t.Status}' is not namespace-not-ready or command-aborted"),
        };
        if (t.Id is not null || t.Fired is not null)
        {
            throw ControlException.BadField($"{at}.{(t.Id is not null ? "id" : "fired")}", "is assigned by the target");
        }
        return new TransientRule(opcode, t.Nsid, status, Trigger(t.Times, t.Probability, at));
    }

    private (uint Nsid, uint Zone, string Condition) ToZoneFault(ZoneFaultDto z, string at)
    {
        uint nsid = z.Nsid ?? 1;
        ZonedNamespace ns = ZonedOnly(nsid, $"{at}.nsid");
        uint zone = z.Zone ?? throw ControlException.BadField($"{at}.zone", "required");
        CheckZone(ns, zone, $"{at}.zone");
        string condition = z.Condition is "readonly" or "offline"
            ? z.Condition : throw ControlException.BadField($"{at}.condition", $"'{z.Condition}' is not readonly or offline");
        return (nsid, zone, condition);
    }

    private ZoneHealthPolicy ToPolicy(HealthDto h, string at)
    {
        if (h.Nsid is { } nsid)
        {
            ZonedOnly(nsid, $"{at}.nsid");
        }
        long Ms(long? v, string name) => v is null or (>= 0 and <= 86_400_000) ? v ?? 0 : throw ControlException.BadField($"{at}.{name}", "must be between 0 and 86400000 (one day)");
        return new ZoneHealthPolicy(Ms(h.FinishRecommendedAfterMs, "finishRecommendedAfterMs"), Ms(h.ResetRecommendedAfterMs, "resetRecommendedAfterMs"),
            h.Frl ?? 0, h.Rrl ?? 0);
    }

    private static FaultTrigger Trigger(int? times, double? probability, string at)
    {
        if (times is < 1)
        {
            throw ControlException.BadField($"{at}.times", "must be at least 1 (leave it out for always)");
        }
        if (probability is { } p && !(p > 0 && p <= 1))
        {
            throw ControlException.BadField($"{at}.probability", "must be in (0, 1]");
        }
        return new FaultTrigger(times, probability);
    }

    private static byte ParseOpcode(string name, string field)
    {
        foreach (var (n, o) in Opcodes)
        {
            if (n == name)
            {
                return o;
            }
        }
        throw ControlException.BadField(field, $"'{name}' is not one of {string.Join(", ", Opcodes.Select(o => o.Name))}");
    }

    private static string OpcodeName(byte opcode) => Opcodes.FirstOrDefault(o => o.Opcode == opcode).Name ?? $"0x{opcode:x2}";

    private static Dictionary<string, uint> Conditions(ZonedNamespace ns)
    {
        if (!ns.IsZoned)
        {
            return [];
        }
        ZoneStateCounts c = ns.CountZones();
        return new()
        {
            ["empty"] = c.Empty, ["implicitly_opened"] = c.ImplicitlyOpened, ["explicitly_opened"] = c.ExplicitlyOpened,
            ["closed"] = c.Closed, ["full"] = c.Full, ["read_only"] = c.ReadOnly, ["offline"] = c.Offline,
        };
    }
}
