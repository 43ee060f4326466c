using Zns.Core;
using System.Buffers;
using System.Text;
using Xunit;
using Zns.Nvme;
using Zns.Protocol;

namespace Zns.Protocol.Tests;

public class Crc32CTests
{
    [Fact]
    public void CheckValueOf123456789() => Assert.Equal(0xE3069283u, Crc32C.Compute(Encoding.ASCII.GetBytes("123456789")));

    [Fact]
    public void FourKiBOfZeros() => Assert.Equal(0x98F94189u, Crc32C.Compute(new byte[4096]));

    [Fact]
    public void EmptyInputIsZero() => Assert.Equal(0u, Crc32C.Compute(ReadOnlySpan<byte>.Empty));

    [Fact]
    public void CapsuleRespHeaderDigestFromTheDigest()
    {
        byte[] header = [0x05, 0x01, 0x18, 0x00, 0x1c, 0x00, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        Assert.Equal(0x8903129Bu, Crc32C.Compute(header));
        var digest = new byte[4];
        Digest.Write(header, digest);
        Assert.Equal(new byte[] { 0x9b, 0x12, 0x03, 0x89 }, digest);
    }

    [Fact]
    public void IncrementalAndSegmentedMatchOneShot()
    {
        var data = new byte[1000];
        new Random(7).NextBytes(data);
        uint whole = Crc32C.Compute(data);
        for (int split = 0; split <= data.Length; split += 37)
        {
            uint state = Crc32C.Update(Crc32C.InitialState, data.AsSpan(0, split));
            Assert.Equal(whole, ~Crc32C.Update(state, data.AsSpan(split)));
            Assert.Equal(whole, Digest.Compute(TestSequences.Split(data, split)));
        }
    }
}

internal static class TestSequences
{
    /// <summary>A two-segment sequence split at <paramref name="at"/> (empty segments allowed).</summary>
    public static ReadOnlySequence<byte> Split(byte[] data, int at)
    {
        var first = new Segment(data.AsMemory(0, at));
        var second = first.Append(data.AsMemory(at));
        return new ReadOnlySequence<byte>(first, 0, second, second.Memory.Length);
    }

    /// <summary>A sequence with every byte in its own segment.</summary>
    public static ReadOnlySequence<byte> Bytewise(byte[] data)
    {
        if (data.Length == 0)
            return ReadOnlySequence<byte>.Empty;
        var first = new Segment(data.AsMemory(0, 1));
        var last = first;
        for (int i = 1; i < data.Length; i++)
            last = last.Append(data.AsMemory(i, 1));
        return new ReadOnlySequence<byte>(first, 0, last, 1);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory) => Memory = memory;

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory) { RunningIndex = RunningIndex + Memory.Length };
            Next = next;
            return next;
        }
    }
}
