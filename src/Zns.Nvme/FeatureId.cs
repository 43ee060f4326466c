namespace Zns.Nvme;

/// <summary>Feature identifiers supported by Set/Get Features.</summary>
public static class FeatureId
{
    public const byte TemperatureThreshold = 0x04;
    public const byte VolatileWriteCache = 0x06;
    public const byte NumberOfQueues = 0x07;
    /// <summary>Interrupt Coalescing: a memory-based (PCIe) controller only.</summary>
    public const byte InterruptCoalescing = 0x08;
    /// <summary>Interrupt Vector Configuration: a memory-based (PCIe) controller only.</summary>
    public const byte InterruptVectorConfiguration = 0x09;
    public const byte AsyncEventConfiguration = 0x0B;
    public const byte Timestamp = 0x0E;
    public const byte KeepAliveTimer = 0x0F;
    public const byte HostBehaviorSupport = 0x16;
    public const byte IoCommandSetProfile = 0x19;
}
