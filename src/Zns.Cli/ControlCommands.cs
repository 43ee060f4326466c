using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Zns.Control;
using Zns.Core.Zones;

namespace Zns.Cli;

/// <summary><c>zns zones</c>, <c>zns zone ACTION</c>, <c>zns fault ...</c>, <c>zns stats</c>: commands for a running <c>zns serve</c>.</summary>
internal static partial class ControlCommands
{
    private static Option<string> ControlOption() => new("--control")
    {
        Description = $"Management endpoint of the running zns serve: ADDRESS:PORT or unix:PATH (default $ZNS_CONTROL or {ControlAddress.Default})",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("ZNS_CONTROL") is { Length: > 0 } e ? e : ControlAddress.Default,
        Recursive = true,
    };

    private static Option<string> TokenOption() => new("--control-token")
    {
        Description = "Token of the endpoint (default $ZNS_CONTROL_TOKEN)",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("ZNS_CONTROL_TOKEN") ?? "",
        Recursive = true,
    };

    private static Option<uint> NsidOption() => new("--nsid", "-n") { Description = "Namespace ID (default 1)", DefaultValueFactory = _ => 1 };

    internal sealed record Endpoint(Option<string> Control, Option<string> Token)
    {
        public ControlClient Client(ParseResult r) =>
            new(r.GetValue(Control)!, r.GetValue(Token) is { Length: > 0 } t ? t : null);
    }

    internal static Endpoint AddEndpoint(Command cmd)
    {
        var e = new Endpoint(ControlOption(), TokenOption());
        cmd.Options.Add(e.Control);
        cmd.Options.Add(e.Token);
        return e;
    }

    public static IEnumerable<Command> All()
    {
        yield return Zones();
        yield return Zone();
        yield return Fault();
        yield return Stats();
        yield return Namespace();
        yield return TopCommand.Create();
    }

    private static Command Zones()
    {
        var nsid = NsidOption();
        var offset = new Option<string>("--offset", "-o") { Description = "First zone by start sector (512-byte units), as blkzone" };
        var count = new Option<string>("--count", "-c") { Description = "Number of zones" };
        var cmd = new Command("zones", "Print the zones of a running zns serve exactly as `zns report` (and blkzone report) do") { nsid, offset, count };
        var endpoint = AddEndpoint(cmd);
        cmd.SetAction(async (r, ct) =>
        {
            using var client = endpoint.Client(r);
            var zones = await client.GetAsync($"api/namespaces/{r.GetValue(nsid)}/zones", ControlJson.Default.ZonesDto, ct);
            int shift = BitOperations(zones.Namespace.BlockSize);
            ulong first = r.GetValue(offset) is { } o ? ParseNumber("--offset", o) : 0;
            ulong n = r.GetValue(count) is { } c ? ParseNumber("--count", c) : ulong.MaxValue;
            ulong zoneSectors = zones.Namespace.ZoneSizeLbas << (shift - 9);
            ulong firstZone = first / zoneSectors;
            foreach (ZoneDto z in zones.Zones.Where(z => z.Zone >= firstZone).Take((int)Math.Min(n, int.MaxValue)))
            {
                Console.WriteLine(Output.BlkzoneLine(shift, zones.Namespace.ZoneSizeLbas, ToInfo(z)));
            }
            return 0;
        });
        return cmd;
    }

    private static readonly string[] ZoneActions = ["offline", "readonly", "repair", "finish", "finish-recommended", "reset-recommended", "clear-recommended"];

