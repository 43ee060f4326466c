using System.CommandLine;
using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Zns.Core.Zones;
using Zns.Target.Controller;
using Zns.Target.VfioUser;

namespace Zns.Cli;

internal static partial class Commands
{
    public static Command Qemu()
    {
        var qemuArgs = new Argument<string[]>("QEMU-COMMAND")
        {
            Description = "The QEMU command line after --: the binary and its arguments, with -device nvme/nvme-ns and their -drives",
            Arity = ArgumentArity.OneOrMore,
        };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print the rewritten QEMU command on stdout and start nothing" };
        var ignoreUnknown = new Option<bool>("--ignore-unknown") { Description = "Leave out (and name) device options zns does not implement, instead of refusing them" };
        var socketDir = new Option<string>("--socket-dir") { Description = "Directory for the vfio-user sockets (default: a new private directory under $TMPDIR, removed at exit)" };
        var size = new Option<string>("--size", "-s") { Description = "Create missing drive files with this size (sparse)" };
        var ephemeral = new Option<bool>("--ephemeral") { Description = "Like QEMU: every zone starts Empty and no zone state is kept" };
        var reformat = new Option<bool>("--reformat") { Description = "Discard stored zone state and apply the command's geometry (data is lost)" };
        var model = new Option<string>("--model") { Description = "Model number", DefaultValueFactory = _ => new TargetOptions().ModelNumber };
        var firmware = new Option<string>("--firmware") { Description = "Firmware revision", DefaultValueFactory = _ => new TargetOptions().FirmwareRevision };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Log vfio-user clients and commands (on stderr)" };
        var geometry = new GeometryOptions { ExcludedKeys = ControllerOptions.Keys };
        var controller = new ControllerOptions();
        var cmd = new Command("qemu", "Run a QEMU command line with zns serving its NVMe devices over vfio-user (QEMU 10.1+): zns qemu [options] -- qemu-system-x86_64 ...")
        {
            qemuArgs, dryRun, ignoreUnknown, socketDir, size, ephemeral, reformat, model, firmware, verbose,
        };
        geometry.AddTo(cmd);
        controller.AddTo(cmd);
        cmd.SetAction(async (r, ct) =>
        {
            string[] command = r.GetValue(qemuArgs)!;
            string dir = r.GetValue(socketDir) is { } d ? Path.GetFullPath(d) : Path.Combine(Path.GetTempPath(), $"zns-qemu-{Guid.NewGuid():N}"[..21]);
            var plan = QemuCommandLine.Plan(command, dir, r.GetValue(ignoreUnknown), ReadHeader);
            foreach (string note in plan.Notes)
            {
                Console.Error.WriteLine($"zns: {note}");
            }
            string[] rewritten = [command[0], .. plan.Arguments];
            if (plan.Controllers.Count == 0)
            {
                if (r.GetValue(dryRun))
                {
                    Console.Out.WriteLine(QemuCommandLine.ShellQuote(rewritten));
                    return 0;
                }
                return await QemuProcess.RunAsync(rewritten, ct);
            }
            if (r.GetValue(ephemeral) && r.GetValue(reformat))
            {
                throw new UsageException("--ephemeral and --reformat cannot be combined");
            }
            var mode = r.GetValue(ephemeral) ? StateMode.Ephemeral : r.GetValue(reformat) ? StateMode.Reformat : StateMode.Persistent;
            long? createSize = r.GetValue(size) is { } s ? ZoneCommands.ParseSize("--size", s) : null;
            var baseTarget = controller.Apply(r, geometry.QemuList, new TargetOptions());
            var targets = new List<TargetOptions>();
            foreach (var c in plan.Controllers)
            {
                var options = baseTarget;
                foreach (var (key, value) in c.ControllerOptions)
                {
                    options = ControllerOptions.With(options, key, value, $"-device nvme,{key}");
                }
                options = options with
                {
                    SerialNumber = c.Serial, SubsystemNqn = $"nqn.2019-08.org.qemu:{c.Serial}",
                    ModelNumber = r.GetValue(model)!, FirmwareRevision = r.GetValue(firmware)!,
                };
                try
                {
                    options.Validate();
                }
                catch (ArgumentException e)
                {
                    throw new UsageException($"-device nvme (id {c.Name}): {e.Message}");
                }
                targets.Add(options);
                foreach (var ns in c.Namespaces)
                {
                    // Every option is checked before anything is opened or started.
                    var nsOptions = QemuNamespaceOptions(ns, mode, r, geometry);
                    if (File.Exists(ns.File))
                    {
                        ZoneCommands.Validate(nsOptions, new FileInfo(ns.File).Length);
                    }
                }
            }
            if (r.GetValue(dryRun))
            {
                Console.Out.WriteLine(QemuCommandLine.ShellQuote(rewritten));
                return 0;
            }
            await QemuProcess.CheckVfioUserClientAsync(command[0], ct);
            return await RunQemuAsync(plan, targets, rewritten, dir, r.GetValue(socketDir) is null, mode, createSize, r, geometry, r.GetValue(verbose), ct);
        });
        return cmd;
    }

