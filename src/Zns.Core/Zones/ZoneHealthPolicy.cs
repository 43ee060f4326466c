namespace Zns.Core.Zones;

/// <summary>
/// The device's own zone health policy (ZNS: the controller decides when to recommend). Zero disables a rule.
/// </summary>
/// <param name="FinishRecommendedAfterMs">Set Finish Zone Recommended once a zone has been active this long.</param>
/// <param name="ResetRecommendedAfterMs">Set Reset Zone Recommended once a zone has been Full this long.</param>
/// <param name="FinishRecommendedLimitSeconds">FRL, advertised in Identify: FZR set this long makes the controller
/// finish the zone itself and set Zone Finished by Controller.</param>
/// <param name="ResetRecommendedLimitSeconds">RRL, advertised in Identify: RZR set this long lapses (the controller
/// clears it; it never resets data on its own).</param>
public sealed record ZoneHealthPolicy(
    long FinishRecommendedAfterMs = 0,
    long ResetRecommendedAfterMs = 0,
    uint FinishRecommendedLimitSeconds = 0,
    uint ResetRecommendedLimitSeconds = 0)
{
    /// <summary>No policy: the controller never changes attributes on its own.</summary>
    public static ZoneHealthPolicy None { get; } = new();

    /// <summary>Whether any rule needs the monitor to run.</summary>
    public bool IsActive => FinishRecommendedAfterMs > 0 || ResetRecommendedAfterMs > 0 ||
                            FinishRecommendedLimitSeconds > 0 || ResetRecommendedLimitSeconds > 0;
}

/// <summary>
/// Applies a <see cref="ZoneHealthPolicy"/> to a namespace: a timer looks at every zone a few times a second,
/// remembers when each zone entered its current state and when each recommendation was set, and acts once a
/// delay or limit has passed. Nothing runs on the I/O path.
/// </summary>
public sealed class ZoneHealthMonitor : IDisposable
{
    /// <summary>How often the zones are looked at; delays are honoured to within this period.</summary>
    public static readonly TimeSpan Period = TimeSpan.FromMilliseconds(100);

    private readonly ZonedNamespace _ns;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly ZoneInfo[] _zones;
    private readonly ZoneState[] _seenState;
    private readonly long[] _stateSince;
    private readonly long[] _fzrSince;
    private readonly long[] _rzrSince;
    private ZoneHealthPolicy _policy = ZoneHealthPolicy.None;
    private ITimer? _timer;

    public ZoneHealthMonitor(ZonedNamespace ns, TimeProvider? time = null)
    {
        _ns = ns;
        _time = time ?? TimeProvider.System;
        uint n = ns.Geometry.ZoneCount;
        _zones = new ZoneInfo[n];
        _seenState = new ZoneState[n];
        _stateSince = new long[n];
        _fzrSince = new long[n];
        _rzrSince = new long[n];
    }

    /// <summary>The policy in force.</summary>
    public ZoneHealthPolicy Policy
    {
        get { lock (_lock) { return _policy; } }
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            lock (_lock)
            {
                _policy = value;
                if (value.IsActive && _ns.IsZoned)
                {
                    _timer ??= _time.CreateTimer(static s => ((ZoneHealthMonitor)s!).Tick(), this, Period, Period);
                }
                else
                {
                    _timer?.Dispose();
                    _timer = null;
                }
            }
        }
    }

    /// <summary>One look at every zone (the timer calls this; tests may too).</summary>
    public void Tick()
    {
        lock (_lock)
        {
            ZoneHealthPolicy p = _policy;
            if (!p.IsActive)
            {
                return;
            }
            long now = _time.GetTimestamp();
            _ns.CopyZones(_zones);
            for (uint i = 0; i < _zones.Length; i++)
            {
                ZoneInfo z = _zones[i];
                if (z.State != _seenState[i] || _stateSince[i] == 0)
                {
                    _seenState[i] = z.State;
                    _stateSince[i] = now;
                }
                bool active = z.State is ZoneState.ImplicitlyOpened or ZoneState.ExplicitlyOpened or ZoneState.Closed;
                TimeSpan inState = _time.GetElapsedTime(_stateSince[i], now);

                bool fzr = (z.Attributes & ZoneAttributes.FinishRecommended) != 0;
                bool rzr = (z.Attributes & ZoneAttributes.ResetRecommended) != 0;
                _fzrSince[i] = fzr ? (_fzrSince[i] == 0 ? now : _fzrSince[i]) : 0;
                _rzrSince[i] = rzr ? (_rzrSince[i] == 0 ? now : _rzrSince[i]) : 0;

                if (!fzr && active && p.FinishRecommendedAfterMs > 0 && inState.TotalMilliseconds >= p.FinishRecommendedAfterMs)
                {
                    _ns.SetZoneRecommendation(i, ZoneAttributes.FinishRecommended);
                    _fzrSince[i] = now;
                }
                else if (fzr && p.FinishRecommendedLimitSeconds > 0 &&
                         _time.GetElapsedTime(_fzrSince[i], now).TotalSeconds >= p.FinishRecommendedLimitSeconds)
                {
                    _ns.FinishZoneByController(i);
                    _fzrSince[i] = 0;
                }

                if (!rzr && z.State == ZoneState.Full && p.ResetRecommendedAfterMs > 0 && inState.TotalMilliseconds >= p.ResetRecommendedAfterMs)
                {
                    _ns.SetZoneRecommendation(i, ZoneAttributes.ResetRecommended);
                    _rzrSince[i] = now;
                }
                else if (rzr && p.ResetRecommendedLimitSeconds > 0 &&
                         _time.GetElapsedTime(_rzrSince[i], now).TotalSeconds >= p.ResetRecommendedLimitSeconds)
                {
                    _ns.ClearZoneRecommendation(i, ZoneAttributes.ResetRecommended);
                    _rzrSince[i] = 0;
                }
            }
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _timer?.Dispose();
            _timer = null;
        }
    }
}
