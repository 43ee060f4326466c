using System.Collections.Immutable;
using System.Globalization;
using Zns.Core.Zones;

namespace Zns.Core.Timing;

/// <summary>How a namespace's completions are timed.</summary>
public enum TimingMode
{
    /// <summary>As fast as the backstore (the default).</summary>
    Off,

    /// <summary>One latency per opcode, like null_blk's <c>completion_nsec</c>; no queueing.</summary>
    Fixed,

    /// <summary>The parallel-unit model with parameters derived from measured ZN540 data.</summary>
    Zn540,

    /// <summary>The parallel-unit model with only the parameters given (everything else costs nothing).</summary>
    Custom,
}

/// <summary>
/// The timing of one namespace: a run-time property, never part of the stored geometry. Options use QEMU-style
/// names (<c>timing=zn540</c>, <c>timing.read_us=80</c>); times are in microseconds unless the name says
/// otherwise, bandwidths in MB/s (10^6 bytes per second), sizes in KiB. 0 means "costs nothing".
/// </summary>
public sealed record TimingOptions
{
    public static readonly TimingOptions Off = new();

    public TimingMode Mode { get; init; }

    /// <summary><c>timing.read_us</c>: latency of a 4 KiB read on an idle device.</summary>
    public double ReadUs { get; init; }

    /// <summary><c>timing.read_busy_us</c>: how long a read keeps its parallel unit busy (part of read_us).</summary>
    public double ReadBusyUs { get; init; }

    /// <summary><c>timing.write_us</c>: write latency into the write buffer, before the transfer time.</summary>
    public double WriteUs { get; init; }

    /// <summary><c>timing.append_us</c>: the same for Zone Append.</summary>
    public double AppendUs { get; init; }

    /// <summary><c>timing.xfer_mbps</c>: host-to-device transfer rate of one command's data (adds to write/append latency).</summary>
    public double XferMbps { get; init; }

    /// <summary><c>timing.write_cmd_us</c>: controller time per write command, shared by the whole device.</summary>
    public double WriteCmdUs { get; init; }

    /// <summary><c>timing.append_cmd_us</c>: controller time per Zone Append, shared by the whole device.</summary>
    public double AppendCmdUs { get; init; }

    /// <summary><c>timing.read_mbps</c>: read bandwidth ceiling of the device.</summary>
    public double ReadMbps { get; init; }

    /// <summary><c>timing.write_mbps</c>: write bandwidth ceiling of the device (writes, appends and finish padding).</summary>
    public double WriteMbps { get; init; }

    /// <summary><c>timing.channels</c>: parallel units (channels × dies) of the device.</summary>
    public int Channels { get; init; } = 1;

    /// <summary><c>timing.zone_width</c>: parallel units a zone is striped over (≤ channels).</summary>
    public int ZoneWidth { get; init; } = 1;

    /// <summary><c>timing.page_kib</c>: program unit (and stripe unit) per parallel unit.</summary>
    public int PageKib { get; init; } = 16;

    /// <summary><c>timing.program_us</c>: how long programming one page keeps its unit busy.</summary>
    public double ProgramUs { get; init; }

    /// <summary><c>timing.write_buffer_kib</c>: per-zone write buffer; a write waits when it is full of unprogrammed pages.</summary>
    public int WriteBufferKib { get; init; } = 512;

    /// <summary><c>timing.open_us</c>: explicit Open.</summary>
    public double OpenUs { get; init; }

    /// <summary><c>timing.close_us</c>: Close.</summary>
    public double CloseUs { get; init; }

    /// <summary><c>timing.mgmt_us</c>: zone actions with no media work (finish or reset of an Empty zone, offline, descriptor extension), Flush and Zone Management Receive.</summary>
    public double MgmtUs { get; init; }

    /// <summary><c>timing.finish_ms</c>: Finish of a zone holding data, before padding the rest of its capacity.</summary>
    public double FinishMs { get; init; }

    /// <summary><c>timing.finish_pad_mbps</c>: rate at which Finish pads the unwritten capacity (0: no padding time).</summary>
    public double FinishPadMbps { get; init; }

    /// <summary>
    /// Reset latency by data written in the zone: (KiB written, µs) points, interpolated linearly and extended flat.
    /// <c>timing.reset_ms=X</c> makes it the constant X.
    /// </summary>
    public ImmutableArray<(double Kib, double Us)> ResetCurve { get; init; } = [];

    /// <summary>Whether completions are timed at all.</summary>
    public bool Enabled => Mode != TimingMode.Off;

