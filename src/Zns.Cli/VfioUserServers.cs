using Microsoft.Extensions.Logging;
using Zns.Target.Nvme;
using Zns.Target.VfioUser;

namespace Zns.Cli;

/// <summary>The `serve --vfio-user PATH` sockets: one PCIe NVMe function of the subsystem each.</summary>
internal sealed class VfioUserServers : IDisposable
{
    private readonly List<VfioUserServer> _servers = [];
    private bool _disposed;

    public static VfioUserServers Start(NvmeTarget target, string[] paths, ILoggerFactory loggerFactory)
    {
        var set = new VfioUserServers();
        try
        {
            foreach (string path in paths)
            {
                try
                {
                    set._servers.Add(new VfioUserServer(target, path, loggerFactory));
                }
                catch (System.Net.Sockets.SocketException e)
                {
                    throw new UsageException($"--vfio-user {path}: {e.Message}");
                }
            }
            foreach (VfioUserServer server in set._servers)
            {
                server.Start();
            }
            return set;
        }
        catch
        {
            set.Dispose();
            throw;
        }
    }

    /// <summary>What to give QEMU: shareable guest memory and the vfio-user-pci device in the JSON form QEMU needs.</summary>
    public void PrintAttachLines(TextWriter stdout)
    {
        foreach (VfioUserServer server in _servers)
        {
            stdout.WriteLine($"PCIe NVMe controller over vfio-user on {server.SocketPath}; QEMU 10.1+ options (SIZE = the -m size):");
            stdout.WriteLine($"  -object memory-backend-memfd,id=mem,size=SIZE,share=on -machine memory-backend=mem " +
                             $"-device '{{\"driver\":\"vfio-user-pci\",\"socket\":{{\"type\":\"unix\",\"path\":\"{server.SocketPath}\"}}}}'");
        }
    }

    /// <summary>Stops the sockets; each function's controller is reset (the guest sees its device go away).</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        foreach (VfioUserServer server in _servers)
        {
            server.Dispose();
        }
    }
}
