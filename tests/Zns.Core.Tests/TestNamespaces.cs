using Zns.Core.Zones;

namespace Zns.Core.Tests;

internal static class TestNamespaces
{
    /// <summary>8 zones of 16 blocks (512 B), capacity 12, descriptor extension 64 bytes.</summary>
    public static NamespaceOptions Small(uint maxOpen = 0, uint maxActive = 0, bool autoTransition = true, bool crossRead = false) => new()
    {
        LogicalBlockSize = 512,
        ZoneSize = 16 * 512,
        ZoneCapacity = 12 * 512,
        MaxOpen = maxOpen,
        MaxActive = maxActive,
        AutoTransition = autoTransition,
        CrossRead = crossRead,
        DescriptorExtensionSize = 64,
        Zasl = 0,
    };

    public static ZonedNamespace Ram(NamespaceOptions options, int zones = 8) =>
        ZonedNamespace.CreateInMemory(zones * options.ZoneSize, options);

    public static byte[] Blocks(int count, byte fill, int blockSize = 512) =>
        Enumerable.Repeat(fill, count * blockSize).ToArray();
}

/// <summary>A temporary directory removed at dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "zns-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
