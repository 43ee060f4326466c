namespace Zns.Target.Controller;

/// <summary>
/// What a transport is, as far as the controller's answers depend on it (the traits of Linux nvmet's fabrics ops and
/// SPDK's transport ops): the controller writes Identify and CAP from these, and nobody patches them afterwards.
/// </summary>
public sealed record TransportTraits
{
    /// <summary>SGLS (Identify Controller): SGLs supported, keyed data blocks, offsets into in-capsule data.</summary>
    public required uint Sgls { get; init; }

    /// <summary>
    /// A memory-based transport (PCIe): queues live in host memory and are made by admin commands, the controller has
    /// registers, and the Fabrics-only Identify fields (IOCCSZ, IORCSZ, ICDOFF, FCATT, MSDBD) are reserved. A fabric
    /// makes queues with Connect.
    /// </summary>
    public bool IsMemoryBased { get; init; }

    /// <summary>Largest data a command capsule carries in-capsule (IOCCSZ = (64 + this) / 16); 0 without capsules.</summary>
    public int InCapsuleDataLength { get; init; }

    /// <summary>OACS bits the transport adds (Doorbell Buffer Config on PCIe).</summary>
    public ushort OptionalAdminCommands { get; init; }

    /// <summary>CAP bits the transport adds (CQR: queues must be physically contiguous).</summary>
    public ulong CapabilityBits { get; init; }

    /// <summary>
    /// A fabric over NVMe/TCP: SGLs with offset addressing for in-capsule data (bit 20), in-capsule data of
    /// <paramref name="inCapsuleDataLength"/> bytes.
    /// </summary>
    public static TransportTraits Fabric(int inCapsuleDataLength) => new()
    {
        Sgls = 0x0010_0001,
        InCapsuleDataLength = inCapsuleDataLength,
    };
}
