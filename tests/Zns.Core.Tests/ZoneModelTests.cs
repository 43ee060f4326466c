using CsCheck;
using Zns.Nvme;
using Zns.Core.Zones;

namespace Zns.Core.Tests;

/// <summary>
/// Model-based test: thousands of random operation sequences run against <see cref="ZonedNamespace"/> and against
/// a deliberately naive reference model (states recomputed by scanning, no counters); every status, zone state,
/// write pointer and the open/active counts must agree after every operation.
/// </summary>
public class ZoneModelTests
{
    private const int Zones = 6;
    private const ulong ZoneSize = 8;
    private const ulong Capacity = 6;

    private enum Op { Write, Append, Open, Close, Finish, Reset, OpenAll, CloseAll, FinishAll, ResetAll, SetExtension, Read }

    private sealed record Step(Op Op, int Zone, int Delta, int Blocks);

    private sealed class Model(uint maxOpenOption, uint maxActive, bool autoTransition)
    {
        public readonly ZoneState[] State = Enumerable.Repeat(ZoneState.Empty, Zones).ToArray();
        public readonly ulong[] Wp = new ulong[Zones]; // relative to the zone start
        // QEMU: max_open defaults to max_active when only max_active is given.
        private readonly uint maxOpen = maxOpenOption == 0 ? maxActive : maxOpenOption;
        // Zones in the order they entered each state (QEMU's lists).
        public readonly List<int> Implicit = [], Explicit = [], Closed = [];
        private List<int> _implicitOrder => Implicit;

        private int Count(params ZoneState[] s) => State.Count(s.Contains);
        public int Open => Count(ZoneState.ImplicitlyOpened, ZoneState.ExplicitlyOpened);
        public int Active => Count(ZoneState.ImplicitlyOpened, ZoneState.ExplicitlyOpened, ZoneState.Closed);

        private void Set(int z, ZoneState s)
        {
            if (State[z] == s)
            {
                return;
            }
            Implicit.Remove(z);
            Explicit.Remove(z);
            Closed.Remove(z);
            State[z] = s;
            (s switch { ZoneState.ImplicitlyOpened => Implicit, ZoneState.ExplicitlyOpened => Explicit, ZoneState.Closed => Closed, _ => null })?.Add(z);
        }

        private NvmeStatus OpenZone(int z, bool implicitly)
        {
            var s = State[z];
            if (s is ZoneState.Empty or ZoneState.Closed)
            {
                if (autoTransition && maxOpen != 0 && Open == maxOpen && _implicitOrder.Count > 0)
                {
                    Set(_implicitOrder[0], ZoneState.Closed);
                }
                if (maxActive != 0 && Active + (s == ZoneState.Empty ? 1 : 0) > maxActive) { return NvmeStatus.TooManyActiveZones; }
                if (maxOpen != 0 && Open + 1 > maxOpen) { return NvmeStatus.TooManyOpenZones; }
                Set(z, implicitly ? ZoneState.ImplicitlyOpened : ZoneState.ExplicitlyOpened);
                return NvmeStatus.Success;
            }
            if (s == ZoneState.ImplicitlyOpened) { if (!implicitly) { Set(z, ZoneState.ExplicitlyOpened); } return NvmeStatus.Success; }
            if (s == ZoneState.ExplicitlyOpened) { return NvmeStatus.Success; }
            return NvmeStatus.InvalidZoneStateTransition;
        }

        public NvmeStatus Write(int z, ulong rel, int nlb, bool append)
        {
            if ((ulong)z * ZoneSize + rel + (ulong)nlb > Zones * ZoneSize) { return NvmeStatus.LbaOutOfRange; }
            if (append) { rel = Wp[z]; }
            if (State[z] == ZoneState.Full) { return NvmeStatus.ZoneIsFull; }
            if (rel != Wp[z]) { return NvmeStatus.ZoneInvalidWrite; }
            if (rel + (ulong)nlb > Capacity) { return NvmeStatus.ZoneBoundaryError; }
            var st = OpenZone(z, implicitly: true);
            if (!st.IsSuccess) { return st; }
            Wp[z] += (ulong)nlb;
            if (Wp[z] == Capacity) { Set(z, ZoneState.Full); }
            return NvmeStatus.Success;
        }

