namespace Zns.Target.Pcie;

/// <summary>
/// The Interrupt Coalescing (Feature 08h) and Interrupt Vector Configuration (Feature 09h) settings of a PCIe
/// controller (NVMe Base 2.0 §5.27.1.8-9): an I/O completion queue's vector fires once THR + 1 completions are
/// waiting or the first of them has waited TIME × 100 µs, whichever comes first. Coalescing applies only where both
/// are non-zero, never to the admin queue's vector 0, and not to a vector whose CD bit is set. Back to no coalescing
/// on controller reset.
/// </summary>
internal sealed class InterruptCoalescing(int vectors)
{
    private const uint CoalescingDisable = 1u << 16;
    private readonly bool[] _disabled = new bool[vectors];
    private uint _value;

    /// <summary>Feature 08h as set: THR in bits 7:0 (0's based), TIME in bits 15:8 (100 µs units).</summary>
    public uint Value => Volatile.Read(ref _value);

    /// <summary>Completions that fire the vector at once.</summary>
    public int Threshold => (int)(Value & 0xFF) + 1;

    /// <summary>Longest wait of a completion for its interrupt.</summary>
    public TimeSpan Time => TimeSpan.FromTicks(((Value >> 8) & 0xFF) * 1000);

    public void Reset()
    {
        Volatile.Write(ref _value, 0);
        Array.Clear(_disabled);
    }

    /// <summary>Set Features 08h: bits 31:16 are reserved and ignored, as for other features' reserved bits.</summary>
    public void Set(uint cdw11) => Volatile.Write(ref _value, cdw11 & 0xFFFF);

    /// <summary>Set Features 09h: IV in bits 15:0, CD in bit 16; false for a vector the function does not have.</summary>
    public bool SetVector(uint cdw11)
    {
        int vector = (int)(cdw11 & 0xFFFF);
        if (vector >= _disabled.Length)
        {
            return false;
        }
        Volatile.Write(ref _disabled[vector], (cdw11 & CoalescingDisable) != 0);
        return true;
    }

    /// <summary>
    /// Get Features 09h for vector IV (cdw11 bits 15:0): the vector with its CD bit, as set (<paramref name="current"/>)
    /// or by default (coalescing enabled). The admin vector always reports CD, since coalescing never applies to it.
    /// </summary>
    public bool TryGetVector(uint cdw11, bool current, out uint value)
    {
        int vector = (int)(cdw11 & 0xFFFF);
        value = 0;
        if (vector >= _disabled.Length)
        {
            return false;
        }
        bool disabled = vector == 0 || (current && Volatile.Read(ref _disabled[vector]));
        value = (uint)vector | (disabled ? CoalescingDisable : 0);
        return true;
    }

    /// <summary>Whether completions on <paramref name="vector"/> wait to be coalesced.</summary>
    public bool Applies(int vector)
    {
        uint v = Value;
        return vector != 0 && (v & 0xFF) != 0 && (v & 0xFF00) != 0 && !Volatile.Read(ref _disabled[vector]);
    }
}
