using System.Buffers;
using Zns.Nvme;

namespace Zns.Core.Zones;

/// <summary>Which field of the stored protection information a media-error fault damages.</summary>
public enum PiCorruption
{
    /// <summary>The guard: a check of the guard (Linux checks it on every read) fails with End-to-end Guard Check Error.</summary>
    Guard,
    /// <summary>The reference tag: a reference tag check fails with End-to-end Reference Tag Check Error.</summary>
    ReferenceTag,
}

public sealed partial class ZonedNamespace
{
    /// <summary>
    /// A media error of the protection information: flips every bit of the guard or the reference tag stored for the
    /// written blocks of [<paramref name="slba"/>, + <paramref name="blocks"/>), as decayed media would, so the next
    /// read that checks it fails. Blocks above their zone's write pointer hold no PI to damage and are skipped.
    /// Returns how many blocks were damaged. Throws <see cref="InvalidOperationException"/> when the namespace has no
    /// PI, <see cref="ArgumentOutOfRangeException"/> for a range outside it, <see cref="IOException"/> when the
    /// backstore fails.
    /// </summary>
    public int CorruptProtectionInformation(ulong slba, ulong blocks, PiCorruption field)
    {
        MetadataFormat format = Geometry.Metadata;
        if (!format.HasPi)
        {
            throw new InvalidOperationException("the namespace has no protection information (pi=0)");
        }
        if (blocks == 0 || !CheckBounds(slba, blocks).IsSuccess)
        {
            throw new ArgumentOutOfRangeException(nameof(blocks), $"LBAs {slba}+{blocks} are not in the namespace ({Geometry.NamespaceSizeLbas} blocks)");
        }
        int ms = format.MetadataSize;
        byte[] rented = ArrayPool<byte>.Shared.Rent(ms);
        try
        {
            Span<byte> md = rented.AsSpan(0, ms);
            int damaged = 0;
            for (ulong lba = slba; lba < slba + blocks; lba++)
            {
                uint zi = Geometry.ZoneOf(lba);
                lock (_zoneLocks[zi])
                {
                    ulong dataEnd;
                    lock (_stateLock)
                    {
                        dataEnd = DataEnd(zi);
                    }
                    if (lba >= dataEnd)
                    {
                        continue;
                    }
                    _backstore.Read(Geometry.MetadataByteOffset(lba), md);
                    Span<byte> tuple = md.Slice(format.PiOffset, format.PiSize);
                    var (guard, _, reference) = ProtectionInformation.ReadTuple(format, tuple);
                    if (field == PiCorruption.Guard)
                    {
                        ProtectionInformation.WriteGuard(format, tuple, ~guard);
                    }
                    else
                    {
                        ProtectionInformation.WriteReferenceTag(format, tuple, ~reference);
                    }
                    _backstore.Write(Geometry.MetadataByteOffset(lba), md);
                    damaged++;
                }
            }
            _backstore.Flush();
            return damaged;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }
}