    /// <summary>
    /// A QEMU namespace's options as zns serves them: QEMU's defaults (512-byte blocks, not zoned) or the options the
    /// zone state file keeps, then the device's options in order, then zns qemu's own -o and flags.
    /// </summary>
    private static NamespaceOptions QemuNamespaceOptions(QemuNamespace ns, StateMode mode, ParseResult r, GeometryOptions geometry) =>
        BackstoreOptions(ns.File, mode, stored =>
        {
            var options = stored ?? new NamespaceOptions { LogicalBlockSize = 512, Zoned = false };
            string? physical = null;
            foreach (var (key, value) in ns.Options)
            {
                if (key == "physical_block_size")
                {
                    physical = value;
                    continue;
                }
                try
                {
                    options = options.With(key, value);
                }
                catch (OptionException e)
                {
                    throw new UsageException($"-device {ns.Device}: {e.Message}");
                }
            }
            options = geometry.Apply(r, options);
            if (physical is not null)
            {
                long bytes;
                try
                {
                    bytes = NamespaceOptions.ParseSize("physical_block_size", physical);
                }
                catch (OptionException e)
                {
                    throw new UsageException($"-device {ns.Device}: {e.Message}");
                }
                if (bytes != options.LogicalBlockSize)
                {
                    throw new UsageException($"-device {ns.Device}: physical_block_size={physical} is not supported: zns reports the logical block size ({options.LogicalBlockSize}) as the physical one (leave it out or set it to {options.LogicalBlockSize})");
                }
            }
            return options;
        });

    private static byte[]? ReadHeader(string path)
    {
        try
        {
            using var f = File.OpenRead(path);
            var buffer = new byte[8];
            return f.ReadAtLeast(buffer, 8, throwOnEndOfStream: false) == 8 ? buffer : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static async Task<int> RunQemuAsync(QemuPlan plan, List<TargetOptions> targetOptions, string[] rewritten, string socketDir, bool ownDir,
        StateMode mode, long? createSize, ParseResult r, GeometryOptions geometry, bool verbose, CancellationToken ct)
    {
        var stderr = Console.Error;
        var opened = new List<List<ZonedNamespace>>();
        var targets = new List<NvmeTarget>();
        var servers = new List<VfioUserServer>();
        // QEMU owns the terminal: zns's log goes to stderr, warnings only unless -v.
        using var loggerFactory = LoggerFactory.Create(b => b
            .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace)
            .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; })
            .SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Warning));
        try
        {
            foreach (var c in plan.Controllers)
            {
                var list = new List<ZonedNamespace>();
                opened.Add(list);
                foreach (var ns in c.Namespaces)
                {
                    list.Add(OpenBackstore(ns.File, mode, createSize, _ => QemuNamespaceOptions(ns, mode, r, geometry)));
                }
            }
            if (ownDir && !OperatingSystem.IsWindows())
            {
                Directory.CreateDirectory(socketDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
            else
            {
                Directory.CreateDirectory(socketDir);
            }
            for (int i = 0; i < plan.Controllers.Count; i++)
            {
                var c = plan.Controllers[i];
                NvmeTarget target;
                try
                {
                    target = new NvmeTarget(targetOptions[i], opened[i], loggerFactory);
                }
                catch (ArgumentException e)
                {
                    throw new UsageException($"-device nvme (id {c.Name}): {e.Message}");
                }
                targets.Add(target);
                servers.Add(CreateVfioUserServer(target, c.SocketPath, loggerFactory));
                stderr.WriteLine($"zns: {c.Name} (serial {c.Serial}) over vfio-user on {c.SocketPath}");
                for (int n = 0; n < opened[i].Count; n++)
                {
                    var ns = opened[i][n];
                    stderr.WriteLine($"  {c.Namespaces[n].File}: {Output.Summary(ns.Geometry)}{(ns.StatePath is { } sp ? $", zone state in {sp}" : ", zone state not kept")}");
                }
            }
            foreach (var server in servers)
            {
                server.Start();
            }
            stderr.WriteLine($"zns: running {QemuCommandLine.ShellQuote(rewritten)}");
            stderr.Flush();
            int status = await QemuProcess.RunAsync(rewritten, ct);
            if (verbose)
            {
                stderr.WriteLine($"zns: QEMU exited with status {status}; saving zone state");
            }
            return status;
        }
        finally
        {
            foreach (var server in servers)
            {
                server.Dispose();
            }
            foreach (var target in targets)
            {
                target.Dispose();
            }
            foreach (var list in opened)
            {
                foreach (var ns in list)
                {
                    ns.Dispose(); // clean shutdown: open zones become Closed, state committed
                }
            }
            if (ownDir)
            {
                try
                {
                    Directory.Delete(socketDir, recursive: true);
                }
                catch (IOException)
                {
                }
            }
        }
    }
}

