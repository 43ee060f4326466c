using System.Collections.Concurrent;
using Zns.Core.Timing;
using Zns.Core.Zones;
using Zns.Nvme.Layouts;
using Zns.Nvme;

namespace Zns.Target.Controller;

/// <summary>A namespace with its NSID and the identifiers derived once from its persisted UUID.</summary>
internal sealed class NamespaceInfo
{
    public NamespaceInfo(uint nsid, ZonedNamespace ns)
    {
        Nsid = nsid;
        Namespace = ns;
        Csi = ns.IsZoned ? Zns.Nvme.Layouts.Csi.Zoned : Zns.Nvme.Layouts.Csi.Nvm;
        // UUID in RFC 4122 (big-endian) byte order, as nvme-cli prints it. Without an nguid option the NGUID uses the
        // same 16 bytes: both are then stable across restarts (the host rejects identifiers that change) and unique
        // per namespace.
        Uuid = (ns.Options.Uuid ?? ns.Uuid).ToByteArray(bigEndian: true);
        Nguid = ns.Options.Nguid is { } nguid ? nguid.ToArray() : Uuid;
        Eui64 = ns.Options.Eui64;
        ZoneSendDataLength = ns.Geometry.DescriptorExtensionSize;
        DataFormat = new NamespaceDataFormat(ns.Geometry.BlockShift, ZoneSendDataLength, ns.Geometry.Metadata);
        SetTiming(ns.Options.Timing);
    }

    /// <summary>The namespace's timing model, or null when timing is off (the command path then does nothing extra).</summary>
    public TimingModel? Timing => Volatile.Read(ref _timing);

    private TimingModel? _timing;

    public void SetTiming(TimingOptions timing) =>
        Volatile.Write(ref _timing, timing.Enabled ? new TimingModel(timing, Namespace.Geometry) : null);

    public uint Nsid { get; }
    public ZonedNamespace Namespace { get; }
    public byte Csi { get; }
    public byte[] Uuid { get; }
    public byte[] Nguid { get; }
    public ulong Eui64 { get; }
    public int ZoneSendDataLength { get; }

    /// <summary>What command data lengths depend on in this namespace (<see cref="CommandData.Io"/>).</summary>
    public NamespaceDataFormat DataFormat { get; }

    /// <summary>
    /// Write protected (Identify NSATTR bit 0): commands that would modify the namespace complete with Namespace is
    /// Write Protected. Kept by the namespace (in its zone state file); set through <see cref="NvmeSubsystem.SetWriteProtected"/>.
    /// </summary>
    public bool WriteProtected => Namespace.WriteProtected;

    public NamespaceIdentity Identity
    {
        get
        {
            ZoneGeometry g = Namespace.Geometry;
            return new NamespaceIdentity(
                g.NamespaceSizeLbas, g.BlockShift, Nguid, Namespace.IsZoned, g.ZoneSizeLbas, g.MaxActive, g.MaxOpen,
                g.CrossRead, g.DescriptorExtensionSize, Eui64, g.Mssrl, g.Mcl, g.Msrc,
                (ushort)g.ZrwaSizeLbas, (ushort)g.ZrwaFlushGranularityLbas, g.ZrwaResourcesReported, WriteProtected, g.Metadata);
        }
    }
}
