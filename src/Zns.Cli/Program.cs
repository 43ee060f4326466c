using System.CommandLine;
using Zns.Cli;
using Zns.Core.Zones;

var root = new RootCommand("zns: NVMe Zoned Namespace SSDs emulated in one program, served over NVMe/TCP")
{
    ZoneCommands.Create(),
    ZoneCommands.Report(),
    ZoneCommands.Capacity(),
    ZoneCommands.Info(),
    ZoneCommands.Action("reset", ZoneSendAction.Reset, "Reset zones (write pointer to the zone start, data released)"),
    ZoneCommands.Action("open", ZoneSendAction.Open, "Open zones explicitly"),
    ZoneCommands.Action("close", ZoneSendAction.Close, "Close zones"),
    ZoneCommands.Action("finish", ZoneSendAction.Finish, "Finish zones (make them Full)"),
};
foreach (var extra in Commands.Extra())
{
    root.Subcommands.Add(extra);
}

var parse = root.Parse(args);
if (parse.Errors.Count > 0)
{
    Console.Error.WriteLine($"zns: {string.Join("; ", parse.Errors.Select(e => e.Message).Distinct())}");
    return 2;
}
if (UnknownOptions.Find(parse) is { } unknown)
{
    Console.Error.WriteLine($"zns: unknown option '{unknown}' (a FILE that starts with '-' goes after --)");
    return 2;
}
try
{
    return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (UsageException e)
{
    Console.Error.WriteLine($"zns: {e.Message}");
    return 2;
}
catch (ZoneActionException e)
{
    Console.Error.WriteLine($"zns: {e.Message}");
    return 1;
}
catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
{
    Console.Error.WriteLine($"zns: {e.Message}");
    return 1;
}
