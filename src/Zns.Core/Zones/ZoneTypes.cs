namespace Zns.Core.Zones;

/// <summary>Zone state (ZS), with the values of the Zone Descriptor's ZS field (bits 7:4) and Linux's BLK_ZONE_COND_*.</summary>
public enum ZoneState : byte
{
    /// <summary>ZSE.</summary>
    Empty = 0x1,
    /// <summary>ZSIO.</summary>
    ImplicitlyOpened = 0x2,
    /// <summary>ZSEO.</summary>
    ExplicitlyOpened = 0x3,
    /// <summary>ZSC.</summary>
    Closed = 0x4,
    /// <summary>ZSRO.</summary>
    ReadOnly = 0xD,
    /// <summary>ZSF.</summary>
    Full = 0xE,
    /// <summary>ZSO.</summary>
    Offline = 0xF,
}

/// <summary>Zone Send Action (ZSA) of Zone Management Send.</summary>
public enum ZoneSendAction : byte
{
    Close = 0x01,
    Finish = 0x02,
    Open = 0x03,
    Reset = 0x04,
    Offline = 0x05,
    SetDescriptorExtension = 0x10,
    FlushZrwa = 0x11,
}

/// <summary>Zone Receive Action (ZRA) of Zone Management Receive.</summary>
public enum ZoneReceiveAction : byte
{
    Report = 0x00,
    ExtendedReport = 0x01,
}

/// <summary>Zone Receive Action Specific Field (ZRASF): which zones a report lists.</summary>
public enum ZoneReportFilter : byte
{
    All = 0,
    Empty = 1,
    ImplicitlyOpened = 2,
    ExplicitlyOpened = 3,
    Closed = 4,
    Full = 5,
    ReadOnly = 6,
    Offline = 7,
}

/// <summary>Zone Attributes (ZA) bits.</summary>
[Flags]
public enum ZoneAttributes : byte
{
    None = 0,
    /// <summary>ZFC: Zone Finished by Controller.</summary>
    FinishedByController = 0x01,
    /// <summary>FZR: Finish Zone Recommended.</summary>
    FinishRecommended = 0x02,
    /// <summary>RZR: Reset Zone Recommended.</summary>
    ResetRecommended = 0x04,
    /// <summary>ZRWAV: Zone Random Write Area Valid.</summary>
    ZrwaValid = 0x08,
    /// <summary>ZDEV: Zone Descriptor Extension Valid.</summary>
    DescriptorExtensionValid = 0x80,
}

/// <summary>A snapshot of one zone, as a zone report describes it.</summary>
/// <param name="Index">Zone number.</param>
/// <param name="StartLba">ZSLBA.</param>
/// <param name="Capacity">ZCAP in logical blocks.</param>
/// <param name="WritePointer">Next LBA a write must use. For Full zones this is where written data ends (reports
/// show it as invalid).</param>
/// <param name="State">Zone state.</param>
/// <param name="Attributes">Zone attributes.</param>
public readonly record struct ZoneInfo(uint Index, ulong StartLba, ulong Capacity, ulong WritePointer, ZoneState State, ZoneAttributes Attributes)
{
    /// <summary>Whether the write pointer is meaningful (QEMU reports all ones for Full, Read Only and Offline).</summary>
    public bool WritePointerValid => State is not (ZoneState.Full or ZoneState.ReadOnly or ZoneState.Offline);
}

/// <summary>How many zones are in each state.</summary>
public readonly record struct ZoneStateCounts(uint Empty, uint ImplicitlyOpened, uint ExplicitlyOpened, uint Closed, uint Full, uint ReadOnly, uint Offline)
{
    /// <summary>Open zones (implicitly + explicitly).</summary>
    public uint Open => ImplicitlyOpened + ExplicitlyOpened;
    /// <summary>Active zones (open + closed).</summary>
    public uint Active => Open + Closed;
}
