using System.CommandLine;
using System.Net;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Zns.Core.Storage;
using Zns.Core.Zones;
using Zns.Target.Controller;
using Zns.Target.VfioUser;
using Zns.Target.Tcp;

namespace Zns.Cli;

internal static partial class Commands
{
    /// <summary>The namespace <c>zns serve</c> makes when given no file: the seed geometry of a QEMU ZNS setup.</summary>
    public const string DefaultFile = "zns.raw";
    public const long DefaultSize = 32L << 30;
    public static readonly NamespaceOptions DefaultOptions = new()
    {
        LogicalBlockSize = 4096, ZoneSize = 64L << 20, ZoneCapacity = 62L << 20, MaxOpen = 16, MaxActive = 32, Zasl = 5,
    };

    public static Command Serve()
    {
        var files = new Argument<string[]>("FILE")
        {
            Description = "Backstores, one namespace each (nsid in order): PATH or ram:SIZE, optionally followed by ,key=value options " +
                          "for that namespace only (e.g. conv.raw,zoned=off). Default: zns.raw in the working directory, " +
                          "created as a 32 GiB sparse file with 64M zones, 62M capacity, max_open 16, max_active 32, zasl 5",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var listen = new Option<string>("--listen", "-l") { Description = "Address and port to listen on (default 127.0.0.1:4420; none: no NVMe/TCP listener)", DefaultValueFactory = _ => "127.0.0.1:4420" };
        var vfioUser = new Option<string[]>("--vfio-user")
        {
            Description = "Also serve a PCIe NVMe controller of the subsystem over vfio-user on this Unix socket (repeatable; QEMU attaches it with -device vfio-user-pci)",
            Arity = ArgumentArity.OneOrMore, AllowMultipleArgumentsPerToken = false,
        };
        var nqn = new Option<string>("--nqn") { Description = "Subsystem NQN", DefaultValueFactory = _ => new TargetOptions().SubsystemNqn };
        var serial = new Option<string>("--serial") { Description = "Serial number (default deadbeef)", DefaultValueFactory = _ => "deadbeef" };
        var model = new Option<string>("--model") { Description = "Model number", DefaultValueFactory = _ => new TargetOptions().ModelNumber };
        var firmware = new Option<string>("--firmware") { Description = "Firmware revision", DefaultValueFactory = _ => new TargetOptions().FirmwareRevision };
        var allowHost = new Option<string[]>("--allow-host") { Description = "Host NQN allowed to connect (repeatable; default: any host)", Arity = ArgumentArity.OneOrMore, AllowMultipleArgumentsPerToken = false };
        var size = new Option<string>("--size", "-s") { Description = "Create missing backstore files with this size (sparse)" };
        var ephemeral = new Option<bool>("--ephemeral") { Description = "Like QEMU: every zone starts Empty and no zone state is kept" };
        var reformat = new Option<bool>("--reformat") { Description = "Discard stored zone state and apply the given geometry (data is lost)" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Log connections and commands" };
        var maxConnections = new Option<string>("--max-connections")
        {
            Description = $"Most NVMe/TCP connections served at once (each host uses one per queue); more are closed at once (default {new TargetTransportOptions().MaxConnections})",
        };
        var receivePoll = new Option<string>("--receive-poll")
        {
            Description = "Microseconds a connection keeps polling for the host's next command before it sleeps (default 0: sleep at once); spends CPU to save wake-ups at low queue depth",
        };
        var control = new ServeControlOptions();
        var geometry = new GeometryOptions { ExcludedKeys = ControllerOptions.Keys };
        var controller = new ControllerOptions();
        var authentication = new AuthenticationOptions();
        var writeLog = new ServeWriteLogOptions();
        var cmd = new Command("serve", "Serve zoned namespaces over NVMe/TCP until Ctrl-C")
        {
            files, listen, vfioUser, nqn, serial, model, firmware, allowHost, size, ephemeral, reformat, maxConnections, receivePoll, verbose,
        };
        control.AddTo(cmd);
        geometry.AddTo(cmd);
        controller.AddTo(cmd);
        authentication.AddTo(cmd);
        writeLog.AddTo(cmd);
        cmd.SetAction(async (r, ct) =>
        {
            bool tcp = r.GetValue(listen) != "none";
            string[] vfioPaths = r.GetValue(vfioUser) ?? [];
            if (!tcp && vfioPaths.Length == 0)
            {
                throw new UsageException("--listen none needs at least one --vfio-user PATH");
            }
            var endPoint = ParseEndPoint(tcp ? r.GetValue(listen)! : "127.0.0.1:0");
            var transport = new TargetTransportOptions { ListenEndPoint = endPoint };
            if (r.GetValue(maxConnections) is { } mc)
            {
                transport = transport with { MaxConnections = ParseMaxConnections(mc) };
            }
            if (r.GetValue(receivePoll) is { } rp)
            {
                transport = transport with { ReceivePoll = ParseReceivePoll(rp) };
            }
            if (r.GetValue(ephemeral) && r.GetValue(reformat))
            {
                throw new UsageException("--ephemeral and --reformat cannot be combined");
            }
            var mode = r.GetValue(ephemeral) ? StateMode.Ephemeral : r.GetValue(reformat) ? StateMode.Reformat : StateMode.Persistent;
            string[] specs = r.GetValue(files) is { Length: > 0 } f ? f : [DefaultFile];
            bool isDefault = r.GetValue(files) is not { Length: > 0 };
            long? createSize = r.GetValue(size) is { } s ? ZoneCommands.ParseSize("--size", s) : isDefault ? DefaultSize : null;
            var allowedHosts = new List<string>(r.GetValue(allowHost) ?? []);
            var hostAuthentication = authentication.Parse(r, allowedHosts);
            var controllerLimits = controller.Apply(r, geometry.QemuList, new TargetOptions());

            var namespaces = new List<ZonedNamespace>();
            var logs = new List<Zns.Core.Recording.WriteLog>();
            try
            {
                foreach (string spec in specs)
                {
                    namespaces.Add(OpenNamespace(spec, r, geometry, mode, createSize, isDefault));
                }
                var targetOptions = controllerLimits with
                {
                    SubsystemNqn = r.GetValue(nqn)!, SerialNumber = r.GetValue(serial)!, ModelNumber = r.GetValue(model)!,
                    FirmwareRevision = r.GetValue(firmware)!, AllowedHostNqns = allowedHosts, HostAuthentication = hostAuthentication,
                };
                try
                {
                    targetOptions.Validate();
                }
                catch (ArgumentException e)
                {
                    throw new UsageException(e.Message);
                }
                var controlSettings = control.Read(r);
                logs = writeLog.Start(r, namespaces, reason => Console.Error.WriteLine($"zns: warning: {reason}"));
                await RunAsync(targetOptions, tcp ? transport : null, vfioPaths, namespaces, specs, r.GetValue(verbose), controlSettings, ct);
            }
            finally
            {
                foreach (var ns in namespaces)
                {
                    ns.Dispose(); // clean shutdown: open zones become Closed, state committed
                }
                ServeWriteLogOptions.Stop(logs, Console.Out);
            }
            return 0;
        });
        return cmd;
    }

    private static ZonedNamespace OpenNamespace(string spec, ParseResult r, GeometryOptions geometry, StateMode mode, long? createSize, bool isDefault)
    {
        string[] parts = spec.Split(',', 2);
        string path = parts[0];
        string? local = parts.Length > 1 ? parts[1] : null;
        ControllerOptions.RefuseInNamespaceList(local, spec);
        if (path.StartsWith("ram:", StringComparison.Ordinal))
        {
            long bytes = ZoneCommands.ParseSize(path, path[4..]);
            var ramOptions = ApplyLocal(geometry.Apply(r, isDefault ? DefaultOptions : new NamespaceOptions()), local, spec);
            ZoneCommands.Validate(ramOptions, bytes);
            return ZonedNamespace.CreateInMemory(bytes, ramOptions);
        }
        return OpenBackstore(path, mode, createSize, stored => ApplyLocal(geometry.Apply(r, stored ?? (isDefault ? DefaultOptions : new NamespaceOptions())), local, spec));
    }

    /// <summary>
    /// The options a backstore file would be served with: <paramref name="options"/> applied to the options its zone
    /// state file keeps (null when it has none, or with --reformat).
    /// </summary>
    internal static NamespaceOptions BackstoreOptions(string path, StateMode mode, Func<NamespaceOptions?, NamespaceOptions> options) =>
        options(File.Exists(path) && mode != StateMode.Reformat ? ZonedNamespace.ReadStoredOptions(path) : null);

    /// <summary>
    /// Opens (or, with <paramref name="createSize"/>, creates) a backstore file as <c>zns serve</c> does, its lock
    /// taken. Throws <see cref="UsageException"/> for a missing file, bad options or a file another zns serves.
    /// </summary>
    internal static ZonedNamespace OpenBackstore(string path, StateMode mode, long? createSize, Func<NamespaceOptions?, NamespaceOptions> apply)
    {
        bool exists = File.Exists(path);
        var options = BackstoreOptions(path, mode, apply);
        if (!exists)
        {
            if (createSize is null)
            {
                throw new UsageException($"{path}: no such file (create it with `zns create {path} --size SIZE`, or pass --size)");
            }
            ZoneCommands.Validate(options, createSize.Value);
            FileBackstore.Create(path, createSize.Value, preallocate: false);
        }
        else
        {
            ZoneCommands.Validate(options, new FileInfo(path).Length);
        }
        try
        {
            return ZonedNamespace.OpenFile(path, options, mode);
        }
        catch (OptionException e)
        {
            throw new UsageException($"{path}: {GeometryOptions.Describe(e.Option)}: {e.Reason}");
        }
        catch (NamespaceInUseException)
        {
            throw new UsageException($"{path}: in use by another zns process");
        }
    }

    private static NamespaceOptions ApplyLocal(NamespaceOptions options, string? local, string spec)
    {
        if (local is null)
        {
            return options;
        }
        try
        {
            return options.WithQemuOptions(local);
        }
        catch (OptionException e)
        {
            throw new UsageException($"{spec}: {e.Message}");
        }
    }

    private static IPEndPoint ParseEndPoint(string text)
    {
        if (IPEndPoint.TryParse(text, out var ep) && ep.Port != 0 || (IPEndPoint.TryParse(text, out ep) && text.EndsWith(":0", StringComparison.Ordinal)))
        {
            return ep!;
        }
        if (IPAddress.TryParse(text, out var address))
        {
            return new IPEndPoint(address, 4420);
        }
        throw new UsageException($"--listen: '{text}' is not ADDRESS:PORT (e.g. 127.0.0.1:4420 or 0.0.0.0:4420)");
    }

    private static int ParseMaxConnections(string text) =>
        ParseWholeNumber("--max-connections", text, 1, int.MaxValue, $"'{text}' is not a whole number ≥ 1");

    private static TimeSpan ParseReceivePoll(string text) => TimeSpan.FromMicroseconds(
        ParseWholeNumber("--receive-poll", text, 0, 1_000_000, $"'{text}' is not a whole number of microseconds in 0..1000000"));

    /// <summary>A decimal whole number in [min, max], or a usage error naming the option.</summary>
    private static int ParseWholeNumber(string option, string text, int min, int max, string problem)
    {
        if (!int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) || n < min || n > max)
        {
            throw new UsageException($"{option}: {problem}");
        }
        return n;
    }

    private static async Task RunAsync(TargetOptions options, TargetTransportOptions? transport, string[] vfioPaths, List<ZonedNamespace> namespaces,
        string[] specs, bool verbose, ServeControlSettings control, CancellationToken ct)
    {
        using var loggerFactory = LoggerFactory.Create(b => b
            .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; })
            .SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Information));
        using var target = new NvmeTarget(options, namespaces, loggerFactory);
        var controlService = ServeControl.ApplyScenario(control, target);
        await using var listener = transport is null ? null : new NvmeTcpListener(transport, target, loggerFactory);
        if (listener is not null)
        {
            target.Metrics.ConnectionCount = () => listener.ConnectionCount;
        }
        var vfioServers = new List<VfioUserServer>();
        var stdout = Console.Out;
        try
        {
            foreach (string path in vfioPaths)
            {
                vfioServers.Add(CreateVfioUserServer(target, path, loggerFactory));
            }
            if (listener is not null)
            {
                try
                {
                    listener.Start();
                }
                catch (System.Net.Sockets.SocketException e)
                {
                    throw new UsageException($"--listen {transport!.ListenEndPoint}: {e.Message}");
                }
            }
            foreach (VfioUserServer server in vfioServers)
            {
                server.Start();
            }

            // Signals are taken before the ready line is printed: a script that stops the target as soon as it sees
            // "press Ctrl-C" must still get a clean shutdown.
            var stop = new TaskCompletionSource();
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.TrySetResult(); });
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(); });
            using var reg = ct.Register(() => stop.TrySetResult());

            string where = listener is null ? "vfio-user" : listener.LocalEndPoint.ToString();
            stdout.WriteLine($"zns: serving {namespaces.Count} namespace{(namespaces.Count == 1 ? "" : "s")} on {where}");
            for (int i = 0; i < namespaces.Count; i++)
            {
                stdout.WriteLine($"  nsid {i + 1}: {specs[i]}: {Output.Summary(namespaces[i].Geometry)}{(namespaces[i].StatePath is { } sp ? $", zone state in {sp}" : ", zone state not kept")}{(namespaces[i].Options.Timing.Enabled ? $", {namespaces[i].Options.Timing.Describe()}" : "")}");
                if (namespaces[i].WriteLog is { } log)
                {
                    stdout.WriteLine($"    write log {log.Path} (at most {Output.Bytes(log.MaxBytes)})");
                }
            }
            stdout.WriteLine($"subsystem NQN: {options.SubsystemNqn}");
            if (listener is not null)
            {
                var bound = listener.LocalEndPoint;
                string address = bound.Address.Equals(IPAddress.Any) || bound.Address.Equals(IPAddress.IPv6Any) ? "<this machine's address>" : bound.Address.ToString();
                target.SetListenerAddress(bound.Address.Equals(IPAddress.Any) ? new IPEndPoint(IPAddress.Loopback, bound.Port) : bound);
                stdout.WriteLine("attach from a Linux host (modprobe nvme-tcp):");
                stdout.WriteLine($"  nvme discover -t tcp -a {address} -s {bound.Port}");
                stdout.WriteLine($"  nvme connect -t tcp -a {address} -s {bound.Port} -n {options.SubsystemNqn}");
                foreach ((string host, var auth) in options.HostAuthentication)
                {
                    stdout.WriteLine($"  host {host} must authenticate (DH-HMAC-CHAP): add --hostnqn {host} --dhchap-secret HOST-KEY" +
                                     (auth.ControllerKey is null ? "" : " [--dhchap-ctrl-secret CTRL-KEY]"));
                }
                if (!IPAddress.IsLoopback(bound.Address) && options.AllowedHostNqns.Count == 0)
                {
                    Console.Error.WriteLine($"zns: warning: listening on {bound} without --allow-host: any host that can reach this port can connect and overwrite the data");
                }
            }
            foreach (VfioUserServer server in vfioServers)
            {
                stdout.WriteLine($"PCIe NVMe controller over vfio-user on {server.SocketPath}; QEMU 10.1+ options (guest memory must be shareable, SIZE = -m):");
                stdout.WriteLine($"  -object memory-backend-memfd,id=mem,size=SIZE,share=on -machine memory-backend=mem -device '{{\"driver\":\"vfio-user-pci\",\"socket\":{{\"type\":\"unix\",\"path\":\"{server.SocketPath}\"}}}}'");
            }
            await using var controlServer = await ServeControl.StartAsync(control, controlService, stdout, loggerFactory);
            stdout.WriteLine("press Ctrl-C to stop");
            stdout.Flush();

            await stop.Task;
            stdout.WriteLine("zns: stopping: closing connections and saving zone state");
            if (listener is not null)
            {
                await listener.StopAsync();
            }
        }
        finally
        {
            foreach (VfioUserServer server in vfioServers)
            {
                server.Dispose();
            }
        }
        target.Dispose();
        ReportReorderedWrites(stdout, namespaces, verbose);
    }

    /// <summary>A vfio-user server of <paramref name="target"/> on a new Unix socket (not yet started).</summary>
    internal static VfioUserServer CreateVfioUserServer(NvmeTarget target, string path, ILoggerFactory loggerFactory)
    {
        try
        {
            return new VfioUserServer(target, path, loggerFactory);
        }
        catch (System.Net.Sockets.SocketException e)
        {
            throw new UsageException($"--vfio-user {path}: {e.Message}");
        }
    }

    /// <summary>
    /// At shutdown: how many writes arrived ahead of their zone's write pointer (always with -v, otherwise only when
    /// there were some), since a host that reorders writes to a zone sees only I/O errors.
    /// </summary>
    internal static void ReportReorderedWrites(TextWriter stdout, List<ZonedNamespace> namespaces, bool verbose)
    {
        for (int i = 0; i < namespaces.Count; i++)
        {
            long ahead = namespaces[i].WritesAheadOfWritePointer;
            if (namespaces[i].IsZoned && (verbose || ahead > 0))
            {
                stdout.WriteLine($"zns: nsid {i + 1}: {ahead} write{(ahead == 1 ? "" : "s")} refused ahead of the write pointer (Zone Invalid Write)" +
                    (ahead > 0 ? "; the host reordered writes to a zone (see docs/tests.md: Linux host settings)" : ""));
            }
        }
    }
}
