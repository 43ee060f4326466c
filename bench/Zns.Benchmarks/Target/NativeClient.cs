using System.Diagnostics;

namespace Zns.Benchmarks.Target;

/// <summary>
/// Builds bench/client/zns-bench-client.c with gcc when the benchmark starts: a client whose own CPU per I/O is
/// small and reported, so the ratio to the bare loop measures the target and not the initiator.
/// </summary>
internal static class NativeClient
{
    public static string Build()
    {
        string source = Path.Combine(AppContext.BaseDirectory, "zns-bench-client.c");
        string binary = Path.Combine(Path.GetTempPath(), $"zns-bench-client-{File.GetLastWriteTimeUtc(source).Ticks:x}");
        if (File.Exists(binary))
            return binary;
        var psi = new ProcessStartInfo("gcc", ["-O2", "-pthread", "-o", binary, source]) { RedirectStandardError = true };
        using var gcc = Process.Start(psi) ?? throw new InvalidOperationException("gcc could not be started");
        string errors = gcc.StandardError.ReadToEnd();
        gcc.WaitForExit();
        if (gcc.ExitCode != 0)
            throw new InvalidOperationException($"gcc failed on {source}: {errors}");
        return binary;
    }
}