        public NvmeStatus Send(Op op, int z)
        {
            switch (op)
            {
                case Op.Open: return OpenZone(z, implicitly: false);
                case Op.Close:
                    if (State[z] is ZoneState.ImplicitlyOpened or ZoneState.ExplicitlyOpened) { Set(z, ZoneState.Closed); return NvmeStatus.Success; }
                    return State[z] == ZoneState.Closed ? NvmeStatus.Success : NvmeStatus.InvalidZoneStateTransition;
                case Op.Finish:
                    if (State[z] is ZoneState.Empty or ZoneState.ImplicitlyOpened or ZoneState.ExplicitlyOpened or ZoneState.Closed or ZoneState.Full) { Set(z, ZoneState.Full); return NvmeStatus.Success; }
                    return NvmeStatus.InvalidZoneStateTransition;
                case Op.Reset:
                    Set(z, ZoneState.Empty); Wp[z] = 0; return NvmeStatus.Success;
                case Op.SetExtension:
                    if (State[z] != ZoneState.Empty) { return NvmeStatus.InvalidZoneStateTransition; }
                    if (maxActive != 0 && Active + 1 > maxActive) { return NvmeStatus.TooManyActiveZones; }
                    Set(z, ZoneState.Closed); return NvmeStatus.Success;
                default: throw new InvalidOperationException();
            }
        }

        // Walks lists in order, taking the next zone before processing the current one.
        public NvmeStatus Walk(Op op, params List<int>[] lists)
        {
            foreach (var list in lists)
            {
                int? cur = list.Count > 0 ? list[0] : null;
                while (cur is int z)
                {
                    int i = list.IndexOf(z);
                    cur = i + 1 < list.Count ? list[i + 1] : null;
                    var st = Send(op, z);
                    if (!st.IsSuccess) { return st; }
                }
            }
            return NvmeStatus.Success;
        }

        public NvmeStatus All(Op op, Func<ZoneState, bool> selected)
        {
            for (int z = 0; z < Zones; z++)
            {
                if (!selected(State[z])) { continue; }
                var st = Send(op, z);
                if (!st.IsSuccess) { return st; }
            }
            return NvmeStatus.Success;
        }
    }

    private static readonly Gen<Step> GenStep =
        Gen.Select(Gen.Enum<Op>(), Gen.Int[0, Zones - 1], Gen.Int[-1, 1], Gen.Int[1, 4], (op, z, d, n) => new Step(op, z, d, n));

    private static readonly Gen<(uint MaxOpen, uint MaxActive, bool Auto, Step[] Steps)> GenCase =
        Gen.Select(Gen.UInt[0, 3], Gen.UInt[0, 2], Gen.Bool, GenStep.Array[1, 60],
            (open, extra, auto, steps) => (open, open == 0 ? (extra == 0 ? 0u : extra + 1) : (extra == 0 ? 0u : open + extra - 1), auto, steps));

