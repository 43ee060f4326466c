using System.Diagnostics;
using System.Runtime.InteropServices;

using Zns.Core.Interop;

namespace Zns.Core.Timing;

/// <summary>
/// Runs work items at their due times without spinning: one background thread sleeps until the earliest due time
/// (or until an earlier one is scheduled) and hands what is due to the thread pool. Scheduling takes a short lock
/// and allocates nothing in steady state, whatever the number of queues and connections feeding it.
/// </summary>
/// <remarks>
/// On Linux the thread sleeps in <c>ppoll</c> on an eventfd with a nanosecond timeout and a 1 ns timer slack, so a
/// completion is late by the kernel's wake-up latency only (tens of microseconds on a loaded machine); elsewhere it
/// waits on an event with millisecond resolution.
/// </remarks>
public sealed partial class CompletionScheduler : IDisposable
{
    private static readonly Lazy<CompletionScheduler> LazyShared = new(() => new CompletionScheduler());
    private static readonly double NsPerTick = 1e9 / Stopwatch.Frequency;

    private readonly Lock _lock = new();
    private readonly TimerQueue<IThreadPoolWorkItem> _queue = new(1024);
    private readonly Waker _waker;
    private readonly Thread _thread;
    private long _sleepingUntil = long.MaxValue;
    private volatile bool _disposed;

    public CompletionScheduler()
    {
        _waker = OperatingSystem.IsLinux() ? new EventFdWaker() : new EventWaker();
        _thread = new Thread(Run) { IsBackground = true, Name = "zns timing" };
        _thread.Start();
    }

    /// <summary>The process-wide scheduler every timed namespace uses.</summary>
    public static CompletionScheduler Shared => LazyShared.Value;

    /// <summary>The clock due times are expressed in: monotonic nanoseconds.</summary>
    public static long Now => (long)(Stopwatch.GetTimestamp() * NsPerTick);

    /// <summary>Completions waiting for their time.</summary>
    public int Pending
    {
        get { lock (_lock) { return _queue.Count; } }
    }

    /// <summary>Queues <paramref name="item"/> to the thread pool at <paramref name="due"/> (<see cref="Now"/> clock).</summary>
    public void Schedule(long due, IThreadPoolWorkItem item)
    {
        bool wake;
        lock (_lock)
        {
            _queue.Add(due, item);
            wake = due < _sleepingUntil;
            if (wake)
            {
                // One wake-up is enough until the thread goes back to sleep.
                _sleepingUntil = long.MinValue;
            }
        }
        if (wake)
        {
            _waker.Wake();
        }
    }

    private void Run()
    {
        _waker.Prepare();
        while (!_disposed)
        {
            long next;
            lock (_lock)
            {
                long now = Now;
                while (_queue.TryTakeDue(now, out IThreadPoolWorkItem item))
                {
                    ThreadPool.UnsafeQueueUserWorkItem(item, preferLocal: false);
                }
                next = _queue.NextDue;
                _sleepingUntil = next;
            }
            _waker.Wait(next == long.MaxValue ? -1 : Math.Max(0, next - Now));
        }
    }

    public void Dispose()
    {
        if (this == LazyShared.Value)
        {
            return;
        }
        _disposed = true;
        _waker.Wake();
        _thread.Join();
        _waker.Dispose();
    }

    private abstract class Waker : IDisposable
    {
        public virtual void Prepare() { }

        public abstract void Wake();

        /// <summary>Sleeps up to <paramref name="ns"/> nanoseconds (forever when negative) or until woken.</summary>
        public abstract void Wait(long ns);

        public virtual void Dispose() { }
    }

    private sealed class EventWaker : Waker
    {
        private readonly AutoResetEvent _event = new(false);

        public override void Wake() => _event.Set();

        public override void Wait(long ns) => _event.WaitOne(ns < 0 ? Timeout.Infinite : (int)Math.Min(int.MaxValue, (ns + 999_999) / 1_000_000));

        public override void Dispose() => _event.Dispose();
    }

    private sealed unsafe class EventFdWaker : Waker
    {
        private readonly int _fd;

        public EventFdWaker()
        {
            _fd = Posix.eventfd(0, Posix.EfdNonblock | Posix.EfdCloexec);
            if (_fd < 0)
            {
                throw new IOException($"eventfd failed (errno {Marshal.GetLastPInvokeError()})");
            }
        }

        public override void Prepare() => Posix.prctl(Posix.PrSetTimerslack, 1, 0, 0, 0);

        public override void Wake()
        {
            ulong one = 1;
            _ = Posix.write(_fd, &one, 8);
        }

        public override void Wait(long ns)
        {
            var pfd = new Posix.PollFd { Fd = _fd, Events = Posix.PollIn };
            var ts = new Posix.TimeSpec { Seconds = ns / 1_000_000_000, Nanoseconds = ns % 1_000_000_000 };
            int n = Posix.ppoll(&pfd, 1, ns < 0 ? null : &ts, null);
            if (n > 0 && (pfd.Revents & Posix.PollIn) != 0)
            {
                ulong count;
                _ = Posix.read(_fd, &count, 8);
            }
        }

        public override void Dispose() => Posix.close(_fd);
    }
}