/// <summary>Runs QEMU in the foreground: the terminal stays QEMU's, signals to zns are passed on, its status comes back.</summary>
internal static partial class QemuProcess
{
    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    /// <summary>Starts QEMU with inherited stdin/stdout/stderr and waits for it; returns its exit status (128 + N for a signal).</summary>
    public static async Task<int> RunAsync(IReadOnlyList<string> command, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(command[0]) { UseShellExecute = false };
        foreach (string a in command.Skip(1))
        {
            psi.ArgumentList.Add(a);
        }
        int pid = 0;
        int pending = 0;
        void Forward(PosixSignalContext c, int signal)
        {
            c.Cancel = true; // zns keeps running until QEMU has exited, then saves zone state
            if (Volatile.Read(ref pid) is var p and > 0)
            {
                Kill(p, signal);
            }
            else
            {
                Volatile.Write(ref pending, signal);
            }
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => Forward(c, 2));
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => Forward(c, 15));
        using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c => Forward(c, 1));
        Process process;
        try
        {
            process = Process.Start(psi)!;
        }
        catch (Win32Exception e)
        {
            throw new UsageException($"cannot run {command[0]}: {e.Message}");
        }
        using (process)
        {
            Volatile.Write(ref pid, process.Id);
            if (Volatile.Read(ref pending) is var s and > 0)
            {
                Kill(process.Id, s);
            }
            using var reg = ct.Register(() => Kill(process.Id, 15));
            await process.WaitForExitAsync(CancellationToken.None);
            return process.ExitCode;
        }
    }

    /// <summary>Refuses a QEMU whose <c>-device help</c> lists no vfio-user-pci, naming its version.</summary>
    public static async Task CheckVfioUserClientAsync(string qemu, CancellationToken ct)
    {
        string devices = await CaptureAsync(qemu, ["-device", "help"], ct);
        // -device help loads every module and fails on one it cannot load; asking for the device itself does not.
        if (devices.Contains("\"vfio-user-pci\"", StringComparison.Ordinal) ||
            (await CaptureAsync(qemu, ["-device", "vfio-user-pci,help"], ct)).Contains("vfio-user-pci options", StringComparison.Ordinal))
        {
            return;
        }
        string version = await CaptureAsync(qemu, ["--version"], ct);
        var match = Regex.Match(version, @"version (\d+\.\d+(\.\d+)?)");
        string found = match.Success ? $"QEMU {match.Groups[1].Value}" : "a QEMU of unknown version";
        throw new UsageException($"{qemu} ({found}) has no vfio-user client (no vfio-user-pci in -device help): zns qemu needs QEMU 10.1 or newer");
    }

    private static async Task<string> CaptureAsync(string qemu, string[] args, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(qemu) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }
        Process process;
        try
        {
            process = Process.Start(psi)!;
        }
        catch (Win32Exception e)
        {
            throw new UsageException($"cannot run {qemu}: {e.Message}");
        }
        using (process)
        {
            process.StandardInput.Close();
            var output = process.StandardOutput.ReadToEndAsync(ct);
            var error = process.StandardError.ReadToEndAsync(ct);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(60));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill();
                throw new UsageException($"{qemu} {string.Join(' ', args)} did not finish in 60 s");
            }
            return await output + await error;
        }
    }
}
