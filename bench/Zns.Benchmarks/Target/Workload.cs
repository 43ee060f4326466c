using System.Globalization;

namespace Zns.Benchmarks.Target;

internal enum WorkloadKind { Read, Write, Append }

/// <summary>One row of the target table: operation, transfer size, queue depth per connection, connections.</summary>
internal sealed record Workload(WorkloadKind Kind, int Size, int QueueDepth, int Connections)
{
    public string Name => string.Create(CultureInfo.InvariantCulture,
        $"{Kind.ToString().ToLowerInvariant()} {Size / 1024}K QD{QueueDepth}");

    /// <summary>Bytes the host sends per I/O in the bare loop (72-byte request + write payload).</summary>
    public int BareRequestLength => Layout.CapsuleCmd + (Kind == WorkloadKind.Read ? 0 : Size);

    /// <summary>Bytes the target sends back per I/O: C2HData header + data + CapsuleResp for reads, CapsuleResp otherwise.</summary>
    public int BareResponseLength => Kind == WorkloadKind.Read ? Layout.DataHeader + Size + Layout.CapsuleResp : Layout.CapsuleResp;

    public string ToArgs() => string.Create(CultureInfo.InvariantCulture, $"{Kind} {Size} {QueueDepth} {Connections}");

    public static Workload Parse(ReadOnlySpan<string> a) =>
        new(Enum.Parse<WorkloadKind>(a[0]), int.Parse(a[1], CultureInfo.InvariantCulture), int.Parse(a[2], CultureInfo.InvariantCulture),
            int.Parse(a[3], CultureInfo.InvariantCulture));
}

/// <summary>Namespace layout and PDU sizes shared by the server and client sides.</summary>
internal static class Layout
{
    public const int CapsuleCmd = 72;
    public const int CapsuleResp = 24;
    public const int DataHeader = 24;

    public const int BlockSize = 4096;
    public const long ZoneSize = 16L << 20;
    public const int ZoneBlocks = (int)(ZoneSize / BlockSize);
    public const long NamespaceSize = 256 * ZoneSize;     // 4 GiB, RAM allocated lazily
    public const int ReadZones = 4;                        // zones 0..3 hold data for reads
    public const int WriteZoneBase = 8;                    // one zone per outstanding write: up to 4 x 32
    public const int WriteZoneCount = 128;
    public const int AppendZoneBase = 192;                 // ring of zones for the shared append zone
    public const int AppendZoneCount = 64;
    public const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:6d1f2c9a-0b7e-4f43-9a51-3c2b8e0f7a11";
    public static readonly Guid HostId = Guid.Parse("6d1f2c9a-0b7e-4f43-9a51-3c2b8e0f7a11");
}
