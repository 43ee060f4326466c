using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Zns.Core.Zones;

namespace Zns.Control;

/// <summary>The HTTP routes of the management endpoint (docs/control.md).</summary>
internal static class ControlRoutes
{
    /// <summary>Request bodies are small JSON documents; anything larger is refused before it is buffered.</summary>
    public const int MaxBodyBytes = 1 << 20;

    /// <summary>How often the zone map stream looks for changed zones.</summary>
    public static readonly TimeSpan MapInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// The zone map stream's rate bound, in rows (about 20 bytes each): after an update of many rows the next look
    /// waits until the rows have had this much time, so a namespace whose every zone changes all the time streams
    /// about 1.3 MB/s rather than 5. Rows that change meanwhile go in the next update; none is lost.
    /// </summary>
    public const int MapRowsPerSecond = 65536;

    public static void Map(WebApplication app, ControlService service)
    {
        app.MapGet("/", async ctx =>
        {
            ctx.Response.ContentType = "text/html; charset=utf-8";
            await using Stream page = typeof(ControlRoutes).Assembly.GetManifestResourceStream("zns-map.html")!;
            await page.CopyToAsync(ctx.Response.Body, ctx.RequestAborted);
        });
        app.MapGet("/api/namespaces", ctx => Run(ctx, () => Ok(ctx, service.Namespaces(), ControlJson.Default.NamespaceDtoArray)));
        app.MapGet("/api/namespaces/{nsid}/zones", (HttpContext ctx, string nsid) =>
            Run(ctx, () => Ok(ctx, service.Zones(service.ParseNsid(nsid)), ControlJson.Default.ZonesDto)));
        app.MapGet("/api/namespaces/{nsid}/zones/{zone}", (HttpContext ctx, string nsid, string zone) =>
            Run(ctx, () => Ok(ctx, service.ZoneDetail(service.ParseNsid(nsid), ControlService.ParseZone(zone)), ControlJson.Default.ZoneDetailDto)));
        app.MapPost("/api/namespaces/{nsid}/zones/{zone}/{action}", (HttpContext ctx, string nsid, string zone, string action) =>
            Run(ctx, () => Ok(ctx, service.ZoneAction(service.ParseNsid(nsid), ControlService.ParseZone(zone), action), ControlJson.Default.ZoneDto)));
        app.MapGet("/api/namespaces/{nsid}/health", (HttpContext ctx, string nsid) =>
            Run(ctx, () => Ok(ctx, service.Health(service.ParseNsid(nsid)), ControlJson.Default.HealthDto)));
        app.MapPut("/api/namespaces/{nsid}/health", (HttpContext ctx, string nsid) => Run(ctx, async () =>
        {
            uint n = service.ParseNsid(nsid);
            await Ok(ctx, service.SetHealth(n, await Body(ctx, ControlJson.Default.HealthDto, required: true) ?? new()), ControlJson.Default.HealthDto);
        }));
        app.MapPut("/api/namespaces/{nsid}/write-protect", (HttpContext ctx, string nsid) => Run(ctx, async () =>
        {
            uint n = service.ParseNsid(nsid);
            await Ok(ctx, service.SetWriteProtect(n, (await Body(ctx, ControlJson.Default.WriteProtectDto, required: true))!), ControlJson.Default.NamespaceDto);
        }));
        app.MapGet("/api/namespaces/{nsid}/map", (HttpContext ctx, string nsid) => Run(ctx, () => StreamMap(ctx, service, service.ParseNsid(nsid))));

        app.MapGet("/api/faults", ctx => Run(ctx, () => Ok(ctx, service.ListFaults(), ControlJson.Default.FaultsDto)));
        app.MapPost("/api/faults", ctx => Run(ctx, async () =>
            await Ok(ctx, service.Apply((await Body(ctx, ControlJson.Default.FaultScenarioDto, required: true))!), ControlJson.Default.FaultsDto)));
        app.MapDelete("/api/faults", ctx => Run(ctx, () =>
        {
            service.ClearFaults();
            return Ok(ctx, service.ListFaults(), ControlJson.Default.FaultsDto);
        }));
        app.MapDelete("/api/faults/{id}", (HttpContext ctx, string id) => Run(ctx, () =>
        {
            service.RemoveFault(id);
            return Ok(ctx, service.ListFaults(), ControlJson.Default.FaultsDto);
        }));
        app.MapPost("/api/faults/drop-connections", ctx => Run(ctx, async () =>
            await Ok(ctx, service.DropConnections(await Body(ctx, ControlJson.Default.DropConnectionsDto, required: false) ?? new()), ControlJson.Default.AffectedDto)));
        app.MapPost("/api/faults/controller-fatal", ctx => Run(ctx, async () =>
            await Ok(ctx, service.ControllerFatal(await Body(ctx, ControlJson.Default.ControllerFatalDto, required: false) ?? new()), ControlJson.Default.AffectedDto)));
        app.MapPost("/api/faults/power-cut", ctx => Run(ctx, async () =>
            await Ok(ctx, service.PowerCut((await Body(ctx, ControlJson.Default.PowerCutDto, required: false)) ?? new()), ControlJson.Default.PowerCutsDto)));
        app.MapGet("/api/faults/power-cuts", ctx => Run(ctx, () => Ok(ctx, service.PowerCuts(), ControlJson.Default.PowerCutsDto)));
        app.MapGet("/api/history", ctx => Run(ctx, () =>
            Ok(ctx, service.History(Query(ctx, "nsid"), Query(ctx, "seconds")), ControlJson.Default.HistoryDto)));
        app.MapGet("/api/stats", ctx => Run(ctx, () => Ok(ctx, service.Stats(), ControlJson.Default.StatsDto)));
        app.MapFallback(ctx => WriteError(ctx, 404, $"path: no such endpoint {ctx.Request.Method} {ctx.Request.Path}"));
    }

