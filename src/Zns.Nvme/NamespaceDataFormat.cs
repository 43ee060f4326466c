namespace Zns.Nvme;

/// <summary>What the data length of an I/O command depends on in the namespace it names.</summary>
/// <param name="BlockShift">log2 of the logical block size (LBADS).</param>
/// <param name="ZoneDescriptorExtensionBytes">ZDES × 64: the data of Set Zone Descriptor Extension; 0 without extensions.</param>
/// <param name="Metadata">The metadata and protection information of the namespace's LBA format; none by default.</param>
public readonly record struct NamespaceDataFormat(int BlockShift, int ZoneDescriptorExtensionBytes, MetadataFormat Metadata = default);
