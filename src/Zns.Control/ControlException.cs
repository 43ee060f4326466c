namespace Zns.Control;

/// <summary>A request the endpoint refuses: the HTTP status and a message that names the bad field.</summary>
public sealed class ControlException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;

    public static ControlException BadField(string field, string problem) => new(400, $"{field}: {problem}");
}
