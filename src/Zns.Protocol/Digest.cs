using System.Buffers;
using System.Buffers.Binary;
using Zns.Core;

using Zns.Nvme;

namespace Zns.Protocol;

/// <summary>
/// NVMe/TCP header and data digests (HDGST, DDGST): the CRC-32C of the covered bytes, stored little-endian in the
/// four bytes that follow them.
/// </summary>
public static class Digest
{
    /// <summary>The digest of a possibly multi-segment sequence (data received across pipe segments).</summary>
    public static uint Compute(in ReadOnlySequence<byte> data)
    {
        if (data.IsSingleSegment)
            return Crc32C.Compute(data.FirstSpan);
        uint state = Crc32C.InitialState;
        foreach (var segment in data)
            state = Crc32C.Update(state, segment.Span);
        return ~state;
    }

    /// <summary>Writes the digest of <paramref name="data"/> into the four bytes of <paramref name="destination"/>.</summary>
    public static void Write(ReadOnlySpan<byte> data, Span<byte> destination) =>
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Crc32C.Compute(data));

    /// <summary>True when the four bytes <paramref name="digest"/> are the digest of <paramref name="data"/>.</summary>
    public static bool Verify(ReadOnlySpan<byte> data, ReadOnlySpan<byte> digest) =>
        BinaryPrimitives.ReadUInt32LittleEndian(digest) == Crc32C.Compute(data);
}
