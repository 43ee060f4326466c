using System.Text.Json.Serialization;

namespace Zns.Control;

/// <summary>One namespace as <c>GET /api/namespaces</c> lists it.</summary>
public sealed record NamespaceDto(
    uint Nsid, bool Zoned, int BlockSize, ulong SizeLbas, uint Zones, ulong ZoneSizeLbas, ulong ZoneCapacityLbas,
    uint MaxOpen, uint MaxActive, uint Open, uint Active, Dictionary<string, uint> Conditions, bool WriteProtected,
    WriteLogDto? WriteLog = null);

/// <summary>
/// A namespace's write log (<c>zns serve --write-log</c>): entries, flushes and bytes recorded, the size bound, changes
/// not recorded since it stopped, and why it stopped (null while it records).
/// </summary>
public sealed record WriteLogDto(string Path, long Entries, long Flushes, long Bytes, long MaxBytes, long Dropped, string? Stopped);

/// <summary>One zone: the report fields plus attribute names, per-zone activity and whether a media error is armed in it.</summary>
public sealed record ZoneDto(
    uint Zone, ulong Start, ulong Capacity, ulong WritePointer, bool WritePointerValid, string Condition, int State,
    int AttributeBits, string[] Attributes, long Reads, long Writes, bool MediaFault);

/// <summary>
/// <c>GET /api/namespaces/{nsid}/zones/{zone}</c>: the zone as in the list, plus the last commands that touched it
/// (oldest first) and its descriptor extension (lowercase hex; null when the namespace has none, ZDES 0).
/// </summary>
public sealed record ZoneDetailDto(
    uint Zone, ulong Start, ulong Capacity, ulong WritePointer, bool WritePointerValid, string Condition, int State,
    int AttributeBits, string[] Attributes, long Reads, long Writes, bool MediaFault, RecentCommandDto[] Recent,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? DescriptorExtension);

/// <summary>One command that touched a zone: when it completed (Unix ms), its operation, SLBA, blocks, and <c>success</c> or the status name.</summary>
public sealed record RecentCommandDto(long T, string Op, ulong Slba, uint Blocks, string Status);

/// <summary><c>GET /api/history</c>: one sample per second, oldest first; <c>nsid</c> null for all namespaces summed.</summary>
public sealed record HistoryDto(int IntervalMs, [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] uint? Nsid, HistorySampleDto[] Samples);

/// <summary>One second: rates per second, MB = 10^6 bytes, latency percentiles in µs over the commands completed in it.</summary>
public sealed record HistorySampleDto(
    long T, double ReadIops, double WriteIops, double ReadMBps, double WriteMBps, double P50Us, double P99Us, double P999Us,
    double ResetsPerSec, double FinishesPerSec, ZoneCountsDto Zones);

/// <summary>Zones per condition at the end of a sample.</summary>
public sealed record ZoneCountsDto(uint Empty, uint ImplicitlyOpen, uint ExplicitlyOpen, uint Closed, uint Full, uint ReadOnly, uint Offline);

/// <summary><c>GET /api/namespaces/{nsid}/zones</c>.</summary>
public sealed record ZonesDto(NamespaceDto Namespace, ZoneDto[] Zones);

/// <summary>Every 4xx/5xx answer: what is wrong, naming the field.</summary>
public sealed record ErrorDto(string Error);

/// <summary>A media error rule (request and listing). Defaults: nsid 1, blocks 1, on both, always.</summary>
public sealed class MediaErrorDto
{
    public int? Id { get; set; }
    public uint? Nsid { get; set; }
    public ulong? Lba { get; set; }
    public ulong? Blocks { get; set; }
    /// <summary><c>read</c>, <c>write</c> or <c>both</c>.</summary>
    public string? On { get; set; }
    /// <summary>Fire this many times (1 = once); absent = always.</summary>
    public int? Times { get; set; }
    /// <summary>Fire for each matching command with this probability.</summary>
    public double? Probability { get; set; }
    /// <summary>Set Do Not Retry (default: the host may retry).</summary>
    public bool? Dnr { get; set; }
    public int? Fired { get; set; }
}

