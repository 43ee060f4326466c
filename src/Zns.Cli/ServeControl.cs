using System.CommandLine;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Zns.Control;
using Zns.Target.Controller;

namespace Zns.Cli;

/// <summary>What <c>zns serve</c> was told about its management endpoint.</summary>
internal sealed record ServeControlSettings(ControlAddress Address, string? Token, string? FaultsFile);

/// <summary><c>zns serve --control ADDR --control-token TOKEN --faults FILE</c>.</summary>
internal sealed class ServeControlOptions
{
    private readonly Option<string> _control = new("--control")
    {
        Description = $"Management endpoint (JSON API, zone map, /metrics): ADDRESS:PORT, unix:PATH or off (default {ControlAddress.Default})",
        DefaultValueFactory = _ => ControlAddress.Default,
    };
    private readonly Option<string> _token = new("--control-token") { Description = "Token the endpoint requires (Authorization: Bearer TOKEN); needed beyond loopback" };
    private readonly Option<string> _faults = new("--faults") { Description = "Fault scenario to arm at start (the JSON of POST /api/faults)" };

    public void AddTo(Command cmd)
    {
        cmd.Options.Add(_control);
        cmd.Options.Add(_token);
        cmd.Options.Add(_faults);
    }

    public ServeControlSettings Read(ParseResult r)
    {
        string text = r.GetValue(_control)!;
        var address = ControlAddress.TryParse(text, out string? error) ?? throw new UsageException($"--control: {error}");
        string? token = r.GetValue(_token);
        if (token is { Length: 0 })
        {
            throw new UsageException("--control-token: empty");
        }
        if (!address.IsOff && !address.IsLocal && token is null)
        {
            throw new UsageException($"--control {text}: listening beyond loopback needs --control-token");
        }
        string? faults = r.GetValue(_faults);
        if (faults is not null && !File.Exists(faults))
        {
            throw new UsageException($"--faults: {faults}: no such file");
        }
        return new ServeControlSettings(address, token, faults);
    }
}

/// <summary>Starting the endpoint and arming the scenario file for <c>zns serve</c>.</summary>
internal static class ServeControl
{
    /// <summary>Arms <c>--faults FILE</c> before any host connects; a bad file is a usage error naming the field.</summary>
    public static ControlService ApplyScenario(ServeControlSettings settings, NvmeTarget target)
    {
        var service = new ControlService(target);
        if (settings.FaultsFile is not { } file)
        {
            return service;
        }
        FaultScenarioDto scenario;
        try
        {
            scenario = JsonSerializer.Deserialize(File.ReadAllBytes(file), ControlJson.Default.FaultScenarioDto)
                ?? throw new UsageException($"--faults {file}: a JSON object is required");
        }
        catch (JsonException e)
        {
            string path = string.IsNullOrEmpty(e.Path) || e.Path == "$" ? "" : e.Path.TrimStart('$', '.') + ": ";
            throw new UsageException($"--faults {file}: {path}{e.Message.Split(" Path:", 2)[0]}");
        }
        try
        {
            service.Apply(scenario);
        }
        catch (ControlException e)
        {
            throw new UsageException($"--faults {file}: {e.Message}");
        }
        return service;
    }

    /// <summary>Starts the endpoint; a port that cannot be bound is one warning line and the target serves on.</summary>
    public static async Task<ControlServer?> StartAsync(ServeControlSettings settings, ControlService service, TextWriter stdout, ILoggerFactory loggerFactory)
    {
        if (settings.Address.IsOff)
        {
            return null;
        }
        try
        {
            var server = await ControlServer.StartAsync(settings.Address, settings.Token, service, loggerFactory);
            stdout.WriteLine($"control: {server.Address} (zone map at /, metrics at /metrics; zns zones, zns fault, zns stats, zns namespace)");
            return server;
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"zns: warning: control endpoint not started: {e.Message}");
            return null;
        }
    }
}
