using System.Net;

namespace Zns.Control;

/// <summary>Where the management endpoint listens: a TCP address and port, a Unix socket, or nowhere.</summary>
public sealed record ControlAddress(IPEndPoint? EndPoint, string? UnixSocketPath)
{
    public const string Default = "127.0.0.1:9420";

    /// <summary>No endpoint (<c>--control off</c>).</summary>
    public bool IsOff => EndPoint is null && UnixSocketPath is null;

    /// <summary>Whether only this machine can reach it (loopback or a Unix socket).</summary>
    public bool IsLocal => UnixSocketPath is not null || (EndPoint is not null && IPAddress.IsLoopback(EndPoint.Address));

    /// <summary>Parses <c>ADDRESS:PORT</c>, <c>unix:PATH</c> or <c>off</c>; null with a reason when it is none of them.</summary>
    public static ControlAddress? TryParse(string text, out string? error)
    {
        error = null;
        if (text == "off")
        {
            return new ControlAddress(null, null);
        }
        if (text.StartsWith("unix:", StringComparison.Ordinal))
        {
            string path = text[5..];
            if (path.Length == 0)
            {
                error = "unix: needs a socket path (unix:/run/zns.sock)";
                return null;
            }
            return new ControlAddress(null, Path.GetFullPath(path));
        }
        if (IPEndPoint.TryParse(text, out var ep) && (ep.Port != 0 || text.EndsWith(":0", StringComparison.Ordinal)) && text.Contains(':'))
        {
            return new ControlAddress(ep, null);
        }
        error = $"'{text}' is not ADDRESS:PORT, unix:PATH or off";
        return null;
    }

    public override string ToString() => UnixSocketPath is { } p ? $"unix:{p}" : EndPoint?.ToString() ?? "off";
}
