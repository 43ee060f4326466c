// A writer for the crash test: drives a file-backed namespace with writes, appends, finishes, resets and flushes
// until it is killed, printing every durability point on stdout:
//   F z:gen:wp ...   after Flush returned (gen of the data in each zone, write pointer relative to the zone start)
//   r z              before a Reset is issued        R z   after it returned (resets are durable on completion)
// Every block carries a header (magic, zone, LBA, generation) so the checker can tell real data from zeros.
using System.Buffers.Binary;
using Zns.Core.Zones;

string path = args[0];
int seed = int.Parse(args[1]);
ulong generationBase = ulong.Parse(args[2]) << 32;
var options = CrashGeometry.Options;
using var ns = ZonedNamespace.OpenFile(path, options);
var rng = new Random(seed);
var g = ns.Geometry;
var gen = new ulong[g.ZoneCount];
ulong nextGen = generationBase + 1;
var block = new byte[g.BlockSize];
for (uint z = 0; z < g.ZoneCount; z++)
{
    var info = ns.GetZone(z);
    if (info.WritePointer > info.StartLba)
    {
        ns.Read(info.StartLba, block);
        gen[z] = BinaryPrimitives.ReadUInt64LittleEndian(block.AsSpan(16));
    }
    else
    {
        gen[z] = nextGen++;
    }
}
var output = Console.Out;
void PrintFlushed()
{
    var sb = new System.Text.StringBuilder("F");
    for (uint z = 0; z < g.ZoneCount; z++)
    {
        var info = ns.GetZone(z);
        sb.Append($" {z}:{gen[z]}:{info.WritePointer - info.StartLba}");
    }
    output.WriteLine(sb.ToString());
    output.Flush();
}
PrintFlushed();
byte[] data = new byte[4 * g.BlockSize];
while (true)
{
    uint z = (uint)rng.Next((int)g.ZoneCount);
    var info = ns.GetZone(z);
    int op = rng.Next(100);
    if (op < 4)
    {
        output.WriteLine($"r {z}");
        output.Flush();
        if (!ns.ZoneManagementSend(info.StartLba, ZoneSendAction.Reset, false).IsSuccess) { throw new InvalidOperationException("reset failed"); }
        gen[z] = nextGen++;
        output.WriteLine($"R {z}");
        output.Flush();
    }
    else if (op < 7)
    {
        ns.ZoneManagementSend(info.StartLba, ZoneSendAction.Finish, false);
    }
    else if (op < 15)
    {
        if (!ns.Flush().IsSuccess) { throw new InvalidOperationException("flush failed"); }
        PrintFlushed();
    }
    else if (info.State != ZoneState.Full)
    {
        int room = (int)(info.StartLba + g.ZoneCapacityLbas - info.WritePointer);
        int n = Math.Min(room, 1 + rng.Next(4));
        for (int i = 0; i < n; i++)
        {
            var b = data.AsSpan(i * g.BlockSize, g.BlockSize);
            ulong lba = info.WritePointer + (ulong)i;
            b.Fill((byte)(lba + gen[z]));
            BinaryPrimitives.WriteUInt32LittleEndian(b, 0x5A4E5331);
            BinaryPrimitives.WriteUInt32LittleEndian(b[4..], z);
            BinaryPrimitives.WriteUInt64LittleEndian(b[8..], lba);
            BinaryPrimitives.WriteUInt64LittleEndian(b[16..], gen[z]);
        }
        var payload = data.AsSpan(0, n * g.BlockSize);
        var status = op < 55 ? ns.Write(info.WritePointer, payload, fua: op < 18) : ns.Append(info.StartLba, payload, out _);
        if (!status.IsSuccess) { throw new InvalidOperationException($"write failed: {status}"); }
        if (op < 18)
        {
            PrintFlushed(); // FUA: this write and everything before it is durable
        }
    }
}

/// <summary>The geometry the crash writer and its checker share.</summary>
public static class CrashGeometry
{
    public static readonly NamespaceOptions Options = new()
    {
        LogicalBlockSize = 4096, ZoneSize = 16 * 4096, ZoneCapacity = 12 * 4096, MaxOpen = 0, MaxActive = 0,
    };

    public const long Size = 32 * 16 * 4096;
}