    /// <summary>A query parameter given at most once (null when absent).</summary>
    private static string? Query(HttpContext ctx, string name)
    {
        var values = ctx.Request.Query[name];
        return values.Count switch
        {
            0 => null,
            1 => values[0] ?? "",
            _ => throw ControlException.BadField(name, "given more than once"),
        };
    }

    private static async Task Run(HttpContext ctx, Func<Task> action)
    {
        try
        {
            await action();
        }
        catch (ControlException e)
        {
            await WriteError(ctx, e.Status, e.Message);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
        }
    }

    private static Task Ok<T>(HttpContext ctx, T value, JsonTypeInfo<T> type)
    {
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/json";
        return JsonSerializer.SerializeAsync(ctx.Response.Body, value, type, ctx.RequestAborted);
    }

    public static Task WriteError(HttpContext ctx, int status, string message)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        return JsonSerializer.SerializeAsync(ctx.Response.Body, new ErrorDto(message), ControlJson.Default.ErrorDto);
    }

    private static async Task<T?> Body<T>(HttpContext ctx, JsonTypeInfo<T> type, bool required) where T : class
    {
        if (ctx.Request.ContentLength > MaxBodyBytes)
        {
            throw new ControlException(413, $"body: {ctx.Request.ContentLength} bytes is more than {MaxBodyBytes}");
        }
        using var buffer = new MemoryStream();
        byte[] chunk = new byte[16384];
        int n;
        while ((n = await ctx.Request.Body.ReadAsync(chunk, ctx.RequestAborted)) > 0)
        {
            if (buffer.Length + n > MaxBodyBytes)
            {
                throw new ControlException(413, $"body: more than {MaxBodyBytes} bytes");
            }
            buffer.Write(chunk, 0, n);
        }
        if (buffer.Length == 0)
        {
            return required ? throw ControlException.BadField("body", "a JSON object is required") : null;
        }
        try
        {
            return JsonSerializer.Deserialize(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), type)
                ?? throw ControlException.BadField("body", "a JSON object is required, not null");
        }
        catch (JsonException e)
        {
            string path = string.IsNullOrEmpty(e.Path) || e.Path == "$" ? "body" : e.Path.TrimStart('$', '.');
            string message = e.Message.Contains("could not be converted", StringComparison.Ordinal)
                ? "has the wrong type for this field" : e.Message.Split(" Path:", 2)[0];
            throw ControlException.BadField(path, message);
        }
    }

    /// <summary>
    /// Server-sent events for the zone map: a full snapshot first, then every <see cref="MapInterval"/> the zones
    /// whose cell changed (condition, fill, attributes, activity, media fault), so thousands of zones cost little.
    /// </summary>
    private static async Task StreamMap(HttpContext ctx, ControlService service, uint nsid)
    {
        var ns = service.Target.Subsystem.Namespaces[(int)nsid - 1];
        if (!ns.IsZoned)
        {
            throw ControlException.BadField("nsid", $"namespace {nsid} is not zoned");
        }
        ctx.Response.ContentType = "text/event-stream";
        ctx.Response.Headers.CacheControl = "no-cache";
        var snapshot = new ZoneMapSnapshot(ns, nsid, service.Target.Metrics.Activity(nsid), service.Target.Faults);
        bool full = true;
        using var timer = new PeriodicTimer(MapInterval);
        do
        {
            long[][] changed = snapshot.Changed();
            if (full || changed.Length > 0)
            {
                await ctx.Response.WriteAsync("data: ", ctx.RequestAborted);
                await JsonSerializer.SerializeAsync(ctx.Response.Body, new MapUpdateDto(nsid, snapshot.ZoneCount, full, changed), ControlJson.Default.MapUpdateDto, ctx.RequestAborted);
                await ctx.Response.WriteAsync("\n\n", ctx.RequestAborted);
                await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
                TimeSpan extra = TimeSpan.FromSeconds((double)changed.Length / MapRowsPerSecond) - MapInterval;
                if (extra > TimeSpan.Zero)
                {
                    await Task.Delay(extra, ctx.RequestAborted);
                }
            }
            full = false;
        }
        while (await timer.WaitForNextTickAsync(ctx.RequestAborted));
    }
}
