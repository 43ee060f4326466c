using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using Zns.Target.Metrics;
using Zns.Target.Controller;

namespace Zns.Control;

/// <summary>
/// The management endpoint of a running target: the JSON API under <c>/api</c>, the live zone map at <c>/</c>
/// (updates through server-sent events at <c>/api/namespaces/{nsid}/map</c>) and Prometheus metrics at
/// <c>/metrics</c>, served by Kestrel on a TCP address or a Unix socket.
/// </summary>
public sealed class ControlServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly HistorySampler _history;

    private ControlServer(WebApplication app, string address, HistorySampler history)
    {
        _app = app;
        _history = history;
        Address = address;
    }

    /// <summary>Where it listens (<c>http://127.0.0.1:9420</c> or <c>unix:/path</c>).</summary>
    public string Address { get; }

    /// <summary>
    /// Starts the endpoint. Binding beyond loopback needs a token (<see cref="ArgumentException"/> otherwise); a
    /// port that cannot be bound is an <see cref="IOException"/>, which the caller reports as a warning.
    /// </summary>
    public static async Task<ControlServer> StartAsync(ControlAddress address, string? token, ControlService service, ILoggerFactory? loggerFactory = null)
    {
        if (address.IsOff)
        {
            throw new ArgumentException("the control address is off", nameof(address));
        }
        if (!address.IsLocal && string.IsNullOrEmpty(token))
        {
            throw new ArgumentException($"--control {address}: listening beyond loopback needs --control-token", nameof(token));
        }
        var builder = WebApplication.CreateSlimBuilder();
        // Kestrel's own start-up chatter stays out of the target's log; its warnings and errors still go there.
        builder.Logging.ClearProviders();
        if (loggerFactory is not null)
        {
            builder.Logging.AddProvider(new ForwardingLoggerProvider(loggerFactory));
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
        }
        builder.WebHost.ConfigureKestrel(k =>
        {
            if (address.UnixSocketPath is { } path)
            {
                if (File.Exists(path))
                {
                    File.Delete(path); // a stale socket of an earlier run
                }
                k.ListenUnixSocket(path);
            }
            else
            {
                k.Listen(address.EndPoint!);
            }
        });
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, ControlJson.Default));
        builder.Services.AddOpenTelemetry().WithMetrics(m => m.AddMeter(TargetMetrics.MeterName).AddPrometheusExporter());
        var app = builder.Build();
        if (!string.IsNullOrEmpty(token))
        {
            app.Use(RequireToken(token));
        }
        app.UseOpenTelemetryPrometheusScrapingEndpoint();
        ControlRoutes.Map(app, service);
        service.Target.Metrics.EnableZoneRecent();
        try
        {
            await app.StartAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw new IOException($"--control {address}: {e.Message}", e);
        }
        string shown = address.UnixSocketPath is { } p ? $"unix:{p}" : BoundAddress(app, address.EndPoint!);
        if (service.HistoryTimer)
        {
            service.Sampler.Start();
        }
        return new ControlServer(app, shown, service.Sampler);
    }

    private static string BoundAddress(WebApplication app, IPEndPoint requested)
    {
        var server = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>();
        var addresses = server.Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>();
        return addresses?.Addresses.FirstOrDefault() ?? $"http://{requested}";
    }

    // Token from "Authorization: Bearer TOKEN" or, for the browser page and its event stream, ?token=TOKEN.
    private static Func<HttpContext, RequestDelegate, Task> RequireToken(string token)
    {
        byte[] expected = Encoding.UTF8.GetBytes(token);
        return async (ctx, next) =>
        {
            string? given = null;
            string auth = ctx.Request.Headers.Authorization.ToString();
            if (auth.StartsWith("Bearer ", StringComparison.Ordinal))
            {
                given = auth[7..];
            }
            given ??= ctx.Request.Query["token"].FirstOrDefault();
            if (given is null || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), expected))
            {
                await ControlRoutes.WriteError(ctx, 401, given is null
                    ? "authorization: missing (send Authorization: Bearer TOKEN, or ?token=TOKEN)"
                    : "authorization: wrong token").ConfigureAwait(false);
                return;
            }
            await next(ctx).ConfigureAwait(false);
        };
    }

    public async ValueTask DisposeAsync()
    {
        await _history.DisposeAsync().ConfigureAwait(false);
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>Hands the web host's log lines to the target's logger factory.</summary>
internal sealed class ForwardingLoggerProvider(ILoggerFactory factory) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => factory.CreateLogger(categoryName);

    public void Dispose()
    {
    }
}
