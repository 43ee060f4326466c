using System.Collections.Concurrent;
using Zns.Core.Timing;
using Zns.Core.Zones;
using Zns.Nvme.Layouts;
using Zns.Nvme;

namespace Zns.Target.Controller;

/// <summary>
/// An NVM subsystem (or the discovery subsystem): its NQN, its namespaces (NSID 1..N in the order given) and its
/// live controllers. Zone state lives in the namespaces, not in controllers, so it survives host reconnects.
/// </summary>
public sealed partial class NvmeSubsystem
{
    /// <summary>CNTLIDs FFF0h..FFFFh are reserved (FFFFh is the "dynamic controller" wildcard of Connect).</summary>
    internal const ushort MinCntlid = 1, MaxCntlid = 0xFFEF;

    /// <summary>Transfer cap when no namespace limits MDTS (the transport must buffer whole commands).</summary>
    internal const int UnlimitedMdtsDataLength = 8 << 20;

    private readonly ConcurrentDictionary<ushort, NvmeController> _controllers = new();
    private readonly Lock _allocationLock = new();
    private readonly NamespaceInfo[] _namespaces;
    private readonly NamespaceInfo?[] _byNsid = new NamespaceInfo?[MaxNamespaces + 1];

    /// <summary>NN: the largest NSID (QEMU's NVME_MAX_NAMESPACES).</summary>
    internal const uint MaxNamespaces = 256;
    private ushort _nextCntlid = MinCntlid;

    // SMART counters, subsystem-wide so that they survive controller reconnects (512-byte units and commands).
    private long _sectorsRead, _sectorsWritten, _hostReads, _hostWrites;
    private readonly long _createdTimestamp;

    internal NvmeSubsystem(NvmeTarget target, string nqn, bool isDiscovery, IReadOnlyList<ZonedNamespace> namespaces)
    {
        Target = target;
        Nqn = nqn;
        IsDiscovery = isDiscovery;
        Namespaces = namespaces;
        // NSIDs: the namespace's nsid option, else the lowest free one in order (QEMU's nvme_ns_realize).
        _namespaces = new NamespaceInfo[namespaces.Count];
        for (int i = 0; i < namespaces.Count; i++)
        {
            uint nsid = namespaces[i].Options.Nsid;
            if (nsid > MaxNamespaces)
            {
                throw new ArgumentException($"nsid: invalid namespace id (must be between 0 and {MaxNamespaces})");
            }
            if (nsid != 0 && _byNsid[nsid] is not null)
            {
                throw new ArgumentException($"nsid: namespace id '{nsid}' already allocated");
            }
            if (nsid != 0)
            {
                _byNsid[nsid] = _namespaces[i] = new NamespaceInfo(nsid, namespaces[i]);
            }
        }
        for (int i = 0; i < namespaces.Count; i++)
        {
            if (_namespaces[i] is null)
            {
                uint nsid = 1;
                while (_byNsid[nsid] is not null) { nsid++; }
                _byNsid[nsid] = _namespaces[i] = new NamespaceInfo(nsid, namespaces[i]);
            }
        }
        Array.Sort(_namespaces, (a, b) => a.Nsid.CompareTo(b.Nsid));
        if (!isDiscovery)
        {
            foreach (NamespaceInfo info in _namespaces)
            {
                WatchZoneChanges(info);
            }
        }
        Dmrsl = ComputeDmrsl(namespaces);
        Mdts = ComputeMdts(namespaces);
        Zasl = ComputeZasl(namespaces, Mdts);
        MaxIoDataLength = Mdts == 0 ? UnlimitedMdtsDataLength : NamespaceOptions.TransferLimitBytes(Mdts);
        _createdTimestamp = target.Options.TimeProvider.GetTimestamp();
    }

    /// <summary>The subsystem NQN.</summary>
    public string Nqn { get; }

    /// <summary>True for the discovery subsystem.</summary>
    public bool IsDiscovery { get; }

    /// <summary>Namespaces; NSID n is element n−1.</summary>
    public IReadOnlyList<ZonedNamespace> Namespaces { get; }

    /// <summary>Number of live controllers.</summary>
    public int ControllerCount => _controllers.Count;

    internal NvmeTarget Target { get; }

    /// <summary>
    /// Controller MDTS: the smallest of the namespaces' limits (each namespace still enforces its own), because
    /// MDTS is a controller property and the host applies it to every namespace.
    /// </summary>
    internal byte Mdts { get; }

    /// <summary>ZASL for the ZNS Identify Controller structure: the smallest append limit of the zoned namespaces.</summary>
    internal byte Zasl { get; }

    /// <summary>Largest data length of one I/O command (MDTS bytes, at least 4 KiB; 8 MiB when MDTS is unlimited).</summary>
    internal int MaxIoDataLength { get; }

    /// <summary>
    /// Whether a namespace uses the 64-bit guard PI format: only then is CTRATT.ELBAS reported, which sends the host
    /// to the NVM command set Identify Namespace for it.
    /// </summary>
    internal bool HasGuard64Namespace => _namespaces.Any(n => n.DataFormat.Metadata is { HasPi: true, Pif: MetadataFormat.Guard64 });

    internal ReadOnlySpan<NamespaceInfo> NamespaceInfos => _namespaces;

    /// <summary>The namespace for an NSID, or null when the NSID is not an active namespace of this subsystem.</summary>
    internal NamespaceInfo? GetNamespace(uint nsid) => nsid - 1 < MaxNamespaces ? _byNsid[nsid] : null;

