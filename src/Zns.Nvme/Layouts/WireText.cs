using System.Text;

namespace Zns.Nvme.Layouts;

/// <summary>ASCII helpers shared by the layouts: NVMe string fields are either space padded or NUL terminated.</summary>
public static class WireText
{
    /// <summary>Writes <paramref name="text"/> left-justified and padded with spaces (SN, MN, FR: NVMe Base §1.5 "ASCII string").</summary>
    public static void WriteSpacePadded(Span<byte> field, string text)
    {
        field.Fill((byte)' ');
        Encoding.ASCII.GetBytes(text.AsSpan(0, Math.Min(text.Length, field.Length)), field);
    }

    /// <summary>Writes <paramref name="text"/> NUL terminated; the rest of the field is zero (NQNs, TRADDR).</summary>
    public static void WriteNulTerminated(Span<byte> field, string text)
    {
        field.Clear();
        Encoding.ASCII.GetBytes(text.AsSpan(0, Math.Min(text.Length, field.Length - 1)), field);
    }

    /// <summary>Reads a NUL-terminated (or field-filling) ASCII string.</summary>
    public static string ReadNulTerminated(ReadOnlySpan<byte> field)
    {
        int end = field.IndexOf((byte)0);
        return Encoding.ASCII.GetString(end < 0 ? field : field[..end]);
    }
}
