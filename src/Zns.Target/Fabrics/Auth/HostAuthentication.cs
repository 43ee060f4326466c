using Zns.Target.Controller;

namespace Zns.Target.Fabrics.Auth;

/// <summary>
/// DH-HMAC-CHAP settings for one allowed host (<see cref="TargetOptions.HostAuthentication"/>): the host's key,
/// optionally the controller's key (bidirectional authentication when the host asks for it), and the hash functions
/// and DH groups this host may use, in order of preference. The first of them the host also offers is chosen, so
/// listing one forces it.
/// </summary>
public sealed record HostAuthentication
{
    /// <summary>The secret the host proves it holds (the host's <c>--dhchap-secret</c>).</summary>
    public required DhchapKey HostKey { get; init; }

    /// <summary>The secret the controller proves it holds to a host that asks (the host's <c>--dhchap-ctrl-secret</c>).</summary>
    public DhchapKey? ControllerKey { get; init; }

    /// <summary>Acceptable hash identifiers (<see cref="DhchapHash"/>), most preferred first.</summary>
    public IReadOnlyList<byte> Hashes { get; init; } = DhchapHash.All;

    /// <summary>Acceptable DH group identifiers (<see cref="DhGroup"/>), most preferred first.</summary>
    public IReadOnlyList<byte> DhGroups { get; init; } = DhGroup.All;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate(string hostNqn)
    {
        if (Hashes.Count == 0 || Hashes.Any(h => !DhchapHash.IsKnown(h)))
        {
            throw new ArgumentException($"host {hostNqn}: hashes must be a non-empty list of sha256, sha384, sha512", nameof(Hashes));
        }
        if (DhGroups.Count == 0 || DhGroups.Any(g => !DhGroup.IsKnown(g)))
        {
            throw new ArgumentException($"host {hostNqn}: DH groups must be a non-empty list of null, ffdhe2048 ... ffdhe8192", nameof(DhGroups));
        }
        if (ControllerKey is not null && ControllerKey.SameAs(HostKey))
        {
            // With one secret for both directions the controller's response could be replayed as the host's.
            throw new ArgumentException($"host {hostNqn}: the controller key must differ from the host key", nameof(ControllerKey));
        }
    }
}
