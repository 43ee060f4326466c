using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Zns.Core.Zones;

namespace Zns.Cli;

/// <summary>One namespace of a QEMU NVMe controller: its raw file and its options in QEMU's spelling, in order.</summary>
internal sealed record QemuNamespace(string File, string Device, IReadOnlyList<KeyValuePair<string, string>> Options);

/// <summary>One <c>-device nvme</c> of a QEMU command line and what zns serves in its place.</summary>
internal sealed record QemuController(string Name, string Serial, string SocketPath,
    IReadOnlyList<KeyValuePair<string, string>> ControllerOptions, IReadOnlyList<QemuNamespace> Namespaces);

/// <summary>A QEMU command line with its NVMe controllers taken out: what to serve and what to run.</summary>
internal sealed record QemuPlan(IReadOnlyList<QemuController> Controllers, IReadOnlyList<string> Arguments, IReadOnlyList<string> Notes);

/// <summary>
/// Reads a QEMU command line that uses QEMU's NVMe emulation (<c>-device nvme</c>, <c>-device nvme-ns</c> and their
/// <c>-drive</c>s) and rewrites it for zns: each controller becomes a <c>vfio-user-pci</c> device in the same place,
/// and guest memory becomes a shared memfd backend. Pure: touches no file and starts nothing.
/// </summary>
internal static class QemuCommandLine
{
    private const string MemoryBackendId = "zns-mem";

    /// <summary>Controller properties that describe the controller's placement or identity.</summary>
    private static readonly HashSet<string> PlacementKeys = ["id", "bus", "addr"];

    /// <summary>QEMU controller properties that are namespace options in zns (they apply to every namespace of the controller).</summary>
    private static readonly HashSet<string> ControllerNamespaceKeys = ["mdts", "vsl", "zoned.zasl", "zoned.auto_transition"];

    /// <summary><c>-drive</c> keys about how QEMU itself does I/O on the file: no meaning when zns serves it.</summary>
    private static readonly HashSet<string> DriveIoKeys = ["cache", "aio", "discard", "detect-zeroes", "media"];

    /// <summary>Whether zns's namespace options know a QEMU name.</summary>
    public static bool IsNamespaceOption(string key)
    {
        if (key == "physical_block_size")
        {
            return true;
        }
        try
        {
            new NamespaceOptions().With(key, "0");
            return true;
        }
        catch (OptionException e)
        {
            return !e.Reason.StartsWith("unknown option", StringComparison.Ordinal);
        }
        catch (Exception)
        {
            return true; // a known option that refused the probe value
        }
    }