/// <summary>A latency rule: <c>us</c> alone is a fixed delay; or a <c>distribution</c> with its parameters.</summary>
public sealed class LatencyDto
{
    public int? Id { get; set; }
    /// <summary>read, write, append, write-zeroes, flush, dsm, zone-send, zone-receive, or absent for every I/O command.</summary>
    public string? Opcode { get; set; }
    /// <summary>fixed, uniform, normal, exponential.</summary>
    public string? Distribution { get; set; }
    public double? Us { get; set; }
    public double? MeanUs { get; set; }
    public double? MinUs { get; set; }
    public double? MaxUs { get; set; }
    public double? StdDevUs { get; set; }
}

/// <summary>A transient failure rule: <c>status</c> is namespace-not-ready or command-aborted (never DNR).</summary>
public sealed class TransientDto
{
    public int? Id { get; set; }
    public string? Opcode { get; set; }
    public uint? Nsid { get; set; }
    public string? Status { get; set; }
    public int? Times { get; set; }
    public double? Probability { get; set; }
    public int? Fired { get; set; }
}

/// <summary>A zone made Read Only or Offline (persisted in the zone state file).</summary>
public sealed class ZoneFaultDto
{
    public uint? Nsid { get; set; }
    public uint? Zone { get; set; }
    /// <summary>readonly or offline.</summary>
    public string? Condition { get; set; }
}

/// <summary><c>PUT /api/namespaces/{nsid}/write-protect</c>: write-protect the namespace or lift the protection.</summary>
public sealed class WriteProtectDto
{
    public bool? Enabled { get; set; }
}

/// <summary>The zone health policy of a namespace.</summary>
public sealed class HealthDto
{
    public uint? Nsid { get; set; }
    public long? FinishRecommendedAfterMs { get; set; }
    public long? ResetRecommendedAfterMs { get; set; }
    /// <summary>Finish Recommended Limit, seconds (Identify FRL).</summary>
    public uint? Frl { get; set; }
    /// <summary>Reset Recommended Limit, seconds (Identify RRL).</summary>
    public uint? Rrl { get; set; }
}

/// <summary>A fault scenario: the body of <c>POST /api/faults</c> and the content of <c>--faults FILE</c>.</summary>
public sealed class FaultScenarioDto
{
    /// <summary>Seeds the random triggers so a run is reproducible.</summary>
    public int? Seed { get; set; }
    public MediaErrorDto[]? MediaErrors { get; set; }
    public LatencyDto[]? Latency { get; set; }
    public TransientDto[]? Transient { get; set; }
    public ZoneFaultDto[]? Zones { get; set; }
    public HealthDto[]? Health { get; set; }
    /// <summary>A power cut armed at a command count or after a number of flushes (<c>atCommand</c> or <c>afterFlushes</c>).</summary>
    public PowerCutDto? PowerCut { get; set; }
}

/// <summary>
/// <c>POST /api/faults/power-cut</c> (a cut now, or armed with <c>atCommand</c>/<c>afterFlushes</c>) and the
/// <c>powerCut</c> entry of a scenario.
/// </summary>
public sealed class PowerCutDto
{
    /// <summary>Only this namespace drops data (every controller loses power anyway); absent: every namespace.</summary>
    public uint? Nsid { get; set; }
    /// <summary>none (default), all or random.</summary>
    public string? Keep { get; set; }
    /// <summary>With keep random: the last kept write of a zone is cut at a block boundary.</summary>
    public bool? Torn { get; set; }
    /// <summary>Seeds the random choices; absent: a random seed, reported.</summary>
    public ulong? Seed { get; set; }
    /// <summary>How long the device stays off (0..3600000 ms, default 0).</summary>
    public long? OffMs { get; set; }
    /// <summary>Arm: cut at the N-th I/O command from now (not executed).</summary>
    public long? AtCommand { get; set; }
    /// <summary>Arm: cut right after the N-th Flush from now.</summary>
    public long? AfterFlushes { get; set; }
}

