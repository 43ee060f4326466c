using System.CommandLine;
using System.Text.Json;
using Zns.Control;

namespace Zns.Cli;

// zns namespace list|write-protect: namespace-wide state of a running zns serve.
internal static partial class ControlCommands
{
    private static Command Namespace()
    {
        var cmd = new Command("namespace", "Show the namespaces of a running zns serve or write-protect one");
        var endpoint = AddEndpoint(cmd);

        var list = new Command("list", "One line per namespace: size, zones and whether it is write protected");
        list.SetAction(async (r, ct) =>
        {
            using var client = endpoint.Client(r);
            foreach (NamespaceDto n in await client.GetAsync("api/namespaces", ControlJson.Default.NamespaceDtoArray, ct))
            {
                Console.WriteLine(Describe(n));
            }
            return 0;
        });
        cmd.Subcommands.Add(list);

        var state = new Argument<string>("STATE") { Description = "on (the namespace goes read-only, as a worn-out drive does) or off" };
        var nsid = NsidOption();
        var protect = new Command("write-protect",
            "Write-protect a namespace or lift it: writes then fail with Namespace is Write Protected, and the host is told to re-read it")
        {
            state, nsid,
        };
        protect.SetAction(async (r, ct) =>
        {
            bool enabled = r.GetValue(state) switch
            {
                "on" => true,
                "off" => false,
                var s => throw new UsageException($"STATE: '{s}' is not on or off"),
            };
            uint n = r.GetValue(nsid);
            if (n == 0)
            {
                throw new UsageException("--nsid: 0 is not a namespace (NSIDs start at 1)");
            }
            using var client = endpoint.Client(r);
            string body = JsonSerializer.Serialize(new WriteProtectDto { Enabled = enabled }, ControlJson.Default.WriteProtectDto);
            Console.WriteLine(Describe(await client.PutAsync($"api/namespaces/{n}/write-protect", body, ControlJson.Default.NamespaceDto, ct)));
            return 0;
        });
        cmd.Subcommands.Add(protect);
        return cmd;
    }

    private static string Describe(NamespaceDto n) =>
        $"nsid {n.Nsid}: {(n.Zoned ? $"zoned, {n.Zones} zones" : "conventional")}, {Output.Bytes((long)(n.SizeLbas * (ulong)n.BlockSize))}, " +
        (n.WriteProtected ? "write protected" : "writable");
}
