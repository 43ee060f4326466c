using System.CommandLine;
using Zns.Core.Zones;

namespace Zns.Cli;

/// <summary>
/// The namespace options every command that makes or serves a namespace accepts: QEMU's <c>-o key=value,...</c>
/// list and one long flag per option. Both map onto <see cref="NamespaceOptions.With"/>, so names and validation
/// live in one place.
/// </summary>
internal sealed class GeometryOptions
{
    // (long flag, QEMU name, help)
    private static readonly (string Flag, string Qemu, string Help)[] Flags =
    [
        ("--logical-block-size", "logical_block_size", "Logical block size: 512 or 4096 (default 4096)"),
        ("--zoned", "zoned", "on: zoned namespace (default); off: conventional NVM namespace"),
        ("--zone-size", "zoned.zone_size", "Zone size with K/M/G suffix (default 128M)"),
        ("--zone-capacity", "zoned.zone_capacity", "Zone capacity (default 0 = zone size)"),
        ("--max-open", "zoned.max_open", "Maximum open zones (default 0 = no limit)"),
        ("--max-active", "zoned.max_active", "Maximum active zones (default 0 = no limit)"),
        ("--zasl", "zoned.zasl", "Zone Append Size Limit, 2^n x 4 KiB (default 0 = MDTS)"),
        ("--descr-ext-size", "zoned.descr_ext_size", "Zone descriptor extension size in bytes, multiple of 64 (default 0)"),
        ("--cross-read", "zoned.cross_read", "on/off: reads may cross zone boundaries (default off)"),
        ("--auto-transition", "zoned.auto_transition", "on/off: auto-close implicitly opened zones at the open limit (default on)"),
        ("--mdts", "mdts", "Maximum Data Transfer Size, 2^n x 4 KiB (default 7 = 512 KiB)"),
    ];

    private readonly List<(Option<string> Option, string Qemu)> _flags = [];

    public GeometryOptions()
    {
        QemuList = new Option<string[]>("--options", "-o")
        {
            Description = "QEMU-style options: zoned.zone_size=64M,zoned.zone_capacity=62M,zoned.max_open=16,zoned.max_active=32,zoned.zasl=5,logical_block_size=4096 (repeatable)",
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = false,
        };
        foreach (var (flag, qemu, help) in Flags)
        {
            _flags.Add((new Option<string>(flag) { Description = help }, qemu));
        }
    }

    public Option<string[]> QemuList { get; }

    /// <summary>QEMU names in the <c>-o</c> lists that another parser owns (<c>zns serve</c>'s controller options).</summary>
    public IReadOnlySet<string> ExcludedKeys { get; init; } = new HashSet<string>();

    public void AddTo(Command command)
    {
        command.Options.Add(QemuList);
        foreach (var (option, _) in _flags)
        {
            command.Options.Add(option);
        }
    }

    /// <summary>Whether the user gave any geometry option.</summary>
    public bool AnyGiven(ParseResult result) =>
        (result.GetValue(QemuList)?.Length ?? 0) > 0 || _flags.Any(f => result.GetValue(f.Option) is not null);

    /// <summary>Applies the user's options on top of <paramref name="baseline"/>. Throws <see cref="UsageException"/> naming the option.</summary>
    public NamespaceOptions Apply(ParseResult result, NamespaceOptions baseline)
    {
        var options = baseline;
        foreach (string list in result.GetValue(QemuList) ?? [])
        {
            try
            {
                options = options.WithQemuOptions(WithoutExcludedKeys(list));
            }
            catch (OptionException e)
            {
                throw new UsageException($"-o {e.Message}");
            }
        }
        foreach (var (option, qemu) in _flags)
        {
            if (result.GetValue(option) is { } value)
            {
                try
                {
                    options = options.With(qemu, value);
                }
                catch (OptionException e)
                {
                    throw new UsageException($"{option.Name}: {e.Reason}");
                }
            }
        }
        return options;
    }

    /// <summary>
    /// The namespace options the user gave, in order: each one's QEMU name and how it was given, for a message
    /// (<c>-o zoned.zrwas</c>, <c>--zone-size</c>).
    /// </summary>
    public IEnumerable<(string Name, string GivenAs)> Given(ParseResult result)
    {
        foreach (string list in result.GetValue(QemuList) ?? [])
        {
            foreach (string item in WithoutExcludedKeys(list).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                string name = item.IndexOf('=') is var eq and > 0 ? item[..eq].Trim() : item;
                yield return (name, $"-o {name}");
            }
        }
        foreach (var (option, qemu) in _flags)
        {
            if (result.GetValue(option) is not null)
            {
                yield return (qemu, option.Name);
            }
        }
    }

    private string WithoutExcludedKeys(string list) => ExcludedKeys.Count == 0 ? list : string.Join(',',
        list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(item => item.IndexOf('=') is var eq && (eq <= 0 || !ExcludedKeys.Contains(item[..eq]))));

    /// <summary>The flag a QEMU option name is spelled as, for messages.</summary>
    public static string Describe(string qemu)
    {
        foreach (var (flag, q, _) in Flags)
        {
            if (q == qemu)
            {
                return $"{flag} ({qemu})";
            }
        }
        return qemu;
    }
}

/// <summary>A bad argument: printed as one line, exit code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);
