using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Zns.Core.Zones;
using Zns.Target.Fabrics.Auth;
using Zns.Nvme.Layouts;

namespace Zns.Target.Controller;

/// <summary>
/// The NVMe controller layer of the target: one NVM subsystem with its namespaces plus the discovery subsystem,
/// reachable through any connection the transport hands to <see cref="CreateQueueHandler"/>. Connect commands are
/// routed by their SUBNQN, so one listener can serve both <c>nvme discover</c> and <c>nvme connect</c>.
/// </summary>
/// <remarks>
/// Typical use: build the namespaces, <c>new NvmeTarget(options, namespaces, loggerFactory)</c>, give it to the
/// transport as its <see cref="IQueueHandlerFactory"/>, then call <see cref="SetListenerAddress(IPEndPoint)"/>
/// once the listener is bound. The namespaces stay owned by the caller.
/// </remarks>
public sealed class NvmeTarget : IQueueHandlerFactory, IDisposable
{
    private readonly Lock _discoveryLock = new();
    private IPEndPoint? _listener;
    private ulong _discoveryGeneration;

    /// <summary>Creates the target for <paramref name="namespaces"/> (NSID n = element n−1).</summary>
    public NvmeTarget(TargetOptions options, IEnumerable<ZonedNamespace> namespaces, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(namespaces);
        options.Validate();
        Options = options;
        Logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Zns.Target.Controller");
        ZonedNamespace[] list = [.. namespaces];
        if (list.Length > NamespaceListLayout.MaxEntries)
        {
            // One Identify page lists at most 1024 NSIDs; the host would need continuation queries for more.
            throw new ArgumentException($"at most {NamespaceListLayout.MaxEntries} namespaces are supported", nameof(namespaces));
        }
        Subsystem = new NvmeSubsystem(this, options.SubsystemNqn, isDiscovery: false, list);
        AuthFailures = new AuthFailureLimiter(options.MaxAuthenticationFailures, options.AuthenticationFailureWindow, options.TimeProvider);
        Metrics = new Metrics.TargetMetrics(this);
        DiscoverySubsystem = options.EnableDiscovery ? new NvmeSubsystem(this, TargetOptions.DiscoveryNqn, isDiscovery: true, []) : null;
    }

    /// <summary>Command-level faults armed on this target (media errors, latency, transient failures).</summary>
    public Zns.Core.Faults.FaultPlan Faults { get; } = new();

    /// <summary>I/O counters, latency histograms and gauges (System.Diagnostics.Metrics meter <c>Zns</c>).</summary>
    public Metrics.TargetMetrics Metrics { get; }

    /// <summary>The validated options.</summary>
    public TargetOptions Options { get; }

    /// <summary>The NVM subsystem.</summary>
    public NvmeSubsystem Subsystem { get; }

    /// <summary>The discovery subsystem, or null when discovery is disabled.</summary>
    public NvmeSubsystem? DiscoverySubsystem { get; }

    internal ILogger Logger { get; }

    /// <summary>Failed authentication attempts per source address.</summary>
    internal AuthFailureLimiter AuthFailures { get; }

    /// <summary>The address reported in discovery log entries, once the transport has bound.</summary>
    public IPEndPoint? ListenerEndPoint
    {
        get { lock (_discoveryLock) { return _listener; } }
    }

    /// <summary>
    /// Sets the address reported in discovery log entries (TRADDR/TRSVCID/ADRFAM). Pass the address hosts reach the
    /// target on: a wildcard address (0.0.0.0, ::) is not a usable TRADDR for <c>nvme connect-all</c>.
    /// </summary>
    public void SetListenerAddress(IPEndPoint endPoint)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        lock (_discoveryLock)
        {
            _listener = endPoint;
            // GENCTR must change whenever the log does, so a host reading it in pieces notices and restarts.
            _discoveryGeneration++;
        }
    }

    /// <summary>Sets the listener address from text (an IPv4 or IPv6 literal) and a TCP port.</summary>
    public void SetListenerAddress(string address, int port) =>
        SetListenerAddress(new IPEndPoint(IPAddress.Parse(address), port));

    /// <inheritdoc/>
    public IQueueHandler CreateQueueHandler(IQueueTransport transport)
    {
        ArgumentNullException.ThrowIfNull(transport);
        return new Fabrics.FabricsQueue(this, transport);
    }

    /// <summary>Destroys every controller (their connections are aborted). The namespaces are not disposed.</summary>
    public void Dispose()
    {
        Subsystem.DisposeHealthMonitors();
        Metrics.Dispose();
        foreach (NvmeSubsystem subsystem in AllSubsystems())
        {
            foreach (NvmeController controller in subsystem.Controllers.ToArray())
            {
                controller.Destroy("target stopped");
            }
        }
    }

    internal NvmeSubsystem? FindSubsystem(string nqn)
    {
        if (nqn == Subsystem.Nqn)
        {
            return Subsystem;
        }
        return DiscoverySubsystem is not null && nqn == DiscoverySubsystem.Nqn ? DiscoverySubsystem : null;
    }

    /// <summary>Whether <paramref name="hostNqn"/> may connect to <paramref name="subsystem"/> (discovery is open to all).</summary>
    internal bool IsHostAllowed(NvmeSubsystem subsystem, string hostNqn) =>
        subsystem.IsDiscovery || Options.AllowedHostNqns.Count == 0 || Options.AllowedHostNqns.Contains(hostNqn);

    /// <summary>
    /// Builds the discovery log for <paramref name="hostNqn"/>: the NVM subsystem (when the host may connect to it)
    /// and the discovery subsystem itself, as nvmet lists them.
    /// </summary>
    internal byte[] BuildDiscoveryLog(string hostNqn)
    {
        IPEndPoint? listener;
        ulong generation;
        lock (_discoveryLock)
        {
            listener = _listener;
            generation = _discoveryGeneration;
        }
        var entries = new List<DiscoveryEntry>(2);
        if (listener is not null)
        {
            byte family = listener.AddressFamily == AddressFamily.InterNetworkV6
                ? DiscoveryLogLayout.AddressFamilyIpv6 : DiscoveryLogLayout.AddressFamilyIpv4;
            string address = listener.Address.IsIPv4MappedToIPv6 ? listener.Address.MapToIPv4().ToString() : listener.Address.ToString();
            if (listener.Address.IsIPv4MappedToIPv6)
            {
                family = DiscoveryLogLayout.AddressFamilyIpv4;
            }
            string port = listener.Port.ToString(CultureInfo.InvariantCulture);
            if (IsHostAllowed(Subsystem, hostNqn))
            {
                entries.Add(new DiscoveryEntry(family, DiscoveryLogLayout.SubtypeNvm, Options.PortId, port, Subsystem.Nqn, address));
            }
            entries.Add(new DiscoveryEntry(family, DiscoveryLogLayout.SubtypeCurrentDiscovery, Options.PortId, port, TargetOptions.DiscoveryNqn, address));
        }
        byte[] log = new byte[DiscoveryLogLayout.SizeFor(entries.Count)];
        DiscoveryLogLayout.Write(log, generation, entries.ToArray());
        return log;
    }

    private IEnumerable<NvmeSubsystem> AllSubsystems()
    {
        yield return Subsystem;
        if (DiscoverySubsystem is not null)
        {
            yield return DiscoverySubsystem;
        }
    }
}