    /// <summary>VSL (Verify Size Limit) for the NVM Identify Controller structure: the smallest namespace limit.</summary>
    internal byte Vsl => _namespaces.Length == 0 ? (byte)7 : _namespaces.Min(n => n.Namespace.Geometry.Vsl);

    /// <summary>DMRSL: the largest single Dataset Management range QEMU's block layer takes (2 GiB − 512 B).</summary>
    internal uint Dmrsl { get; }

    private static uint ComputeDmrsl(IReadOnlyList<ZonedNamespace> namespaces)
    {
        const long MaxRequestBytes = (int.MaxValue >> 9) << 9;
        uint dmrsl = 0;
        foreach (ZonedNamespace ns in namespaces)
        {
            uint d = (uint)(MaxRequestBytes / ns.Geometry.BlockSize);
            dmrsl = dmrsl == 0 ? d : Math.Min(dmrsl, d);
        }
        return dmrsl;
    }

    /// <summary>
    /// Changes how namespace <paramref name="nsid"/>'s completions are timed, at once and without reformatting:
    /// commands submitted from now on use the new timing, commands already waiting keep their due times.
    /// Throws <see cref="ArgumentOutOfRangeException"/> for an unknown NSID and <see cref="OptionException"/> for
    /// inconsistent parameters.
    /// </summary>
    public void SetTiming(uint nsid, TimingOptions timing) =>
        (GetNamespace(nsid) ?? throw new ArgumentOutOfRangeException(nameof(nsid), nsid, "no such namespace")).SetTiming(timing);

    /// <summary>The timing namespace <paramref name="nsid"/> uses now.</summary>
    public TimingOptions GetTiming(uint nsid) =>
        (GetNamespace(nsid) ?? throw new ArgumentOutOfRangeException(nameof(nsid), nsid, "no such namespace")).Timing?.Options ?? TimingOptions.Off;

    /// <summary>
    /// Reports that namespace <paramref name="nsid"/> changed (for example its capacity): every controller that enabled
    /// Namespace Attribute Notices completes an Asynchronous Event Request pointing at the Changed Namespace List.
    /// </summary>
    /// <remarks>
    /// <see cref="SetWriteProtected"/> calls it when a namespace's write protection changes; an application that hosts
    /// the target in-process and changes a namespace's Identify data itself calls it too.
    /// </remarks>
    public void NotifyNamespaceChanged(uint nsid)
    {
        foreach (NvmeController controller in _controllers.Values)
        {
            controller.OnNamespaceChanged(nsid);
        }
    }

    internal NvmeController? CreateController(Func<ushort, NvmeController> factory)
    {
        lock (_allocationLock)
        {
            // Allocate round-robin rather than lowest-free so a reconnecting host never sees the CNTLID of the
            // controller it just lost ("Duplicate cntlid" checks compare against controllers it still knows).
            for (int tries = 0; tries <= MaxCntlid - MinCntlid; tries++)
            {
                ushort candidate = _nextCntlid;
                _nextCntlid = candidate == MaxCntlid ? MinCntlid : (ushort)(candidate + 1);
                if (!_controllers.ContainsKey(candidate))
                {
                    NvmeController controller = factory(candidate);
                    _controllers[candidate] = controller;
                    return controller;
                }
            }
        }
        return null;
    }

    internal bool TryGetController(ushort cntlid, out NvmeController controller) =>
        _controllers.TryGetValue(cntlid, out controller!);

    internal void RemoveController(NvmeController controller) =>
        _controllers.TryRemove(new KeyValuePair<ushort, NvmeController>(controller.Cntlid, controller));

    internal IEnumerable<NvmeController> Controllers => _controllers.Values;

    internal void CountRead(int bytes)
    {
        Interlocked.Increment(ref _hostReads);
        Interlocked.Add(ref _sectorsRead, bytes >> 9);
    }

    internal void CountWrite(int bytes)
    {
        Interlocked.Increment(ref _hostWrites);
        Interlocked.Add(ref _sectorsWritten, bytes >> 9);
    }

    /// <summary>SMART values: data units are thousands of 512-byte units, rounded up (NVMe Base Figure 207).</summary>
    internal SmartValues GetSmartValues()
    {
        static ulong Units(long sectors) => (ulong)((sectors + 999) / 1000);
        TimeSpan up = Target.Options.TimeProvider.GetElapsedTime(_createdTimestamp);
        return new SmartValues(
            Units(Volatile.Read(ref _sectorsRead)), Units(Volatile.Read(ref _sectorsWritten)),
            (ulong)Volatile.Read(ref _hostReads), (ulong)Volatile.Read(ref _hostWrites), (ulong)up.TotalHours);
    }

    private static byte ComputeMdts(IReadOnlyList<ZonedNamespace> namespaces)
    {
        byte mdts = 0;
        foreach (ZonedNamespace ns in namespaces)
        {
            byte m = ns.Geometry.Mdts;
            if (m != 0 && (mdts == 0 || m < mdts))
            {
                mdts = m;
            }
        }
        return namespaces.Count == 0 ? (byte)7 : mdts;
    }

    private static byte ComputeZasl(IReadOnlyList<ZonedNamespace> namespaces, byte mdts)
    {
        byte zasl = 0;
        bool any = false;
        foreach (ZonedNamespace ns in namespaces)
        {
            if (!ns.IsZoned)
            {
                continue;
            }
            // A namespace's ZASL 0 means "MDTS" (and is reported as 0, as QEMU reports its raw zoned.zasl); the
            // controller-wide value must not exceed any namespace's limit.
            byte z = ns.Geometry.Zasl;
            if (!any || (z != 0 && (zasl == 0 || z < zasl)))
            {
                zasl = z;
            }
            any = true;
        }
        return zasl;
    }
}
