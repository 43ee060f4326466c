using System.CommandLine;
using System.Globalization;
using Zns.Core.Recording;
using Zns.Core.Zones;

namespace Zns.Cli;

// zns replay DIR --list | --to ENTRY | --flush N --image FILE: a write log read back, or rebuilt at a crash point.
internal static partial class Commands
{
    public static Command Replay()
    {
        var log = new Argument<string>("DIR") { Description = "The --write-log directory of zns serve (or one of its nsN.wlog files)" };
        var nsid = new Option<string>("--nsid") { Description = "Which namespace's log (needed when DIR holds several)" };
        var list = new Option<bool>("--list") { Description = "Print the entries (index, kind, nsid, LBA, zone, blocks), flushes marked with their ordinal" };
        var to = new Option<string>("--to") { Description = "Rebuild the namespace as it was after this entry" };
        var flush = new Option<string>("--flush") { Description = "Rebuild the namespace as it was after its Nth flush (0: the start of the log)" };
        var image = new Option<string>("--image") { Description = "The backstore to write (new; its zone state goes to FILE.zns); zns serve FILE then serves that point" };
        var keep = new Option<string>("--keep") { Description = "What a crash keeps of the data written after the last flush before the point: none, all (default) or random" };
        var torn = new Option<bool>("--torn") { Description = "With --keep random: cut the last kept write of a zone at a block boundary" };
        var seed = new Option<string>("--seed") { Description = "Seed of --keep random (the same seed gives the same crash; default 0)" };
        var cmd = new Command("replay", "Read a write log, or rebuild a backstore at any entry or flush of it (a crash point)")
        {
            log, nsid, list, to, flush, image, keep, torn, seed,
        };
        cmd.SetAction(r =>
        {
            string path = LogPath(r.GetValue(log)!, r.GetValue(nsid));
            bool listing = r.GetValue(list);
            string? toText = r.GetValue(to), flushText = r.GetValue(flush), imagePath = r.GetValue(image);
            int targets = (listing ? 1 : 0) + (toText is null ? 0 : 1) + (flushText is null ? 0 : 1);
            if (targets != 1)
            {
                throw new UsageException("replay: give one of --list, --to ENTRY or --flush N");
            }
            try
            {
                if (listing)
                {
                    if (imagePath is not null || r.GetValue(keep) is not null || r.GetValue(torn) || r.GetValue(seed) is not null)
                    {
                        throw new UsageException("--list: takes no --image, --keep, --torn or --seed");
                    }
                    return List(path);
                }
                var target = toText is not null
                    ? new ReplayTarget(ParseCount("--to", toText), null)
                    : new ReplayTarget(null, ParseCount("--flush", flushText!));
                if (imagePath is null)
                {
                    throw new UsageException($"{(toText is null ? "--flush" : "--to")}: needs --image FILE");
                }
                Action<ZonedNamespace>? crash = CrashPolicy(r.GetValue(keep), r.GetValue(torn), r.GetValue(seed));
                var result = WriteLogReplay.Rebuild(path, imagePath, target, crash);
                if (result.Warning is { } warning)
                {
                    Console.Error.WriteLine($"zns: warning: {warning}");
                }
                Console.WriteLine($"zns: {imagePath}: rebuilt after {(result.LastEntry < 0 ? "nothing (the start of the log)" : $"entry {result.LastEntry}")} " +
                                  $"({target}){(crash is null ? "" : $", then a crash keeping {r.GetValue(keep)}")}; serve it with: zns serve {imagePath}");
                return 0;
            }
            catch (WriteLogException e)
            {
                throw new UsageException(e.Message);
            }
        });
        return cmd;
    }

    /// <summary>The log file DIR names: DIR itself when it is a file, else DIR/nsN.wlog for --nsid N or the only log there.</summary>
    private static string LogPath(string dir, string? nsidText)
    {
        if (File.Exists(dir))
        {
            if (nsidText is not null)
            {
                throw new UsageException($"--nsid: {dir} is one log file already");
            }
            return dir;
        }
        if (!Directory.Exists(dir))
        {
            throw new UsageException($"{dir}: no such write log directory");
        }
        if (nsidText is not null)
        {
            uint n = (uint)ParseCount("--nsid", nsidText);
            string p = WriteLogFormat.PathFor(dir, n);
            return n >= 1 && File.Exists(p) ? p : throw new UsageException($"--nsid {nsidText}: {dir} holds no log of namespace {nsidText}");
        }
        string[] logs = Directory.GetFiles(dir, "ns*.wlog");
        Array.Sort(logs, StringComparer.Ordinal);
        return logs.Length switch
        {
            1 => logs[0],
            0 => throw new UsageException($"{dir}: no write log (nsN.wlog) in it"),
            _ => throw new UsageException($"{dir}: holds the logs of several namespaces ({string.Join(", ", logs.Select(Path.GetFileName))}): pass --nsid N"),
        };
    }

