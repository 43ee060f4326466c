using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Core.Zones;
using Zns.Target.Controller;
using Zns.Target.Tcp;
using Zns.TestKit;

namespace Zns.Control.Tests;

/// <summary>
/// A target with one in-memory zoned namespace (16 zones of 1 MiB, 4 KiB blocks) behind NVMe/TCP on 127.0.0.1:0,
/// its management endpoint on 127.0.0.1:0, an HTTP client for the endpoint and a connected host (admin + I/O queue).
/// </summary>
internal sealed class ControlFixture : IAsyncDisposable
{
    public const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:0000000a-0000-4000-8000-00000000000a";
    public const int BlockSize = 4096;
    public const ulong ZoneLbas = 256;

    private ControlFixture(ZonedNamespace ns, NvmeTarget target, NvmeTcpListener listener, ControlServer server, HttpClient http, ControlService service)
    {
        Service = service;
        Namespace = ns;
        Target = target;
        Listener = listener;
        Server = server;
        Http = http;
    }

    public ControlService Service { get; }
    public ZonedNamespace Namespace { get; }
    public NvmeTarget Target { get; }
    public NvmeTcpListener Listener { get; }
    public ControlServer Server { get; }
    public HttpClient Http { get; }
    public NvmeTcpInitiator Admin { get; private set; } = null!;
    public NvmeTcpInitiator Io { get; private set; } = null!;

    public static async Task<ControlFixture> StartAsync(string? token = null, ZonedNamespace? ns = null, bool historyTimer = true)
    {
        ns ??= ZonedNamespace.CreateInMemory(16 << 20, new NamespaceOptions { ZoneSize = 1 << 20, Mdts = 5 });
        var target = new NvmeTarget(new TargetOptions(), [ns]);
        var listener = new NvmeTcpListener(new TargetTransportOptions { ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0) }, target);
        listener.Start();
        target.SetListenerAddress(listener.LocalEndPoint);
        target.Metrics.ConnectionCount = () => listener.ConnectionCount;
        var service = new ControlService(target, historyTimer);
        var server = await ControlServer.StartAsync(new ControlAddress(new IPEndPoint(IPAddress.Loopback, 0), null), token, service);
        var http = new HttpClient { BaseAddress = new Uri(server.Address + "/"), Timeout = TimeSpan.FromSeconds(20) };
        if (token is not null)
        {
            http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        }
        return new ControlFixture(ns, target, listener, server, http, service);
    }

    public async Task ConnectAsync()
    {
        Admin = await NvmeTcpInitiator.ConnectAsync(Listener.LocalEndPoint);
        var c = await Admin.ConnectAdminQueueAsync(Target.Subsystem.Nqn, HostNqn, Guid.Parse(HostNqn[^36..]));
        Assert.True(c.Status.IsSuccess, $"admin Connect: {c.Status}");
        Assert.True((await Admin.PropertySetAsync(0x14, 0x00460061)).Status.IsSuccess);
        Io = await NvmeTcpInitiator.ConnectAsync(Listener.LocalEndPoint);
        c = await Io.ConnectIoQueueAsync(1, Admin.ControllerId, Target.Subsystem.Nqn, HostNqn, Guid.Parse(HostNqn[^36..]));
        Assert.True(c.Status.IsSuccess, $"I/O Connect: {c.Status}");
    }

    public async Task<(HttpStatusCode Status, string Body)> SendAsync(HttpMethod method, string path, string? json = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }
        using var response = await Http.SendAsync(request, TestContext.Current.CancellationToken);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
    }

    public async Task<string> OkAsync(HttpMethod method, string path, string? json = null)
    {
        var (status, body) = await SendAsync(method, path, json);
        Assert.True(status == HttpStatusCode.OK, $"{method} {path}: {(int)status} {body}");
        return body;
    }

    public static string ErrorOf(string body) => JsonDocument.Parse(body).RootElement.GetProperty("error").GetString()!;

    public static byte[] Pattern(int bytes, byte seed)
    {
        var b = new byte[bytes];
        for (int i = 0; i < b.Length; i++)
        {
            b[i] = (byte)(seed + i * 7);
        }
        return b;
    }

    public static SubmissionQueueEntry AdminCommand(byte opcode, uint nsid = 0)
    {
        var sqe = default(SubmissionQueueEntry);
        sqe.SetOpcode(opcode);
        sqe.SetNamespaceId(nsid);
        return sqe;
    }

    public static SubmissionQueueEntry GetLogPage(byte lid, int bytes, uint nsid, byte csi, bool rae = false)
    {
        var sqe = AdminCommand(AdminOpcode.GetLogPage, nsid);
        uint numd = (uint)(bytes / 4 - 1);
        sqe.SetCdw(10, lid | (rae ? 0x8000u : 0) | (numd << 16));
        sqe.SetCdw(11, numd >> 16);
        sqe.SetCdw(14, (uint)csi << 24);
        return sqe;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        if (Io is not null) { await Io.DisposeAsync(); }
        if (Admin is not null) { await Admin.DisposeAsync(); }
        await Server.DisposeAsync();
        await Listener.DisposeAsync();
        Target.Dispose();
        Namespace.Dispose();
    }
}