    private static Command Zone()
    {
        var action = new Argument<string>("ACTION") { Description = string.Join("|", ZoneActions) };
        action.AcceptOnlyFromAmong(ZoneActions);
        var zone = new Argument<string?>("ZONE") { Description = "Zone number (or give -o SECTOR)", Arity = ArgumentArity.ZeroOrOne };
        var offset = new Option<string>("--offset", "-o") { Description = "Zone by start sector (512-byte units), as blkzone" };
        var nsid = NsidOption();
        var cmd = new Command("zone", "Change a zone of a running zns serve as the controller would: offline, readonly, repair (back to Empty), " +
                                      "finish (Zone Finished by Controller), finish-/reset-recommended, clear-recommended")
        {
            action, zone, offset, nsid,
        };
        var endpoint = AddEndpoint(cmd);
        cmd.SetAction(async (r, ct) =>
        {
            using var client = endpoint.Client(r);
            uint ns = r.GetValue(nsid);
            uint index;
            if (r.GetValue(zone) is { } text)
            {
                index = (uint)Math.Min(ParseNumber("ZONE", text), uint.MaxValue);
            }
            else if (r.GetValue(offset) is { } o)
            {
                var info = await client.GetAsync("api/namespaces", ControlJson.Default.NamespaceDtoArray, ct);
                var n = info.FirstOrDefault(x => x.Nsid == ns) ?? throw new UsageException($"--nsid: no namespace {ns}");
                ulong zoneSectors = n.ZoneSizeLbas * (ulong)n.BlockSize / 512;
                ulong sector = ParseNumber("--offset", o);
                if (zoneSectors == 0 || sector % zoneSectors != 0)
                {
                    throw new UsageException($"--offset: {o} is not the start sector of a zone");
                }
                index = (uint)Math.Min(sector / zoneSectors, uint.MaxValue);
            }
            else
            {
                throw new UsageException("zone: give ZONE or -o SECTOR");
            }
            var z = await client.PostAsync($"api/namespaces/{ns}/zones/{index}/{r.GetValue(action)}", null, ControlJson.Default.ZoneDto, ct);
            var nsInfo = (await client.GetAsync("api/namespaces", ControlJson.Default.NamespaceDtoArray, ct)).First(x => x.Nsid == ns);
            Console.WriteLine(Output.BlkzoneLine(BitOperations(nsInfo.BlockSize), nsInfo.ZoneSizeLbas, ToInfo(z)) + Attributes(z));
            return 0;
        });
        return cmd;
    }

