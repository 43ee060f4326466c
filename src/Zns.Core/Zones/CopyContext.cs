namespace Zns.Core.Zones;

/// <summary>
/// What a Copy needs from the controller it came through: the destination's NSID (the command's), the descriptor
/// formats the host may use (OCFS, with formats 2h and 3h only once the host has set their bits in Host Behavior
/// Support's CDFE), and the namespaces a format 2h/3h entry may name.
/// </summary>
/// <param name="Nsid">The command's NSID: the destination namespace.</param>
/// <param name="EnabledFormats">Bit n set: descriptor format n may be used.</param>
/// <param name="Sources">Where other namespaces come from; null: only the destination itself.</param>
public readonly record struct CopyContext(uint Nsid, ushort EnabledFormats, ICopySourceNamespaces? Sources)
{
    /// <summary>Formats 0h and 1h, always enabled (2h and 3h need Host Behavior Support CDFE).</summary>
    public const ushort AlwaysEnabledFormats = 0x3;

    /// <summary>A Copy that may only read the destination namespace: formats 2h and 3h are not enabled.</summary>
    public static CopyContext SameNamespace => new(0, AlwaysEnabledFormats, null);
}
