using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;

namespace Zns.Cli.Tests;

/// <summary>
/// Runs the built <c>zns</c> program as a user would: <c>dotnet zns.dll</c> beside the tests, or the executable
/// that <c>ZNS_CLI_PATH</c> names (the NativeAOT build; tests/packaging/aot-tests.sh runs this suite against it).
/// </summary>
internal static class CliRunner
{
    /// <summary>
    /// Reads a starting <c>zns serve</c>'s banner until it names its NVMe/TCP address and its control endpoint (in
    /// that order), then lets its output drain.
    /// </summary>
    public static async Task<(IPEndPoint Listen, string Control)> WaitForControlAsync(Process server, CancellationToken ct)
    {
        IPEndPoint? listen = null;
        string? line;
        while ((line = await server.StandardOutput.ReadLineAsync(ct)) is not null)
        {
            if (Regex.Match(line, @"serving \d+ namespaces? on (127\.0\.0\.1:\d+)") is { Success: true } serving)
            {
                listen = IPEndPoint.Parse(serving.Groups[1].Value);
            }
            else if (Regex.Match(line, @"^control: http://(127\.0\.0\.1:\d+) ") is { Success: true } control && listen is not null)
            {
                _ = server.StandardOutput.ReadToEndAsync(ct);
                _ = server.StandardError.ReadToEndAsync(ct);
                return (listen, control.Groups[1].Value);
            }
        }
        throw new InvalidOperationException("zns serve exited: " + await server.StandardError.ReadToEndAsync(ct));
    }

    public static string ZnsDll => Path.Combine(AppContext.BaseDirectory, "zns.dll");

    /// <summary>The <c>zns</c> executable under test, or null for <c>dotnet zns.dll</c>.</summary>
    public static string? ZnsExecutable => Environment.GetEnvironmentVariable("ZNS_CLI_PATH") is { Length: > 0 } path ? Path.GetFullPath(path) : null;

    public static ProcessStartInfo StartInfo(string workingDirectory, params string[] args)
    {
        string? executable = ZnsExecutable;
        var psi = new ProcessStartInfo(executable ?? "dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = workingDirectory,
        };
        if (executable is null)
        {
            psi.ArgumentList.Add(ZnsDll);
        }
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }
        return psi;
    }

    public static async Task<(int Exit, string Out, string Err)> RunAsync(string workingDirectory, params string[] args)
    {
        using var p = Process.Start(StartInfo(workingDirectory, args))!;
        var ct = TestContext.Current.CancellationToken;
        var stdout = p.StandardOutput.ReadToEndAsync(ct);
        var stderr = p.StandardError.ReadToEndAsync(ct);
        await p.WaitForExitAsync(ct);
        return (p.ExitCode, await stdout, await stderr);
    }

    /// <summary>Reads a running <c>zns serve</c>'s banner up to its listening line; then drains both streams so the server never blocks on them.</summary>
    public static async Task<IPEndPoint> WaitForListenAsync(Process server, CancellationToken ct)
    {
        var regex = new Regex(@"serving \d+ namespaces? on (127\.0\.0\.1:\d+)");
        string? line;
        while ((line = await server.StandardOutput.ReadLineAsync(ct)) is not null)
        {
            var match = regex.Match(line);
            if (match.Success)
            {
                _ = server.StandardOutput.ReadToEndAsync(ct);
                _ = server.StandardError.ReadToEndAsync(ct);
                return IPEndPoint.Parse(match.Groups[1].Value);
            }
        }
        throw new InvalidOperationException("zns serve exited: " + await server.StandardError.ReadToEndAsync(ct));
    }
}

/// <summary>A temporary working directory.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "zns-cli-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