    private static Command Fault()
    {
        var cmd = new Command("fault", "Arm, list and clear injected faults of a running zns serve");
        var endpoint = new Endpoint(ControlOption(), TokenOption());
        cmd.Options.Add(endpoint.Control);
        cmd.Options.Add(endpoint.Token);

        var list = new Command("list", "Print the armed faults as JSON");
        list.SetAction(async (r, ct) => Print(await endpoint.Client(r).GetAsync("api/faults", ControlJson.Default.FaultsDto, ct)));
        cmd.Subcommands.Add(list);

        var file = new Argument<string>("FILE") { Description = "Scenario JSON (as for --faults), or - for standard input" };
        var add = new Command("add", "Arm a fault scenario (the JSON of POST /api/faults)") { file };
        add.SetAction(async (r, ct) =>
        {
            string f = r.GetValue(file)!;
            string json = f == "-" ? await Console.In.ReadToEndAsync(ct) : File.Exists(f) ? await File.ReadAllTextAsync(f, ct) : throw new UsageException($"FILE: {f}: no such file");
            return Print(await endpoint.Client(r).PostAsync("api/faults", json, ControlJson.Default.FaultsDto, ct));
        });
        cmd.Subcommands.Add(add);

        {
            var nsid = NsidOption();
            var lba = new Option<string>("--lba") { Description = "First LBA of the range", Required = true };
            var blocks = new Option<string>("--blocks") { Description = "Blocks in the range (default 1)" };
            var on = new Option<string>("--on") { Description = "read (Unrecovered Read Error), write (Write Fault) or both (default)" };
            on.AcceptOnlyFromAmong("read", "write", "both");
            var (times, probability) = TriggerOptions();
            var dnr = new Option<bool>("--dnr") { Description = "Set Do Not Retry" };
            var media = new Command("media", "A media error on an LBA range") { nsid, lba, blocks, on, times, probability, dnr };
            media.SetAction(async (r, ct) => Print(await Arm(endpoint.Client(r), new FaultScenarioDto
            {
                MediaErrors = [new MediaErrorDto
                {
                    Nsid = r.GetValue(nsid), Lba = ParseNumber("--lba", r.GetValue(lba)!), Blocks = r.GetValue(blocks) is { } b ? ParseNumber("--blocks", b) : null,
                    On = r.GetValue(on), Times = Times(r, times), Probability = Probability(r, probability), Dnr = r.GetValue(dnr) ? true : null,
                }],
            }, ct)));
            cmd.Subcommands.Add(media);
        }
        {
            var opcode = new Option<string>("--opcode") { Description = "read, write, append, write-zeroes, flush, dsm, zone-send, zone-receive (default: every I/O command)" };
            var us = new Option<string>("--us") { Description = "Fixed delay in microseconds" };
            var distribution = new Option<string>("--distribution") { Description = "fixed (default), uniform, normal, exponential" };
            var mean = new Option<string>("--mean-us") { Description = "Mean (normal, exponential)" };
            var min = new Option<string>("--min-us") { Description = "Lower bound (uniform)" };
            var max = new Option<string>("--max-us") { Description = "Upper bound (uniform)" };
            var sd = new Option<string>("--stddev-us") { Description = "Standard deviation (normal)" };
            var latency = new Command("latency", "Delay I/O commands") { opcode, us, distribution, mean, min, max, sd };
            latency.SetAction(async (r, ct) => Print(await Arm(endpoint.Client(r), new FaultScenarioDto
            {
                Latency = [new LatencyDto
                {
                    Opcode = r.GetValue(opcode), Distribution = r.GetValue(distribution), Us = Real(r, us, "--us"), MeanUs = Real(r, mean, "--mean-us"),
                    MinUs = Real(r, min, "--min-us"), MaxUs = Real(r, max, "--max-us"), StdDevUs = Real(r, sd, "--stddev-us"),
                }],
            }, ct)));
            cmd.Subcommands.Add(latency);
        }
        {
            var opcode = new Option<string>("--opcode") { Description = "Which commands (default: every I/O command)" };
            var status = new Option<string>("--status") { Description = "namespace-not-ready or command-aborted", Required = true };
            status.AcceptOnlyFromAmong("namespace-not-ready", "command-aborted");
            var nsid = new Option<uint?>("--nsid", "-n") { Description = "Only this namespace" };
            var (times, probability) = TriggerOptions();
            var transient = new Command("transient", "Fail commands with a retryable status (no DNR)") { opcode, status, nsid, times, probability };
            transient.SetAction(async (r, ct) => Print(await Arm(endpoint.Client(r), new FaultScenarioDto
            {
                Transient = [new TransientDto { Opcode = r.GetValue(opcode), Status = r.GetValue(status), Nsid = r.GetValue(nsid), Times = Times(r, times), Probability = Probability(r, probability) }],
            }, ct)));
            cmd.Subcommands.Add(transient);
        }
        {
            var id = new Argument<string?>("ID") { Description = "Rule to remove (default: every media, latency and transient rule)", Arity = ArgumentArity.ZeroOrOne };
            var clear = new Command("clear", "Disarm one rule or all of them (zone conditions stay; use zns zone repair)") { id };
            clear.SetAction(async (r, ct) => Print(r.GetValue(id) is { } i
                ? await endpoint.Client(r).DeleteAsync($"api/faults/{Uri.EscapeDataString(i)}", ControlJson.Default.FaultsDto, ct)
                : await endpoint.Client(r).DeleteAsync("api/faults", ControlJson.Default.FaultsDto, ct)));
            cmd.Subcommands.Add(clear);
        }
        {
            var admin = new Option<bool>("--admin") { Description = "Drop the admin queues too" };
            var drop = new Command("drop-connections", "Drop the NVMe/TCP connections of every controller (the host reconnects)") { admin };
            drop.SetAction(async (r, ct) => Print(await endpoint.Client(r).PostAsync("api/faults/drop-connections",
                JsonSerializer.Serialize(new DropConnectionsDto { Admin = r.GetValue(admin) }, ControlJson.Default.DropConnectionsDto), ControlJson.Default.AffectedDto, ct)));
            cmd.Subcommands.Add(drop);
        }
        {
            var then = new Option<string>("--then") { Description = "stall (commands never complete; default) or drop (connections closed)" };
            then.AcceptOnlyFromAmong("stall", "drop");
            var fatal = new Command("controller-fatal", "Set Controller Fatal Status on every live controller") { then };
            fatal.SetAction(async (r, ct) => Print(await endpoint.Client(r).PostAsync("api/faults/controller-fatal",
                JsonSerializer.Serialize(new ControllerFatalDto { Then = r.GetValue(then) }, ControlJson.Default.ControllerFatalDto), ControlJson.Default.AffectedDto, ct)));
            cmd.Subcommands.Add(fatal);
        }
        cmd.Subcommands.Add(PowerCut(endpoint));
        {
            var cuts = new Command("power-cuts", "Print the armed power cut, the last cuts (what each dropped, per zone) and whether power is off");
            cuts.SetAction(async (r, ct) => Print(await endpoint.Client(r).GetAsync("api/faults/power-cuts", ControlJson.Default.PowerCutsDto, ct)));
            cmd.Subcommands.Add(cuts);
        }
        {
            var nsid = NsidOption();
            var fzr = new Option<string>("--finish-recommended-after-ms") { Description = "Set Finish Zone Recommended after a zone is active this long (0 = never)" };
            var rzr = new Option<string>("--reset-recommended-after-ms") { Description = "Set Reset Zone Recommended after a zone is Full this long (0 = never)" };
            var frl = new Option<string>("--frl") { Description = "Finish Recommended Limit, seconds: then the controller finishes the zone (ZFC)" };
            var rrl = new Option<string>("--rrl") { Description = "Reset Recommended Limit, seconds: then the recommendation lapses" };
            var health = new Command("health", "Show or set the zone health policy of a namespace") { nsid, fzr, rzr, frl, rrl };
            health.SetAction(async (r, ct) =>
            {
                using var client = endpoint.Client(r);
                string path = $"api/namespaces/{r.GetValue(nsid)}/health";
                if (r.GetValue(fzr) is null && r.GetValue(rzr) is null && r.GetValue(frl) is null && r.GetValue(rrl) is null)
                {
                    return Print(await client.GetAsync(path, ControlJson.Default.HealthDto, ct));
                }
                var current = await client.GetAsync(path, ControlJson.Default.HealthDto, ct);
                var request = new HealthDto
                {
                    FinishRecommendedAfterMs = r.GetValue(fzr) is { } a ? (long)ParseNumber("--finish-recommended-after-ms", a) : current.FinishRecommendedAfterMs,
                    ResetRecommendedAfterMs = r.GetValue(rzr) is { } b ? (long)ParseNumber("--reset-recommended-after-ms", b) : current.ResetRecommendedAfterMs,
                    Frl = r.GetValue(frl) is { } c ? (uint)ParseNumber("--frl", c) : current.Frl,
                    Rrl = r.GetValue(rrl) is { } d ? (uint)ParseNumber("--rrl", d) : current.Rrl,
                };
                return Print(await client.PutAsync(path, JsonSerializer.Serialize(request, ControlJson.Default.HealthDto), ControlJson.Default.HealthDto, ct));
            });
            cmd.Subcommands.Add(health);
        }
        return cmd;
    }