/// <summary>One zone a power cut dropped data of.</summary>
public sealed record ZoneCutDto(uint Zone, ulong WritePointerBefore, ulong DurableWritePointer, ulong WritePointerAfter, ulong BlocksDropped,
    bool Torn, bool BlockGranularity, string StateBefore, string StateAfter);

/// <summary>What a power cut dropped in one namespace.</summary>
public sealed record NamespaceCutDto(uint Nsid, ulong BlocksDropped, ulong BlocksKept, ZoneCutDto[] Zones);

/// <summary>One power cut.</summary>
public sealed record PowerCutReportDto(int Sequence, DateTimeOffset At, string Trigger, string Keep, bool Torn, ulong Seed, int OffMs,
    int Controllers, NamespaceCutDto[] Namespaces);

/// <summary><c>GET /api/faults/power-cuts</c>: the armed cut, the last cuts (oldest first) and whether power is off now.</summary>
public sealed record PowerCutsDto(PowerCutDto? Armed, PowerCutReportDto[] Cuts, bool PoweredOff);

/// <summary><c>GET /api/faults</c>: what is armed now.</summary>
public sealed record FaultsDto(MediaErrorDto[] MediaErrors, LatencyDto[] Latency, TransientDto[] Transient, int FatalControllers);

/// <summary><c>POST /api/faults/drop-connections</c>.</summary>
public sealed class DropConnectionsDto
{
    /// <summary>Drop the admin queues too (the host then reconnects the whole controller).</summary>
    public bool? Admin { get; set; }
}

/// <summary><c>POST /api/faults/controller-fatal</c>.</summary>
public sealed class ControllerFatalDto
{
    /// <summary>stall (commands never complete) or drop (connections closed).</summary>
    public string? Then { get; set; }
}

/// <summary>How many controllers an action touched.</summary>
public sealed record AffectedDto(int Controllers);

/// <summary>Counters of one namespace since the target started.</summary>
public sealed record NamespaceStatsDto(
    uint Nsid, long Reads, long Writes, long Appends, long ReadBytes, long WrittenBytes, long OtherCommands,
    Dictionary<string, long> Errors, uint Open, uint Active, Dictionary<string, uint> Conditions);

/// <summary><c>GET /api/stats</c>.</summary>
public sealed record StatsDto(NamespaceStatsDto[] Namespaces, int Controllers, int Queues, int Connections);

/// <summary>One zone map update: zones whose cell changed, as [zone, state, fill‰, attribute bits, reads, writes, media fault 0/1].</summary>
public sealed record MapUpdateDto(uint Nsid, uint Zones, bool Full, long[][] Cells);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    WriteIndented = false)]
[JsonSerializable(typeof(NamespaceDto[]))]
[JsonSerializable(typeof(NamespaceDto))]
[JsonSerializable(typeof(ZonesDto))]
[JsonSerializable(typeof(ZoneDto))]
[JsonSerializable(typeof(ZoneDetailDto))]
[JsonSerializable(typeof(HistoryDto))]
[JsonSerializable(typeof(ErrorDto))]
[JsonSerializable(typeof(FaultScenarioDto))]
[JsonSerializable(typeof(FaultsDto))]
[JsonSerializable(typeof(DropConnectionsDto))]
[JsonSerializable(typeof(ControllerFatalDto))]
[JsonSerializable(typeof(AffectedDto))]
[JsonSerializable(typeof(PowerCutDto))]
[JsonSerializable(typeof(PowerCutsDto))]
[JsonSerializable(typeof(HealthDto))]
[JsonSerializable(typeof(WriteProtectDto))]
[JsonSerializable(typeof(StatsDto))]
[JsonSerializable(typeof(MapUpdateDto))]
public sealed partial class ControlJson : JsonSerializerContext;