    [Fact]
    public void NamespaceAgreesWithReferenceModel()
    {
        GenCase.Sample(c =>
        {
            var options = new NamespaceOptions
            {
                LogicalBlockSize = 512, ZoneSize = (long)ZoneSize * 512, ZoneCapacity = (long)Capacity * 512,
                MaxOpen = c.MaxOpen, MaxActive = c.MaxActive, AutoTransition = c.Auto, DescriptorExtensionSize = 64,
            };
            using var ns = ZonedNamespace.CreateInMemory(Zones * (long)ZoneSize * 512, options);
            var model = new Model(c.MaxOpen, c.MaxActive, c.Auto);
            var ext = new byte[64];
            foreach (var step in c.Steps)
            {
                ulong zslba = (ulong)step.Zone * ZoneSize;
                NvmeStatus expected, actual;
                switch (step.Op)
                {
                    case Op.Write:
                        ulong rel = (ulong)Math.Max(0, (long)model.Wp[step.Zone] + step.Delta);
                        expected = model.Write(step.Zone, rel, step.Blocks, append: false);
                        actual = ns.Write(zslba + rel, new byte[step.Blocks * 512]);
                        break;
                    case Op.Append:
                        expected = model.Write(step.Zone, 0, step.Blocks, append: true);
                        actual = ns.Append(zslba, new byte[step.Blocks * 512], out ulong alba);
                        if (actual.IsSuccess && alba + (ulong)step.Blocks != zslba + model.Wp[step.Zone])
                        {
                            throw new InvalidOperationException($"{step}: ALBA {alba}, model write pointer {model.Wp[step.Zone]}");
                        }
                        break;
                    case Op.Read:
                        expected = NvmeStatus.Success;
                        actual = ns.Read(zslba, new byte[512]);
                        break;
                    case Op.OpenAll:
                        expected = model.Walk(Op.Open, model.Closed);
                        actual = ns.ZoneManagementSend(0, ZoneSendAction.Open, true);
                        break;
                    case Op.CloseAll:
                        expected = model.Walk(Op.Close, model.Implicit, model.Explicit);
                        actual = ns.ZoneManagementSend(0, ZoneSendAction.Close, true);
                        break;
                    case Op.FinishAll:
                        expected = model.Walk(Op.Finish, model.Closed, model.Implicit, model.Explicit);
                        actual = ns.ZoneManagementSend(0, ZoneSendAction.Finish, true);
                        break;
                    case Op.ResetAll:
                        expected = model.All(Op.Reset, s => s != ZoneState.Empty);
                        actual = ns.ZoneManagementSend(0, ZoneSendAction.Reset, true);
                        break;
                    default:
                        expected = model.Send(step.Op, step.Zone);
                        actual = ns.ZoneManagementSend(zslba, step.Op switch
                        {
                            Op.Open => ZoneSendAction.Open,
                            Op.Close => ZoneSendAction.Close,
                            Op.Finish => ZoneSendAction.Finish,
                            Op.Reset => ZoneSendAction.Reset,
                            _ => ZoneSendAction.SetDescriptorExtension,
                        }, false, ext);
                        break;
                }
                if (actual != (expected.IsSuccess ? expected : expected.WithDnr()))
                {
                    throw new InvalidOperationException($"{step}: status {actual}, model {expected}");
                }
                for (uint z = 0; z < Zones; z++)
                {
                    var info = ns.GetZone(z);
                    if (info.State != model.State[z])
                    {
                        throw new InvalidOperationException($"{step}: zone {z} is {info.State}, model {model.State[z]}");
                    }
                    // Finish leaves the data end where it was; the model tracks the writable position only.
                    if (info.State != ZoneState.Full && info.WritePointer != z * ZoneSize + model.Wp[z])
                    {
                        throw new InvalidOperationException($"{step}: zone {z} write pointer {info.WritePointer}, model {model.Wp[z]}");
                    }
                }
                if (ns.OpenZoneCount != model.Open || ns.ActiveZoneCount != model.Active)
                {
                    throw new InvalidOperationException($"{step}: open/active {ns.OpenZoneCount}/{ns.ActiveZoneCount}, model {model.Open}/{model.Active}");
                }
            }
            return true;
        }, iter: 3000, print: c => $"maxOpen={c.MaxOpen} maxActive={c.MaxActive} auto={c.Auto} steps=" + string.Join(" ", c.Steps.Select(s => $"{s.Op}({s.Zone},{s.Delta},{s.Blocks})")));
    }
}
