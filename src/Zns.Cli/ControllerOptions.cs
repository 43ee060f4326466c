using System.CommandLine;
using System.Globalization;
using Zns.Target.Controller;
using Zns.Target.Tcp;

namespace Zns.Cli;

/// <summary>
/// The controller options of QEMU's <c>-device nvme</c> that apply over NVMe/TCP and vfio-user: <c>mqes</c>,
/// <c>max_ioqpairs</c> and <c>aerl</c>. They describe the one controller every namespace sits behind, so
/// <c>zns serve</c> takes them in its <c>-o key=value</c> list and as long flags, never in a FILE's own
/// <c>,key=value</c> list. Limits and messages are QEMU's (<c>nvme_check_params</c> and its property types).
/// </summary>
internal sealed class ControllerOptions
{
    // (long flag, QEMU name, help)
    private static readonly (string Flag, string Qemu, string Help)[] Flags =
    [
        ("--mqes", "mqes", "Maximum Queue Entries Supported, 0's based (CAP.MQES), 1..65535 (default 127: 128 entries per queue)"),
        ("--max-ioqpairs", "max_ioqpairs", "I/O queue pairs per controller, 1..65535 (default 8)"),
        ("--aerl", "aerl", "Asynchronous Event Request Limit, 0's based, 0..255 (default 3)"),
    ];

    /// <summary>The QEMU names this class owns; the namespace parser leaves them alone.</summary>
    public static readonly IReadOnlySet<string> Keys = Flags.Select(f => f.Qemu).ToHashSet();

    private readonly List<(Option<string> Option, string Qemu)> _flags = [];

    public ControllerOptions()
    {
        foreach (var (flag, qemu, help) in Flags)
        {
            _flags.Add((new Option<string>(flag) { Description = help }, qemu));
        }
    }

    public void AddTo(Command command)
    {
        foreach (var (option, _) in _flags)
        {
            command.Options.Add(option);
        }
    }

    /// <summary>
    /// The target options with the user's controller options applied: from the <c>-o</c> lists in order, then the
    /// flags. Throws <see cref="UsageException"/> naming the option.
    /// </summary>
    public TargetOptions Apply(ParseResult result, Option<string[]> qemuList, TargetOptions options)
    {
        foreach (string list in result.GetValue(qemuList) ?? [])
        {
            foreach (string item in list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                int eq = item.IndexOf('=');
                if (eq > 0 && Keys.Contains(item[..eq]))
                {
                    options = With(options, item[..eq], item[(eq + 1)..], $"-o {item[..eq]}");
                }
            }
        }
        foreach (var (option, qemu) in _flags)
        {
            if (result.GetValue(option) is { } value)
            {
                options = With(options, qemu, value, option.Name);
            }
        }
        return options;
    }

    /// <summary>Refuses a controller option in a FILE's own list: it cannot differ between namespaces.</summary>
    public static void RefuseInNamespaceList(string? local, string spec)
    {
        foreach (string item in (local ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = item.IndexOf('=');
            string key = eq > 0 ? item[..eq] : item;
            if (Keys.Contains(key))
            {
                throw new UsageException($"{spec}: {key} is a controller option (QEMU: -device nvme,{key}=...): give it to every namespace at once with -o {key}=N or --{key.Replace('_', '-')} N");
            }
        }
    }

    internal static TargetOptions With(TargetOptions options, string key, string value, string named)
    {
        bool number = uint.TryParse(value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out uint n);
        switch (key)
        {
            case "mqes":
                // QEMU: a uint16 property that "cannot be less than 1" (a queue needs two entries to hold one command).
                if (!number || n is < 1 or > ushort.MaxValue)
                {
                    throw new UsageException($"{named}: '{value}': mqes must be between 1 and 65535 (0's based: 2 to 65536 entries per queue; QEMU: mqes property cannot be less than 1)");
                }
                return options with { MaxQueueEntries = (int)n + 1 };
            case "max_ioqpairs":
                if (!number || n is < 1 or > ushort.MaxValue)
                {
                    throw new UsageException($"{named}: '{value}': max_ioqpairs must be between 1 and 65535");
                }
                return options with { MaxIoQueues = (int)n };
            case "aerl":
                // QEMU: a uint8 property, 0's based.
                if (!number || n > byte.MaxValue)
                {
                    throw new UsageException($"{named}: '{value}': aerl must be between 0 and 255 (0's based: 1 to 256 outstanding Asynchronous Event Requests)");
                }
                return options with { AsyncEventRequestLimit = (byte)n };
            default:
                throw new UsageException($"{named}: unknown controller option");
        }
    }
}
