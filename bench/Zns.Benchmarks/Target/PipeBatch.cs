using Zns.Core.Zones;

namespace Zns.Benchmarks.Target;

/// <summary>
/// The capsules of one receive batch for <see cref="PipeTarget.Exchange"/>, back to back, with each one's offset so
/// that its SLBA can be rewritten between batches.
/// </summary>
internal sealed class PipeBatch
{
    private int[] _starts = [];
    private int[] _written = [];

    public byte[] Bytes { get; private set; } = [];
    public int Count => _starts.Length;

    public static PipeBatch Of(int count, Func<int, byte[]> capsule)
    {
        var parts = Enumerable.Range(0, count).Select(capsule).ToArray();
        var batch = new PipeBatch { Bytes = [.. parts.SelectMany(p => p)], _starts = new int[count], _written = new int[count] };
        for (int i = 1; i < count; i++)
            batch._starts[i] = batch._starts[i - 1] + parts[i - 1].Length;
        return batch;
    }

    /// <summary>
    /// Aims write i of the batch at the write pointer of zone <paramref name="zoneBase"/> + i, one block further each
    /// call. A zone that is full is reset first, outside the wire path (the RAM namespace keeps its chunks and clears
    /// them).
    /// </summary>
    public void AimWrites(ZonedNamespace ns, int zoneBase)
    {
        for (int i = 0; i < Count; i++)
        {
            ulong zone = (ulong)(zoneBase + i) * Layout.ZoneBlocks;
            if (_written[i] == Layout.ZoneBlocks)
            {
                ns.ZoneManagementSend(zone, ZoneSendAction.Reset, selectAll: false);
                _written[i] = 0;
            }
            PipeTarget.SetSlba(Bytes.AsSpan(_starts[i]), zone + (ulong)_written[i]++);
        }
    }
}