    /// <summary>
    /// <c>zns fault power-cut [--nsid N] [--keep none|all|random] [--torn] [--seed S] [--off-ms T] [--at-command N | --after-flushes N]</c>:
    /// every controller loses power now (or when armed: at the N-th I/O command, or after the N-th Flush).
    /// </summary>
    private static Command PowerCut(Endpoint endpoint)
    {
        var nsid = new Option<string>("--nsid", "-n") { Description = "Only this namespace drops data (default: every namespace; every controller loses power anyway)" };
        var keep = new Option<string>("--keep") { Description = "What is kept of data no Flush or FUA covered: none (default), all, random" };
        var torn = new Option<bool>("--torn") { Description = "With --keep random: cut the last kept write of each zone at a block boundary" };
        var seed = new Option<string>("--seed") { Description = "Seed of the random choices (default: a random one, reported)" };
        var offMs = new Option<string>("--off-ms") { Description = "How long the device stays off, in ms (0..3600000; default 0)" };
        var atCommand = new Option<string>("--at-command") { Description = "Arm instead: cut at the N-th I/O command from now (it is not executed)" };
        var afterFlushes = new Option<string>("--after-flushes") { Description = "Arm instead: cut right after the N-th Flush from now" };
        var cut = new Command("power-cut", "Cut power: unflushed data is dropped by --keep, zones power-cycle, hosts reconnect after --off-ms")
        {
            nsid, keep, torn, seed, offMs, atCommand, afterFlushes,
        };
        cut.SetAction(async (r, ct) =>
        {
            var request = PowerCutRequest(r.GetValue(nsid), r.GetValue(keep), r.GetValue(torn), r.GetValue(seed), r.GetValue(offMs),
                r.GetValue(atCommand), r.GetValue(afterFlushes));
            return Print(await endpoint.Client(r).PostAsync("api/faults/power-cut",
                JsonSerializer.Serialize(request, ControlJson.Default.PowerCutDto), ControlJson.Default.PowerCutsDto, ct));
        });
        return cut;
    }

