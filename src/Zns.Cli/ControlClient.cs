using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Zns.Control;

namespace Zns.Cli;

/// <summary>Talks to the management endpoint of a running <c>zns serve</c>.</summary>
internal sealed class ControlClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly string _shown;

    public ControlClient(string address, string? token)
    {
        var parsed = ControlAddress.TryParse(address, out string? error) ?? throw new UsageException($"--control: {error}");
        if (parsed.IsOff)
        {
            throw new UsageException("--control: off names no endpoint");
        }
        var handler = new SocketsHttpHandler();
        Uri baseAddress;
        if (parsed.UnixSocketPath is { } path)
        {
            handler.ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            };
            baseAddress = new Uri("http://localhost/");
        }
        else
        {
            baseAddress = new Uri($"http://{parsed.EndPoint}/");
        }
        _http = new HttpClient(handler) { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
        if (token is not null)
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        _shown = parsed.ToString();
    }

    public Task<T> GetAsync<T>(string path, JsonTypeInfo<T> type, CancellationToken ct) => SendAsync(HttpMethod.Get, path, null, type, ct);

    public Task<T> PostAsync<T>(string path, string? json, JsonTypeInfo<T> type, CancellationToken ct) => SendAsync(HttpMethod.Post, path, json, type, ct);

    public Task<T> PutAsync<T>(string path, string? json, JsonTypeInfo<T> type, CancellationToken ct) => SendAsync(HttpMethod.Put, path, json, type, ct);

    public Task<T> DeleteAsync<T>(string path, JsonTypeInfo<T> type, CancellationToken ct) => SendAsync(HttpMethod.Delete, path, null, type, ct);

    private async Task<T> SendAsync<T>(HttpMethod method, string path, string? json, JsonTypeInfo<T> type, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, path);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, ct);
        }
        catch (HttpRequestException)
        {
            throw new ZoneActionException($"no zns serve is answering on {_shown} (start one with `zns serve`, or pass --control ADDRESS)");
        }
        using (response)
        {
            byte[] body = await response.Content.ReadAsByteArrayAsync(ct);
            if (!response.IsSuccessStatusCode)
            {
                string message;
                try
                {
                    message = JsonSerializer.Deserialize(body, ControlJson.Default.ErrorDto)?.Error ?? $"HTTP {(int)response.StatusCode}";
                }
                catch (JsonException)
                {
                    message = $"HTTP {(int)response.StatusCode} from {_shown}";
                }
                throw new ZoneActionException(message);
            }
            return JsonSerializer.Deserialize(body, type) ?? throw new ZoneActionException($"empty answer from {_shown}");
        }
    }

    public void Dispose() => _http.Dispose();
}