    private static long ParseCount(string option, string text) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long n)
            ? n : throw new UsageException($"{option}: '{text}' is not a whole number ≥ 0");

    /// <summary>What happens to the rebuilt namespace after the point: nothing for --keep all (the exact state).</summary>
    private static Action<ZonedNamespace>? CrashPolicy(string? keep, bool torn, string? seedText)
    {
        if (keep is not (null or "none" or "all" or "random"))
        {
            throw new UsageException($"--keep: '{keep}' is not none, all or random");
        }
        if (torn && keep != "random")
        {
            throw new UsageException("--torn: needs --keep random (a torn write is a partly kept one)");
        }
        if (seedText is not null && keep != "random")
        {
            throw new UsageException("--seed: needs --keep random (the other policies are not random)");
        }
        if (keep is null or "all")
        {
            return null;
        }
        ulong seed = seedText is null ? 0
            : ulong.TryParse(seedText, NumberStyles.None, CultureInfo.InvariantCulture, out ulong s) ? s
            : throw new UsageException($"--seed: '{seedText}' is not a whole number ≥ 0");
        var policy = new PowerCutPolicy(PowerCutPolicy.ParseKeep(keep)!.Value, torn, seed);
        // The same cut zns fault power-cut makes, on the rebuilt namespace (its flushes were replayed, so it knows
        // what was durable at the point).
        return ns => ns.CutPower(policy, policy.CreateRandom());
    }

    private static int List(string path)
    {
        using var reader = WriteLogReader.Open(path);
        var out_ = Console.Out;
        var k = reader.Kept;
        out_.WriteLine($"{path}: nsid {reader.Nsid}, {Output.Bytes(reader.BackstoreLength)}, " +
                       (k.Zoned ? $"zoned, zone size {Output.Bytes(k.ZoneSize)}, capacity {Output.Bytes(k.ZoneCapacity)}" : "conventional") +
                       $", {k.LogicalBlockSize}-byte blocks, uuid {k.Uuid}");
        out_.WriteLine($"{"ENTRY",8}  {"KIND",-12}  {"NSID",4}  {"LBA",12}  {"ZONE",6}  {"BLOCKS",6}  NOTE");
        long zoneLbas = k.Zoned ? k.ZoneSize / k.LogicalBlockSize : 0;
        long entries = 0, flushes = 0;
        while (reader.TryReadNext(out var e, out _))
        {
            entries++;
            out_.WriteLine(Line(in e, reader.Nsid, zoneLbas));
            if (e.Kind == WriteLogKind.Flush)
            {
                flushes++;
            }
        }
        out_.WriteLine($"{entries} entries, {flushes} flushes{(reader.ReachedFull ? "; the log filled up: nothing after the last entry was recorded" : "")}");
        if (reader.Damage is { } damage)
        {
            Console.Error.WriteLine($"zns: warning: {path}: {damage}; the {entries} entries before it are good");
        }
        return 0;
    }

    private static string Line(in WriteLogEntry e, uint nsid, long zoneLbas)
    {
        bool selectAll = (e.Flags & WriteLogFlags.SelectAll) != 0;
        bool hasLba = e.Kind is not (WriteLogKind.Flush or WriteLogKind.Full or WriteLogKind.PowerCut) && !selectAll;
        string kind = e.Kind switch
        {
            WriteLogKind.Flush => $"FLUSH {e.FlushOrdinal}",
            WriteLogKind.Full => "LOG FULL",
            WriteLogKind.PowerCut => "POWER CUT",
            WriteLogKind.ZoneAction => $"zone-{e.Action.ToString().ToLowerInvariant()}",
            WriteLogKind.WriteZeroes => "write-zeroes",
            _ => e.Kind.ToString().ToLowerInvariant(),
        };
        string lba = hasLba ? e.Lba.ToString(CultureInfo.InvariantCulture) : "-";
        string zone = hasLba && zoneLbas > 0 ? (e.Lba / (ulong)zoneLbas).ToString(CultureInfo.InvariantCulture) : selectAll ? "all" : "-";
        string blocks = e.Blocks > 0 ? e.Blocks.ToString(CultureInfo.InvariantCulture) : "-";
        var notes = new List<string>();
        if ((e.Flags & WriteLogFlags.Fua) != 0) { notes.Add("fua"); }
        if ((e.Flags & WriteLogFlags.Zsaso) != 0) { notes.Add("zrwa"); }
        if (!e.Status.IsSuccess) { notes.Add($"stopped with {e.Status}"); }
        return $"{e.Index,8}  {kind,-12}  {nsid,4}  {lba,12}  {zone,6}  {blocks,6}  {string.Join(' ', notes)}".TrimEnd();
    }
}