    /// <summary>The ZN540 preset (parameters from <c>zn540.json</c>).</summary>
    public static TimingOptions Zn540 => Zn540Preset.Timing;

    /// <summary>Sets one <c>timing</c> or <c>timing.*</c> option. Throws <see cref="OptionException"/> naming it.</summary>
    public TimingOptions With(string key, string value)
    {
        string name = key.Trim();
        if (name == "timing")
        {
            return value.Trim().ToLowerInvariant() switch
            {
                "off" => Off,
                "fixed" => new TimingOptions { Mode = TimingMode.Fixed },
                "zn540" => Zn540,
                "custom" => new TimingOptions { Mode = TimingMode.Custom },
                _ => throw new OptionException(name, $"unknown timing '{value}' (use off, fixed, zn540 or custom)"),
            };
        }
        if (Mode == TimingMode.Off)
        {
            throw new OptionException(name, "give timing=fixed, zn540 or custom before timing parameters");
        }
        return name switch
        {
            // Like null_blk's completion_nsec: every opcode at once; per-opcode options given later override.
            "timing.latency_us" => Latency(Number(name, value)),
            "timing.read_us" => this with { ReadUs = Number(name, value) },
            "timing.read_busy_us" => this with { ReadBusyUs = Number(name, value) },
            "timing.write_us" => this with { WriteUs = Number(name, value) },
            "timing.append_us" => this with { AppendUs = Number(name, value) },
            "timing.xfer_mbps" => this with { XferMbps = Number(name, value) },
            "timing.write_cmd_us" => this with { WriteCmdUs = Number(name, value) },
            "timing.append_cmd_us" => this with { AppendCmdUs = Number(name, value) },
            "timing.read_mbps" => this with { ReadMbps = Number(name, value) },
            "timing.write_mbps" => this with { WriteMbps = Number(name, value) },
            "timing.channels" => this with { Channels = Count(name, value, 1, 4096) },
            "timing.zone_width" => this with { ZoneWidth = Count(name, value, 1, 4096) },
            "timing.page_kib" => this with { PageKib = Count(name, value, 4, 4096) },
            "timing.program_us" => this with { ProgramUs = Number(name, value) },
            "timing.write_buffer_kib" => this with { WriteBufferKib = Count(name, value, 4, 1 << 20) },
            "timing.open_us" => this with { OpenUs = Number(name, value) },
            "timing.close_us" => this with { CloseUs = Number(name, value) },
            "timing.mgmt_us" => this with { MgmtUs = Number(name, value) },
            "timing.finish_ms" => this with { FinishMs = Number(name, value) },
            "timing.finish_pad_mbps" => this with { FinishPadMbps = Number(name, value) },
            "timing.reset_ms" => this with { ResetCurve = [(0, Number(name, value) * 1000)] },
            _ => throw new OptionException(name, $"unknown option '{name}'"),
        };
    }

    /// <summary>Checks what a single option cannot: the zone width fits the device.</summary>
    public void Validate()
    {
        if (Enabled && ZoneWidth > Channels)
        {
            throw new OptionException("timing.zone_width", $"{ZoneWidth} is more than timing.channels ({Channels})");
        }
    }

    private TimingOptions Latency(double us) => this with
    {
        ReadUs = us, WriteUs = us, AppendUs = us, OpenUs = us, CloseUs = us, MgmtUs = us, FinishMs = us / 1000,
        ResetCurve = [(0, us)],
    };

    private static double Number(string option, string text) =>
        double.TryParse(text.Trim(), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double v) && v >= 0 && v < 1e9
            ? v : throw new OptionException(option, $"invalid number '{text}' (a non-negative decimal)");

    private static int Count(string option, string text, int min, int max) =>
        int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v >= min && v <= max
            ? v : throw new OptionException(option, $"invalid number '{text}' (a whole number from {min} to {max})");

    /// <summary>One line describing the timing, for <c>zns serve</c>'s banner.</summary>
    public string Describe() => Mode switch
    {
        TimingMode.Off => "timing off",
        TimingMode.Fixed => string.Create(CultureInfo.InvariantCulture, $"timing fixed (read {ReadUs} us, write {WriteUs} us, append {AppendUs} us)"),
        _ => string.Create(CultureInfo.InvariantCulture,
            $"timing {Mode.ToString().ToLowerInvariant()} ({Channels} units, zone width {ZoneWidth}, read {ReadUs} us, write {WriteUs} us, {WriteMbps} MB/s)"),
    };
}
