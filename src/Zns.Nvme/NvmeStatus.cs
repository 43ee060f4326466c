namespace Zns.Nvme;

/// <summary>
/// An NVMe completion status: Status Code (SC, bits 7:0), Status Code Type (SCT, bits 10:8), Command Retry Delay
/// (bits 12:11), More (bit 13) and Do Not Retry (DNR, bit 14). This is the CQE status field shifted right by one
/// (the phase tag is not part of it); <see cref="WireValue"/> gives the 16-bit field as it appears in a CQE.
/// </summary>
public readonly record struct NvmeStatus(ushort Value)
{
    private const ushort DnrBit = 0x4000;

    /// <summary>Status Code Type.</summary>
    public byte Sct => (byte)((Value >> 8) & 0x7);

    /// <summary>Status Code.</summary>
    public byte Sc => (byte)Value;

    /// <summary>Do Not Retry.</summary>
    public bool Dnr => (Value & DnrBit) != 0;

    /// <summary>True for Successful Completion.</summary>
    public bool IsSuccess => (Value & 0x7FF) == 0;

    /// <summary>The CQE status field (phase tag 0).</summary>
    public ushort WireValue => (ushort)(Value << 1);

    /// <summary>Builds a status from the CQE status field.</summary>
    public static NvmeStatus FromWire(ushort wire) => new((ushort)(wire >> 1));

    /// <summary>This status with DNR set.</summary>
    public NvmeStatus WithDnr() => new((ushort)(Value | DnrBit));

    /// <summary>This status without DNR.</summary>
    public NvmeStatus WithoutDnr() => new((ushort)(Value & ~DnrBit));

    private static NvmeStatus Generic(byte sc) => new(sc);
    private static NvmeStatus CommandSpecific(byte sc) => new((ushort)(0x100 | sc));

    // Generic Command Status (SCT 0)
    public static NvmeStatus Success => default;
    public static NvmeStatus InvalidOpcode => Generic(0x01);
    public static NvmeStatus InvalidField => Generic(0x02);
    public static NvmeStatus DataTransferError => Generic(0x04);
    public static NvmeStatus InternalError => Generic(0x06);
    public static NvmeStatus AbortRequested => Generic(0x07);
    public static NvmeStatus InvalidNamespace => Generic(0x0B);
    public static NvmeStatus CommandSequenceError => Generic(0x0C);
    public static NvmeStatus InvalidSglSegmentDescriptor => Generic(0x0D);
    public static NvmeStatus InvalidNumberOfSglDescriptors => Generic(0x0E);
    public static NvmeStatus DataSglLengthInvalid => Generic(0x0F);
    public static NvmeStatus SglDescriptorTypeInvalid => Generic(0x11);
    public static NvmeStatus PrpOffsetInvalid => Generic(0x13);
    public static NvmeStatus SglOffsetInvalid => Generic(0x16);
    public static NvmeStatus KeepAliveTimeoutInvalid => Generic(0x1A);
    /// <summary>Namespace is Write Protected: a command that would modify a write-protected namespace.</summary>
    public static NvmeStatus NamespaceWriteProtected => Generic(0x20);
    public static NvmeStatus CommandInterruptedOrAbortedSqDeletion => Generic(0x08);
    public static NvmeStatus LbaOutOfRange => Generic(0x80);
    public static NvmeStatus NamespaceNotReady => Generic(0x82);

    // Command Specific Status (SCT 1)
    public static NvmeStatus InvalidQueueIdentifier => CommandSpecific(0x01);
    public static NvmeStatus InvalidQueueSize => CommandSpecific(0x02);
    public static NvmeStatus CompletionQueueInvalid => CommandSpecific(0x00);
    public static NvmeStatus InvalidInterruptVector => CommandSpecific(0x08);
    public static NvmeStatus InvalidQueueDeletion => CommandSpecific(0x0C);
    public static NvmeStatus AsyncEventRequestLimitExceeded => CommandSpecific(0x05);
    public static NvmeStatus InvalidFormat => CommandSpecific(0x0A);
    public static NvmeStatus FeatureIdNotSaveable => CommandSpecific(0x0D);
    public static NvmeStatus ConnectIncompatibleFormat => CommandSpecific(0x80);
    public static NvmeStatus ConnectControllerBusy => CommandSpecific(0x81);
    public static NvmeStatus ConnectInvalidParameters => CommandSpecific(0x82);
    public static NvmeStatus ConnectInvalidHost => CommandSpecific(0x84);
    public static NvmeStatus DisconnectInvalidQueueType => CommandSpecific(0x85);
    public static NvmeStatus IoCommandSetCombinationRejected => CommandSpecific(0x2B);
    /// <summary>Authentication Required (Fabrics): the queue has not completed in-band authentication.</summary>
    public static NvmeStatus AuthenticationRequired => CommandSpecific(0x91);
    public static NvmeStatus CommandSizeLimitExceeded => CommandSpecific(0x83);
    /// <summary>Copy: a source namespace's format does not match the destination's (Incompatible Namespace or Format).</summary>
    public static NvmeStatus IncompatibleNamespaceOrFormat => CommandSpecific(0x85);
    /// <summary>Copy: a source range overlaps the destination (Overlapping I/O Range).</summary>
    public static NvmeStatus OverlappingIoRange => CommandSpecific(0x87);
    /// <summary>Invalid Protection Information: PRINFO the namespace's protection type does not allow (a Type 1 reference tag other than the LBA, PRCHK on Write Zeroes, Zone Append's PIREMAP rule).</summary>
    public static NvmeStatus InvalidProtectionInformation => CommandSpecific(0x81);
    public static NvmeStatus InvalidZoneOperation => CommandSpecific(0xB6);
    public static NvmeStatus ZrwaResourcesUnavailable => CommandSpecific(0xB7);
    public static NvmeStatus ZoneBoundaryError => CommandSpecific(0xB8);
    public static NvmeStatus ZoneIsFull => CommandSpecific(0xB9);
    public static NvmeStatus ZoneIsReadOnly => CommandSpecific(0xBA);
    public static NvmeStatus ZoneIsOffline => CommandSpecific(0xBB);
    public static NvmeStatus ZoneInvalidWrite => CommandSpecific(0xBC);
    public static NvmeStatus TooManyActiveZones => CommandSpecific(0xBD);
    public static NvmeStatus TooManyOpenZones => CommandSpecific(0xBE);
    public static NvmeStatus InvalidZoneStateTransition => CommandSpecific(0xBF);

    // Media and Data Integrity Errors (SCT 2)
    public static NvmeStatus WriteFault => new(0x280);
    public static NvmeStatus UnrecoveredReadError => new(0x281);
    /// <summary>End-to-end Guard Check Error: a block's guard is not the CRC of its data.</summary>
    public static NvmeStatus EndToEndGuardCheckError => new(0x282);
    /// <summary>End-to-end Application Tag Check Error: a block's application tag differs from LBAT under LBATM.</summary>
    public static NvmeStatus EndToEndApplicationTagCheckError => new(0x283);
    /// <summary>End-to-end Reference Tag Check Error: a block's reference tag differs from the expected one.</summary>
    public static NvmeStatus EndToEndReferenceTagCheckError => new(0x284);
    public static NvmeStatus CompareFailure => new(0x285);

    /// <inheritdoc/>
    public override string ToString() => $"sct 0x{Sct:x} / sc 0x{Sc:x}{(Dnr ? " DNR" : "")}";
}
