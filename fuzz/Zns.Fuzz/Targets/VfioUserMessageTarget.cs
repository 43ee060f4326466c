using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Zns.Core.Zones;
using Zns.Target.Controller;
using Zns.Target.Pcie;
using Zns.Target.VfioUser;
using static Zns.Fuzz.FuzzFailureException;

namespace Zns.Fuzz;

/// <summary>
/// The vfio-user message path over arbitrary bytes: the input is a byte stream framed as the server frames its
/// socket (<see cref="VfioUserFraming.TryFrame"/>), and every complete message goes to a
/// <see cref="VfioUserSession"/> in front of a real PCIe NVMe function. A DMA_MAP whose header error field (reserved
/// in commands) is odd carries a stand-in file descriptor that maps a 1 MiB native buffer, so the controller can be
/// enabled and its poller run over fuzzed guest memory.
/// </summary>
/// <remarks>
/// Invariants: nothing throws; framing never reports a message longer than the input or outside the size limits;
/// each reply echoes the ID and command, is a Reply, states its own size, carries no payload when it is an error
/// and stays within the reply buffer; every descriptor handed in is closed or kept exactly once; the guest memory
/// table stays within its limit; afterwards the function still answers a CAP read.
/// </remarks>
public sealed unsafe class VfioUserMessageTarget : IFuzzTarget
{
    private const int FakeFd = 1_000_000, GuestBytes = 1 << 20;
    private static readonly Lazy<Fixture> Shared = new(() => new Fixture());

    /// <inheritdoc/>
    public static string Name => "vfio-user-messages";

    private sealed class Fixture
    {
        public readonly byte* Guest = (byte*)NativeMemory.AllocZeroed(GuestBytes);
        public readonly ZonedNamespace Namespace = ZonedNamespace.CreateInMemory(8 << 20, new NamespaceOptions { ZoneSize = 1 << 20, MaxOpen = 2, MaxActive = 3 });
        public readonly NvmeTarget Target;
        public readonly GuestMemory Memory;
        public readonly NvmePcieFunction Function;
        public readonly byte[] Reply = new byte[VfioUserFraming.MaxMessageSize];

        public Fixture()
        {
            Target = new NvmeTarget(new TargetOptions(), [Namespace]);
            Memory = new GuestMemory(new FakeMapper(this));
            Function = new NvmePcieFunction(Target, Memory, "fuzz");
        }
    }

    private sealed class FakeMapper(Fixture f) : IGuestMemoryMapper
    {
        public nint Map(int fd, long offset, ulong size, bool writable, out int errno)
        {
            errno = 0;
            if (fd != FakeFd || offset < 0 || size > GuestBytes || (ulong)offset > GuestBytes - size)
            {
                errno = Errno.Einval;
                return 0;
            }
            return (nint)(f.Guest + offset);
        }

        public void Unmap(nint address, ulong size)
        {
        }
    }

    private sealed class NullSignal : IInterruptSignal
    {
        public void Signal()
        {
        }

        public void Close()
        {
        }
    }

    /// <inheritdoc/>
    public static void Fuzz(ReadOnlySpan<byte> input)
    {
        Fixture f = Shared.Value;
        f.Function.ResetFunction("fuzz input");
        f.Memory.Unmap(0, 0, all: true);
        new Span<byte>(f.Guest, GuestBytes).Clear();
        int closes = 0, kept = 0, handed = 0;
        var session = new VfioUserSession(f.Function, _ => { kept++; return new NullSignal(); }, _ => closes++);
        var fds = new List<int>();
        ReadOnlySpan<byte> rest = input;
        while (true)
        {
            FrameStatus status = VfioUserFraming.TryFrame(rest, out VfioUserHeader h);
            if (status != FrameStatus.Complete)
            {
                Check(status == FrameStatus.Invalid || rest.Length < VfioUserHeader.Size || h.MessageSize > rest.Length,
                    "need more data although the message is complete", input);
                break;
            }
            Check(h.MessageSize >= VfioUserHeader.Size && h.MessageSize <= rest.Length && h.MessageSize <= VfioUserFraming.MaxMessageSize,
                "framed message outside the input or the limits", input);
            if ((h.Error & 1) != 0)
            {
                fds.Add(FakeFd);
                handed++;
            }
            int length = session.Handle(in h, rest[VfioUserHeader.Size..(int)h.MessageSize], fds, f.Reply);
            Check(fds.Count == 0, "descriptors left in the list", input);
            if (h.NoReply)
            {
                Check(length == 0, "a reply to a No_reply command", input);
            }
            else
            {
                VfioUserHeader r = VfioUserHeader.Read(f.Reply);
                Check(length >= VfioUserHeader.Size && length <= f.Reply.Length && r.MessageSize == length, "reply size", input);
                Check(r.MessageId == h.MessageId && r.Command == h.Command && (r.Flags & VfioUserHeader.TypeMask) == VfioUserHeader.TypeReply,
                    "reply header does not answer the command", input);
                Check((r.Flags & VfioUserHeader.ErrorFlag) == 0 || length == VfioUserHeader.Size, "error reply with a payload", input);
            }
            rest = rest[(int)h.MessageSize..];
        }
        Check(closes + kept == handed, $"descriptors: {handed} handed in, {closes} closed, {kept} kept", input);
        Check(f.Memory.WindowCount <= GuestMemory.MaxWindows, "too many DMA windows", input);
        Span<byte> cap = stackalloc byte[8];
        Check(f.Function.ReadBar0(0, cap) && BinaryPrimitives.ReadUInt64LittleEndian(cap) == f.Function.Capabilities, "CAP no longer readable", input);
    }
}