    /// <summary>The request of <c>zns fault power-cut</c>; a bad value is a usage error naming its option.</summary>
    internal static PowerCutDto PowerCutRequest(string? nsid, string? keep, bool torn, string? seed, string? offMs, string? atCommand, string? afterFlushes)
    {
        PowerCutKeep? policy = keep is null ? PowerCutKeep.None : PowerCutPolicy.ParseKeep(keep);
        if (policy is null)
        {
            throw new UsageException($"--keep: '{keep}' is not none, all or random");
        }
        if (torn && policy != PowerCutKeep.Random)
        {
            throw new UsageException("--torn: needs --keep random (a torn write is a partly kept one)");
        }
        long? Count(string name, string? text, long min, long max)
        {
            if (text is null)
            {
                return null;
            }
            return long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v) && v >= min && v <= max
                ? v : throw new UsageException($"{name}: '{text}' is not a whole number from {min} to {max}");
        }
        long? at = Count("--at-command", atCommand, 1, long.MaxValue);
        long? flushes = Count("--after-flushes", afterFlushes, 1, long.MaxValue);
        if (at is not null && flushes is not null)
        {
            throw new UsageException("--at-command: give --at-command or --after-flushes, not both");
        }
        return new PowerCutDto
        {
            Nsid = nsid is null ? null : (uint)Count("--nsid", nsid, 1, uint.MaxValue)!.Value,
            Keep = PowerCutPolicy.KeepName(policy.Value),
            Torn = torn ? true : null,
            Seed = seed is null ? null : ParseNumber("--seed", seed),
            OffMs = Count("--off-ms", offMs, 0, Zns.Target.Controller.NvmeSubsystem.MaxPowerOffMs),
            AtCommand = at,
            AfterFlushes = flushes,
        };
    }

    private static Command Stats()
    {
        var cmd = new Command("stats", "Commands, bytes, errors and zone counts of a running zns serve");
        var endpoint = AddEndpoint(cmd);
        cmd.SetAction(async (r, ct) =>
        {
            var s = await endpoint.Client(r).GetAsync("api/stats", ControlJson.Default.StatsDto, ct);
            Console.WriteLine($"controllers {s.Controllers}, I/O queues {s.Queues}, connections {s.Connections}");
            foreach (var n in s.Namespaces)
            {
                Console.WriteLine($"nsid {n.Nsid}: reads {n.Reads} ({Output.Bytes(n.ReadBytes)}), writes {n.Writes}, appends {n.Appends} ({Output.Bytes(n.WrittenBytes)} written), other {n.OtherCommands}");
                if (n.Conditions.Count > 0)
                {
                    Console.WriteLine($"  zones: {string.Join(", ", n.Conditions.Where(c => c.Value > 0).Select(c => $"{c.Key} {c.Value}"))}; open {n.Open}, active {n.Active}");
                }
                Console.WriteLine($"  errors: {(n.Errors.Count == 0 ? "none" : string.Join(", ", n.Errors.Select(e => $"{e.Key} {e.Value}")))}");
            }
            return 0;
        });
        return cmd;
    }

    // ---- helpers -----------------------------------------------------------------------------------------------

    private static (Option<string> Times, Option<string> Probability) TriggerOptions() =>
        (new Option<string>("--times") { Description = "Fire this many times (1 = once; default always)" },
         new Option<string>("--probability") { Description = "Fire for each matching command with this probability (0..1]" });

    private static int? Times(ParseResult r, Option<string> o) => r.GetValue(o) is { } t ? (int)Math.Min(ParseNumber("--times", t), int.MaxValue) : null;

    private static double? Probability(ParseResult r, Option<string> o) => Real(r, o, "--probability");

    private static double? Real(ParseResult r, Option<string> o, string name) =>
        r.GetValue(o) is not { } t ? null
        : double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v
        : throw new UsageException($"{name}: '{t}' is not a number");

    private static Task<FaultsDto> Arm(ControlClient client, FaultScenarioDto scenario, CancellationToken ct) =>
        client.PostAsync("api/faults", JsonSerializer.Serialize(scenario, ControlJson.Default.FaultScenarioDto), ControlJson.Default.FaultsDto, ct);

    private static int Print<T>(T value)
    {
        var options = new JsonSerializerOptions(ControlJson.Default.Options) { WriteIndented = true, TypeInfoResolver = ControlJson.Default };
        Console.WriteLine(JsonSerializer.Serialize(value, options.GetTypeInfo(typeof(T))));
        return 0;
    }

    private static ulong ParseNumber(string name, string text)
    {
        bool hex = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
        return ulong.TryParse(hex ? text[2..] : text, hex ? NumberStyles.AllowHexSpecifier : NumberStyles.None, CultureInfo.InvariantCulture, out ulong v)
            ? v : throw new UsageException($"{name}: '{text}' is not a number");
    }

    private static int BitOperations(int blockSize) => System.Numerics.BitOperations.Log2((uint)blockSize);

    private static ZoneInfo ToInfo(ZoneDto z) =>
        new(z.Zone, z.Start, z.Capacity, z.WritePointer, (ZoneState)z.State, (ZoneAttributes)z.AttributeBits);

    private static string Attributes(ZoneDto z) => z.Attributes.Length == 0 ? "" : $" attrs: {string.Join(",", z.Attributes)}";
}
