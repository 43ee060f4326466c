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
/// <see cref="Length"/> bytes of PRPs or SGLs, then <see cref="MetadataLength"/> bytes of the buffer MPTR names.
/// </summary>
/// <param name="Direction">Which way the data moves.</param>
/// <param name="Length">Bytes of data (with the metadata of an extended LBA format).</param>
/// <param name="Rule">How the length the host described is judged.</param>
/// <param name="MetadataLength">Bytes of a separate metadata buffer (MPTR), after the data; 0 when the namespace has
/// none or its metadata is interleaved with the data (extended LBA, counted in <paramref name="Length"/>).</param>
public readonly record struct DataTransfer(DataDirection Direction, long Length, LengthRule Rule, long MetadataLength = 0)
{
    /// <summary>A command that moves no data.</summary>
    public static DataTransfer None => new(DataDirection.None, 0, LengthRule.Exact);

    /// <summary>
    /// Whether a transfer of <paramref name="length"/> bytes is what the command asks for (a separate metadata buffer
    /// counted after the data).
    /// </summary>
    public bool Accepts(long length) => Rule switch
    {
        LengthRule.Exact => length == Length + MetadataLength,
        LengthRule.AtLeast => length >= Length + MetadataLength,
        _ => true,
    };
}
