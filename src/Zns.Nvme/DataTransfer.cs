namespace Zns.Nvme;

/// <summary>How a command's data length is judged against the length the host described.</summary>
public enum LengthRule : byte
{
    /// <summary>The host must describe exactly <see cref="DataTransfer.Length"/> bytes.</summary>
    Exact,
    /// <summary>At least <see cref="DataTransfer.Length"/> bytes (Dataset Management and Copy ranges: Linux sends a whole page).</summary>
    AtLeast,
    /// <summary>Any length: the command decides later (an unknown opcode or feature, answered with its own status).</summary>
    Any,
}

/// <summary>
/// Which way one command's data moves and how many bytes it is, as the command's fields define it. A fabric
/// transport checks the length its SGL describes against it; a memory-based transport maps exactly
/// <see cref="Length"/> bytes of PRPs or SGLs.
/// </summary>
public readonly record struct DataTransfer(DataDirection Direction, long Length, LengthRule Rule)
{
    /// <summary>A command that moves no data.</summary>
    public static DataTransfer None => new(DataDirection.None, 0, LengthRule.Exact);

    /// <summary>Whether a transfer of <paramref name="length"/> bytes is what the command asks for.</summary>
    public bool Accepts(long length) => Rule switch
    {
        LengthRule.Exact => length == Length,
        LengthRule.AtLeast => length >= Length,
        _ => true,
    };
}