    /// <summary>
    /// Splits QEMU's <c>key=value,...</c> syntax (a doubled comma is a comma in a value). The first item may be a
    /// bare value: it is returned under <paramref name="implicitKey"/>.
    /// </summary>
    public static List<KeyValuePair<string, string>> SplitOptions(string text, string? implicitKey)
    {
        var items = new List<string>();
        var current = new StringBuilder();
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] == ',')
            {
                if (i + 1 < text.Length && text[i + 1] == ',')
                {
                    current.Append(',');
                    i++;
                    continue;
                }
                items.Add(current.ToString());
                current.Clear();
                continue;
            }
            current.Append(text[i]);
        }
        items.Add(current.ToString());
        var result = new List<KeyValuePair<string, string>>();
        for (int i = 0; i < items.Count; i++)
        {
            string item = items[i];
            if (item.Length == 0)
            {
                continue;
            }
            int eq = item.IndexOf('=');
            if (eq < 0)
            {
                result.Add(i == 0 && implicitKey is not null ? new(implicitKey, item) : new(item, "on"));
            }
            else
            {
                result.Add(new(item[..eq], item[(eq + 1)..]));
            }
        }
        return result;
    }

    private static string? Get(List<KeyValuePair<string, string>> options, string key) =>
        options.LastOrDefault(kv => kv.Key == key) is { Key: not null } kv ? kv.Value : null;

    private static bool IsDevice(string arg) => arg is "-device" or "--device";
    private static bool IsMachine(string arg) => arg is "-machine" or "--machine" or "-M";

    /// <summary>
    /// Plans the rewrite. Throws <see cref="UsageException"/> for what zns cannot serve: an unknown option (unless
    /// <paramref name="ignoreUnknown"/>: then it is left out and named in <see cref="QemuPlan.Notes"/>), a drive that
    /// is not a raw file, one file named twice, a guest memory backend that is not shared.
    /// </summary>
    public static QemuPlan Plan(IReadOnlyList<string> args, string socketDirectory, bool ignoreUnknown, Func<string, byte[]?>? readHeader = null)
    {
        var notes = new List<string>();
        var drives = new Dictionary<string, (int Index, List<KeyValuePair<string, string>> Options)>();
        var devices = new List<(int Index, List<KeyValuePair<string, string>> Options)>();
        var machines = new List<int>();
        var objects = new List<(int Index, List<KeyValuePair<string, string>> Options)>();
        string? memory = null;
        for (int i = 1; i < args.Count; i++)
        {
            string a = args[i];
            if (i + 1 >= args.Count)
            {
                break;
            }
            if (a is "-drive" or "--drive")
            {
                var o = SplitOptions(args[i + 1], null);
                if (Get(o, "id") is { } id)
                {
                    drives[id] = (i, o);
                }
                i++;
            }
            else if (IsDevice(a))
            {
                string value = args[i + 1];
                if (!value.TrimStart().StartsWith('{'))
                {
                    devices.Add((i, SplitOptions(value, "driver")));
                }
                else if (value.Contains("\"nvme", StringComparison.Ordinal))
                {
                    throw new UsageException($"-device {value}: zns qemu reads NVMe devices in QEMU's key=value form (-device nvme,serial=...,id=...), not JSON");
                }
                i++;
            }
            else if (IsMachine(a))
            {
                machines.Add(i);
                i++;
            }
            else if (a is "-object" or "--object")
            {
                if (!args[i + 1].TrimStart().StartsWith('{'))
                {
                    objects.Add((i, SplitOptions(args[i + 1], "qom-type")));
                }
                i++;
            }
            else if (a is "-m" or "--m")
            {
                memory = args[i + 1];
                i++;
            }
        }

        var controllerDevices = devices.Where(d => Get(d.Options, "driver") == "nvme").ToList();
        if (controllerDevices.Count == 0)
        {
            return new QemuPlan([], [.. args.Skip(1)], notes);
        }
        var namespaceDevices = devices.Where(d => Get(d.Options, "driver") == "nvme-ns").ToList();
        var dropped = new HashSet<int>();
        var usedDrives = new Dictionary<string, string>(); // file -> device that names it
        var controllers = new List<QemuController>();
        var replacements = new Dictionary<int, string>();

        void Unknown(string device, string key, string value)
        {
            if (!ignoreUnknown)
            {
                throw new UsageException($"-device {device}: option {key}={value} is not implemented by zns (--ignore-unknown goes on without it)");
            }
            notes.Add($"ignoring {key}={value} of -device {device}: not implemented by zns");
        }

        string DriveFile(string driveId, string device)
        {
            if (!drives.TryGetValue(driveId, out var drive))
            {
                throw new UsageException($"-device {device}: drive={driveId} names no -drive ...,id={driveId} (zns qemu reads -drive file=FILE,id={driveId},format=raw,if=none)");
            }
            string? file = Get(drive.Options, "file");
            if (file is null)
            {
                throw new UsageException($"-drive {args[drive.Index + 1]}: no file= (zns qemu serves raw files)");
            }
            // Without format=, QEMU probes the file; an image it would find is refused like format=qcow2.
            string format = Get(drive.Options, "format") ?? LooksLikeImage(readHeader?.Invoke(file)) ?? "raw";
            if (format != "raw")
            {
                throw new UsageException($"-drive {args[drive.Index + 1]}: {file} is {format}, zns serves raw files only: convert it with `qemu-img convert -O raw {file} {Path.ChangeExtension(file, ".raw")}`");
            }
            foreach (var (key, value) in drive.Options)
            {
                if (key is "file" or "id" or "format" || DriveIoKeys.Contains(key) || key == "if" && value == "none")
                {
                    continue;
                }
                Unknown(args[drive.Index + 1], key, value);
            }
            string full = Path.GetFullPath(file);
            if (usedDrives.TryGetValue(full, out string? other))
            {
                throw new UsageException($"{file}: named by two devices (-device {other} and -device {device}): zns serves a file once");
            }
            usedDrives[full] = device;
            dropped.Add(drive.Index);
            return file;
        }

        for (int c = 0; c < controllerDevices.Count; c++)
        {
            var (index, options) = controllerDevices[c];
            string device = args[index + 1];
            string? id = Get(options, "id");
            string name = id ?? $"nvme{c}";
            string? serial = Get(options, "serial");
            if (serial is null)
            {
                throw new UsageException($"-device {device}: no serial= (QEMU: 'serial' property is required)");
            }
            var controllerOptions = new List<KeyValuePair<string, string>>();
            var shared = new List<KeyValuePair<string, string>>();
            var legacy = new List<KeyValuePair<string, string>>();
            string? legacyDrive = Get(options, "drive");
            foreach (var kv in options)
            {
                if (kv.Key is "driver" or "serial" or "drive" || PlacementKeys.Contains(kv.Key))
                {
                    continue;
                }
                if (Zns.Cli.ControllerOptions.Keys.Contains(kv.Key))
                {
                    controllerOptions.Add(kv);
                }
                else if (ControllerNamespaceKeys.Contains(kv.Key))
                {
                    shared.Add(kv);
                }
                else if (legacyDrive is not null && IsNamespaceOption(kv.Key))
                {
                    legacy.Add(kv);
                }
                else
                {
                    Unknown(device, kv.Key, kv.Value);
                }
            }
            var namespaces = new List<QemuNamespace>();
            if (legacyDrive is not null)
            {
                namespaces.Add(new QemuNamespace(DriveFile(legacyDrive, device), device, [.. shared, .. legacy]));
            }
            foreach (var (nsIndex, nsOptions) in namespaceDevices)
            {
                string nsDevice = args[nsIndex + 1];
                string? bus = Get(nsOptions, "bus");
                // QEMU puts an nvme-ns without bus= on the most recent nvme controller before it.
                bool onThis = bus is not null
                    ? bus == id
                    : controllerDevices.Where(d => d.Index < nsIndex).Select(d => d.Index).DefaultIfEmpty(-1).Last() == index;
                if (!onThis)
                {
                    continue;
                }
                string? nsDrive = Get(nsOptions, "drive") ?? throw new UsageException($"-device {nsDevice}: no drive=");
                var list = new List<KeyValuePair<string, string>>(shared);
                foreach (var kv in nsOptions)
                {
                    if (kv.Key is "driver" or "drive" or "bus" or "id")
                    {
                        continue;
                    }
                    if (IsNamespaceOption(kv.Key))
                    {
                        list.Add(kv);
                    }
                    else
                    {
                        Unknown(nsDevice, kv.Key, kv.Value);
                    }
                }
                namespaces.Add(new QemuNamespace(DriveFile(nsDrive, nsDevice), nsDevice, list));
                dropped.Add(nsIndex);
            }
            string socket = Path.Combine(socketDirectory, $"nvme{c}.sock");
            controllers.Add(new QemuController(name, serial, socket, controllerOptions, namespaces));
            replacements[index] = VfioUserDevice(socket, options);
        }
        foreach (var (nsIndex, nsOptions) in namespaceDevices)
        {
            if (!dropped.Contains(nsIndex))
            {
                throw new UsageException($"-device {args[nsIndex + 1]}: bus={Get(nsOptions, "bus")} names no -device nvme,...,id={Get(nsOptions, "bus")}");
            }
        }

        // Guest memory: an existing backend must be shared; otherwise a memfd backend of -m's size.
        string? machineBackend = null;
        foreach (int m in machines)
        {
            machineBackend = Get(SplitOptions(args[m + 1], "type"), "memory-backend") ?? machineBackend;
        }
        bool addBackend = machineBackend is null;
        if (machineBackend is not null)
        {
            var backend = objects.FirstOrDefault(o => Get(o.Options, "id") == machineBackend);
            if (backend.Options is null)
            {
                throw new UsageException($"-machine memory-backend={machineBackend}: no -object ...,id={machineBackend}");
            }
            string? share = Get(backend.Options, "share");
            if (share is not ("on" or "true" or "yes"))
            {
                throw new UsageException($"-object {args[backend.Index + 1]}: guest memory backend '{machineBackend}' is not shared; vfio-user needs share=on (e.g. -object memory-backend-memfd,id={machineBackend},size=...,share=on)");
            }
        }

        var result = new List<string>();
        bool placed = false;
        int lastMachine = machines.Count > 0 ? machines[^1] : -1;
        for (int i = 1; i < args.Count; i++)
        {
            if (dropped.Contains(i))
            {
                i++;
                continue;
            }
            if (replacements.TryGetValue(i, out string? json))
            {
                if (addBackend && !placed)
                {
                    result.Add("-object");
                    result.Add($"memory-backend-memfd,id={MemoryBackendId},size={MemorySize(memory)},share=on");
                    if (lastMachine < 0)
                    {
                        result.Add("-machine");
                        result.Add($"memory-backend={MemoryBackendId}");
                    }
                    placed = true;
                }
                result.Add(args[i]);
                result.Add(json);
                i++;
                continue;
            }
            if (i == lastMachine && addBackend && i + 1 < args.Count)
            {
                result.Add(args[i]);
                result.Add($"{args[i + 1]},memory-backend={MemoryBackendId}");
                i++;
                continue;
            }
            result.Add(args[i]);
        }
        return new QemuPlan(controllers, result, notes);
    }

    /// <summary>The format a file's first bytes show, for an image QEMU would probe as something other than raw.</summary>
    private static string? LooksLikeImage(byte[]? header)
    {
        if (header is null || header.Length < 8)
        {
            return null;
        }
        if (header[0] == 'Q' && header[1] == 'F' && header[2] == 'I' && header[3] == 0xfb)
        {
            return "qcow2";
        }
        if (header.AsSpan(0, 4).SequenceEqual("KDMV"u8))
        {
            return "vmdk";
        }
        if (header.AsSpan(0, 8).SequenceEqual("vhdxfile"u8))
        {
            return "vhdx";
        }
        return null;
    }

    /// <summary>QEMU's <c>-m</c> (<c>2G</c>, <c>size=2G,maxmem=...</c>, <c>2048</c> in MiB; 128M when absent) as a backend size.</summary>
    public static string MemorySize(string? m)
    {
        if (m is null)
        {
            return "128M";
        }
        string? size = Get(SplitOptions(m, "size"), "size");
        if (size is null)
        {
            throw new UsageException($"-m {m}: no size");
        }
        string s = size.Trim();
        int shift = 20;
        if (s.Length > 0 && char.IsAsciiLetter(s[^1]))
        {
            shift = char.ToUpperInvariant(s[^1]) switch
            {
                'B' => 0, 'K' => 10, 'M' => 20, 'G' => 30, 'T' => 40,
                _ => throw new UsageException($"-m {m}: invalid size '{size}'"),
            };
            s = s[..^1];
        }
        if (!long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out long n))
        {
            throw new UsageException($"-m {m}: invalid size '{size}'");
        }
        long bytes = n << shift;
        return bytes % (1L << 30) == 0 ? $"{bytes >> 30}G" : bytes % (1L << 20) == 0 ? $"{bytes >> 20}M" : $"{bytes}";
    }

    /// <summary>The vfio-user-pci device in JSON (QEMU takes its socket only so), with the controller's id and placement.</summary>
    private static string VfioUserDevice(string socket, List<KeyValuePair<string, string>> controller)
    {
        var sb = new StringBuilder();
        sb.Append("{\"driver\":\"vfio-user-pci\",\"socket\":{\"type\":\"unix\",\"path\":").Append(Json(socket)).Append('}');
        foreach (string key in new[] { "id", "bus", "addr" })
        {
            if (Get(controller, key) is { } value)
            {
                sb.Append(",\"").Append(key).Append("\":").Append(Json(value));
            }
        }
        return sb.Append('}').ToString();
    }

    private static string Json(string s) => "\"" + JsonEncodedText.Encode(s, JavaScriptEncoder.UnsafeRelaxedJsonEscaping).Value + "\"";

    /// <summary>A command line as a shell would take it back: words quoted only when they need it.</summary>
    public static string ShellQuote(IEnumerable<string> words) => string.Join(' ', words.Select(w =>
        w.Length > 0 && w.All(ch => char.IsAsciiLetterOrDigit(ch) || "_-./=,:@%+".Contains(ch)) ? w : "'" + w.Replace("'", "'\\''", StringComparison.Ordinal) + "'"));
}
