namespace Zns.Core.Zones;

/// <summary>Receives the zones of a report from <see cref="ZonedNamespace.ReportZones"/>.</summary>
public interface IZoneReportVisitor
{
    /// <summary>
    /// One zone the report's filter selected, with its descriptor extension (empty when the namespace has none).
    /// Called under the namespace's state lock: copy what is needed and return. False ends the report.
    /// </summary>
    bool Visit(in ZoneInfo zone, ReadOnlySpan<byte> extension);
}
