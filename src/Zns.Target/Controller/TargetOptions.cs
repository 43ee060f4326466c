using System.Text;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Target.Fabrics.Auth;

namespace Zns.Target.Controller;

/// <summary>
/// Configuration of the NVMe controller layer: the identity of the NVM subsystem and the controller limits.
/// Immutable; <see cref="Validate"/> runs once when the target is built.
/// </summary>
public sealed record TargetOptions
{
    /// <summary>The well-known discovery subsystem NQN (NVMe Base §4.7).</summary>
    public const string DiscoveryNqn = "nqn.2014-08.org.nvmexpress.discovery";

    /// <summary>Subsystem NQN hosts connect to.</summary>
    public string SubsystemNqn { get; init; } = "nqn.2026-01.io.zns:subsys";

    /// <summary>Serial number (Identify Controller SN, at most 20 ASCII characters).</summary>
    public string SerialNumber { get; init; } = "deadbeef";

    /// <summary>Model number (Identify Controller MN, at most 40 ASCII characters).</summary>
    public string ModelNumber { get; init; } = "zns";

    /// <summary>Firmware revision (Identify Controller FR and firmware slot 1, at most 8 ASCII characters).</summary>
    public string FirmwareRevision { get; init; } = "1.0";

    /// <summary>Host NQNs allowed to connect to the NVM subsystem; empty allows any host.</summary>
    public IReadOnlyCollection<string> AllowedHostNqns { get; init; } = [];

    /// <summary>
    /// DH-HMAC-CHAP settings of the hosts that must authenticate (NVMe in-band authentication), by host NQN. Every
    /// host listed here must also be in <see cref="AllowedHostNqns"/>.
    /// </summary>
    public IReadOnlyDictionary<string, HostAuthentication> HostAuthentication { get; init; } = new Dictionary<string, HostAuthentication>();

    /// <summary>How long a queue may wait for the host's next authentication message before it is disconnected.</summary>
    public TimeSpan AuthenticationTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Failed authentication attempts (and Connects of unknown hosts) one source address may make per window.</summary>
    public int MaxAuthenticationFailures { get; init; } = 10;

    /// <summary>Window of <see cref="MaxAuthenticationFailures"/>.</summary>
    public TimeSpan AuthenticationFailureWindow { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>I/O queues granted per controller (Set Features Number of Queues; QIDs 1..this).</summary>
    public int MaxIoQueues { get; init; } = 8;

    /// <summary>AERL (QEMU's <c>aerl</c>): outstanding Asynchronous Event Requests allowed, 0's based.</summary>
    public byte AsyncEventRequestLimit { get; init; } = 3;

    /// <summary>Default of <see cref="MaxQueueEntries"/>.</summary>
    public const int DefaultMaxQueueEntries = 128;

    /// <summary>
    /// Entries per queue (CAP.MQES + 1 and Identify MAXCMD), 2..65536: the most commands a host may have outstanding
    /// on one queue, over every transport.
    /// </summary>
    public int MaxQueueEntries { get; init; } = DefaultMaxQueueEntries;

    /// <summary>Largest admin-queue transfer (the discovery log may need more than one 4 KiB page).</summary>
    public int MaxAdminDataLength { get; init; } = 64 * 1024;

    /// <summary>Port ID reported in the discovery log.</summary>
    public ushort PortId { get; init; } = 1;

    /// <summary>
    /// Serve the discovery subsystem (<see cref="DiscoveryNqn"/>) for <c>nvme discover</c>.
    /// </summary>
    public bool EnableDiscovery { get; init; } = true;

    /// <summary>Clock for keep-alive timers (a fake one in tests).</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        CheckText(SubsystemNqn, 223, nameof(SubsystemNqn));
        if (SubsystemNqn == DiscoveryNqn)
        {
            throw new ArgumentException("the subsystem NQN must not be the discovery NQN", nameof(SubsystemNqn));
        }
        CheckText(SerialNumber, 20, nameof(SerialNumber));
        CheckText(ModelNumber, 40, nameof(ModelNumber));
        CheckText(FirmwareRevision, 8, nameof(FirmwareRevision));
        foreach (string host in AllowedHostNqns)
        {
            CheckText(host, 223, nameof(AllowedHostNqns));
        }
        foreach ((string host, HostAuthentication auth) in HostAuthentication)
        {
            if (!AllowedHostNqns.Contains(host))
            {
                throw new ArgumentException($"host {host} has a DH-HMAC-CHAP key but is not in AllowedHostNqns " +
                    "(without an allow-list any other host NQN could connect without a key)", nameof(HostAuthentication));
            }
            auth.Validate(host);
        }
        if (AuthenticationTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException($"must be positive, got {AuthenticationTimeout}", nameof(AuthenticationTimeout));
        }
        if (MaxAuthenticationFailures < 1 || AuthenticationFailureWindow <= TimeSpan.Zero)
        {
            throw new ArgumentException("MaxAuthenticationFailures must be at least 1 and the window positive", nameof(MaxAuthenticationFailures));
        }
        if (MaxIoQueues is < 1 or > 0xFFFF)
        {
            throw new ArgumentException($"must be 1..65535, got {MaxIoQueues}", nameof(MaxIoQueues));
        }
        if (MaxQueueEntries is < 2 or > 0x10000)
        {
            throw new ArgumentException($"must be 2..65536, got {MaxQueueEntries}", nameof(MaxQueueEntries));
        }
        if (MaxAdminDataLength < NvmeTcp.HostAdminInCapsuleDataLength)
        {
            throw new ArgumentException($"must be at least {NvmeTcp.HostAdminInCapsuleDataLength}, got {MaxAdminDataLength}", nameof(MaxAdminDataLength));
        }
    }

    private static void CheckText(string value, int maxBytes, string name)
    {
        if (string.IsNullOrEmpty(value) || value.Length > maxBytes || !Ascii.IsValid(value) || value.Any(char.IsControl))
        {
            throw new ArgumentException($"must be 1..{maxBytes} printable ASCII characters, got '{value}'", name);
        }
    }
}
