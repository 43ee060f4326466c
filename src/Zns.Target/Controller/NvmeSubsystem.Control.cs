using Zns.Core.Zones;

namespace Zns.Target.Controller;

/// <summary>Run-time control of a subsystem: zone change notices, zone health policies and injected failures.</summary>
public sealed partial class NvmeSubsystem
{
    private readonly List<ZoneHealthMonitor> _health = [];

    private void WatchZoneChanges(NamespaceInfo info)
    {
        ZonedNamespace ns = info.Namespace;
        uint nsid = info.Nsid;
        ns.ZoneDescriptorChanged += zone => NotifyZoneChanged(nsid, ns.Geometry.ZoneStart(zone));
        _health.Add(new ZoneHealthMonitor(ns, Target.Options.TimeProvider));
    }

    /// <summary>
    /// Reports that a zone of namespace <paramref name="nsid"/> changed on the controller's own account: every
    /// controller adds it to its Changed Zone List and, if the host enabled it, raises Zone Descriptor Changed.
    /// </summary>
    public void NotifyZoneChanged(uint nsid, ulong zslba)
    {
        foreach (NvmeController controller in _controllers.Values)
        {
            controller.OnZoneChanged(nsid, zslba);
        }
    }

    /// <summary>The zone health policy monitor of namespace <paramref name="nsid"/> (NSID 1 = index 0).</summary>
    public ZoneHealthMonitor HealthMonitor(uint nsid) => _health[(int)nsid - 1];

    /// <summary>Drops the NVMe/TCP connections of every controller (I/O queues only, or the admin queues too).</summary>
    public int DropConnections(bool includeAdmin)
    {
        int n = 0;
        foreach (NvmeController controller in _controllers.Values.ToArray())
        {
            controller.DropConnections(includeAdmin);
            n++;
        }
        return n;
    }

    /// <summary>Sets Controller Fatal Status on every live controller; returns how many. Controllers made later are healthy.</summary>
    public int InjectControllerFatal(FatalBehavior behavior)
    {
        int n = 0;
        foreach (NvmeController controller in _controllers.Values.ToArray())
        {
            controller.InjectFatal(behavior);
            n++;
        }
        return n;
    }

    /// <summary>Live controllers with an injected Controller Fatal Status.</summary>
    public int FatalControllerCount => _controllers.Values.Count(c => c.IsFatal);

    /// <summary>Live I/O queues of all controllers.</summary>
    public int IoQueueCount => _controllers.Values.Sum(c => c.IoQueueCount);

    internal void DisposeHealthMonitors()
    {
        foreach (ZoneHealthMonitor m in _health)
        {
            m.Dispose();
        }
    }
}
