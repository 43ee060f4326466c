using System.CommandLine;

namespace Zns.Cli;

/// <summary>Commands beyond the offline zone tools.</summary>
internal static partial class Commands
{
    public static IEnumerable<Command> Extra()
    {
        yield return Serve();
        yield return Qemu();
        yield return Replay();
        foreach (var c in ControlCommands.All())
        {
            yield return c;
        }
    }
}
