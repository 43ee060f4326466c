using CsCheck;
using Zns.Nvme;
using Zns.Core.Zones;

namespace Zns.Core.Tests;

/// <summary>
/// Model-based test: thousands of random operation sequences run against <see cref="ZonedNamespace"/> and against
/// a deliberately naive reference model (states recomputed by scanning, no counters); every status, zone state,
/// write pointer and the open/active counts must agree after every operation. Power cuts (keep none, all, random)
/// run against a durable shadow of the model: the write pointer at the last Flush, FUA write, Finish or Reset of
/// each zone, the ends of the writes since, and each block's data, read back after every cut.
/// </summary>
public class ZoneModelTests
{
    private const int Zones = 6;
    private const ulong ZoneSize = 8;
    private const ulong Capacity = 6;

    private enum Op { Write, Append, Open, Close, Finish, Reset, OpenAll, CloseAll, FinishAll, ResetAll, SetExtension, Read, Flush, FuaWrite, CutNone, CutAll, CutRandom }

    private sealed record Step(Op Op, int Zone, int Delta, int Blocks);

    private sealed class Model(uint maxOpenOption, uint maxActive, bool autoTransition)
    {
        public readonly ZoneState[] State = Enumerable.Repeat(ZoneState.Empty, Zones).ToArray();
        public readonly ulong[] Wp = new ulong[Zones]; // relative to the zone start
        // The durable shadow: the write pointer a cut that keeps nothing goes back to, the ends of the writes since,
        // each block's fill byte (0: never written), and whether a descriptor extension is set.
        public readonly ulong[] Durable = new ulong[Zones];
        public readonly List<ulong>[] Ends = [.. Enumerable.Range(0, Zones).Select(_ => new List<ulong>())];
        public readonly byte[,] Data = new byte[Zones, Capacity];
        public readonly bool[] Extension = new bool[Zones];
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
            Ends[z].Add(Wp[z]);
            return NvmeStatus.Success;
        }

        public void Fill(int z, ulong from, ulong to, byte fill)
        {
            for (ulong b = from; b < to; b++) { Data[z, b] = fill; }
        }

        public void MakeDurable(int z)
        {
            Durable[z] = Wp[z];
            Ends[z].Clear();
        }

        public void Flush()
        {
            for (int z = 0; z < Zones; z++) { MakeDurable(z); }
        }

        /// <summary>A power cut that leaves zone z's write pointer at keep[z]; then the power cycle, zone by zone.</summary>
        public void Cut(ulong[] keep)
        {
            for (int z = 0; z < Zones; z++)
            {
                bool lowered = keep[z] < Wp[z];
                Wp[z] = keep[z];
                Fill(z, keep[z], Capacity, 0);
                MakeDurable(z);
                ZoneState cycled = Wp[z] != 0 || Extension[z] ? ZoneState.Closed : ZoneState.Empty;
                if (State[z] is ZoneState.ImplicitlyOpened or ZoneState.ExplicitlyOpened or ZoneState.Closed)
                {
                    Set(z, cycled);
                }
                else if (State[z] == ZoneState.Full && lowered && !(cycled == ZoneState.Closed && maxActive != 0 && Active + 1 > maxActive))
                {
                    Set(z, cycled);
                }
            }
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
                    // A Finish is durable when it completes (with the data under it).
                    if (State[z] is ZoneState.Empty or ZoneState.ImplicitlyOpened or ZoneState.ExplicitlyOpened or ZoneState.Closed or ZoneState.Full) { Set(z, ZoneState.Full); MakeDurable(z); return NvmeStatus.Success; }
                    return NvmeStatus.InvalidZoneStateTransition;
                case Op.Reset:
                    // So is a Reset.
                    Set(z, ZoneState.Empty); Wp[z] = 0; Extension[z] = false; Fill(z, 0, Capacity, 0); MakeDurable(z); return NvmeStatus.Success;
                case Op.SetExtension:
                    if (State[z] != ZoneState.Empty) { return NvmeStatus.InvalidZoneStateTransition; }
                    if (maxActive != 0 && Active + 1 > maxActive) { return NvmeStatus.TooManyActiveZones; }
                    Set(z, ZoneState.Closed); Extension[z] = true; return NvmeStatus.Success;
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
            var random = new Random(c.Steps.Length);
            int stepNumber = 0;
            foreach (var step in c.Steps)
            {
                ulong zslba = (ulong)step.Zone * ZoneSize;
                NvmeStatus expected, actual;
                byte fill = (byte)(++stepNumber % 255 + 1);
                byte[] data = Enumerable.Repeat(fill, step.Blocks * 512).ToArray();
                ulong before = model.Wp[step.Zone];
                bool cut = false;
                switch (step.Op)
                {
                    case Op.Write:
                    case Op.FuaWrite:
                        ulong rel = (ulong)Math.Max(0, (long)model.Wp[step.Zone] + step.Delta);
                        expected = model.Write(step.Zone, rel, step.Blocks, append: false);
                        actual = ns.Write(zslba + rel, data, fua: step.Op == Op.FuaWrite);
                        if (expected.IsSuccess)
                        {
                            model.Fill(step.Zone, before, model.Wp[step.Zone], fill);
                            if (step.Op == Op.FuaWrite)
                            {
                                model.MakeDurable(step.Zone);
                            }
                        }
                        break;
                    case Op.Append:
                        expected = model.Write(step.Zone, 0, step.Blocks, append: true);
                        actual = ns.Append(zslba, data, out ulong alba);
                        if (actual.IsSuccess && alba + (ulong)step.Blocks != zslba + model.Wp[step.Zone])
                        {
                            throw new InvalidOperationException($"{step}: ALBA {alba}, model write pointer {model.Wp[step.Zone]}");
                        }
                        if (expected.IsSuccess)
                        {
                            model.Fill(step.Zone, before, model.Wp[step.Zone], fill);
                        }
                        break;
                    case Op.Flush:
                        expected = NvmeStatus.Success;
                        actual = ns.Flush();
                        model.Flush();
                        break;
                    case Op.CutNone:
                    case Op.CutAll:
                    case Op.CutRandom:
                    {
                        var keep = step.Op switch { Op.CutNone => PowerCutKeep.None, Op.CutAll => PowerCutKeep.All, _ => PowerCutKeep.Random };
                        var report = ns.CutPower(new PowerCutPolicy(keep, false, (ulong)stepNumber), random);
                        var kept = (ulong[])model.Wp.Clone();
                        for (int z = 0; z < Zones; z++)
                        {
                            kept[z] = keep == PowerCutKeep.None ? model.Durable[z] : model.Wp[z];
                        }
                        foreach (var zone in report.Zones)
                        {
                            ulong after = zone.WritePointerAfter - zone.Zone * ZoneSize;
                            // Random keeps a prefix of the zone's writes: the durable point or a write's end.
                            if (keep == PowerCutKeep.Random && after != model.Durable[zone.Zone] && !model.Ends[zone.Zone].Contains(after))
                            {
                                throw new InvalidOperationException($"{step}: zone {zone.Zone} cut at {after}, not a write boundary after {model.Durable[zone.Zone]} ({string.Join(",", model.Ends[zone.Zone])})");
                            }
                            if (keep == PowerCutKeep.Random)
                            {
                                kept[zone.Zone] = after;
                            }
                            if (after != kept[zone.Zone] || zone.DurableWritePointer - zone.Zone * ZoneSize != model.Durable[zone.Zone])
                            {
                                throw new InvalidOperationException($"{step}: zone {zone.Zone} cut to {after} (durable {zone.DurableWritePointer}), model {kept[zone.Zone]} (durable {model.Durable[zone.Zone]})");
                            }
                        }
                        model.Cut(kept);
                        expected = actual = NvmeStatus.Success;
                        cut = true;
                        break;
                    }
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
                for (uint z = 0; z < Zones; z++)
                {
                    if (ns.DurableWritePointer(z) != z * ZoneSize + model.Durable[z])
                    {
                        throw new InvalidOperationException($"{step}: zone {z} durable write pointer {ns.DurableWritePointer(z)}, model {model.Durable[z]}");
                    }
                }
                if (cut)
                {
                    var block = new byte[512];
                    for (uint z = 0; z < Zones; z++)
                    {
                        for (ulong b = 0; b < Capacity; b++)
                        {
                            if (!ns.Read(z * ZoneSize + b, block).IsSuccess || block.Any(x => x != model.Data[z, b]))
                            {
                                throw new InvalidOperationException($"{step}: zone {z} block {b} reads {block[0]:x2}, model {model.Data[z, b]:x2}");
                            }
                        }
                    }
                }
            }
            return true;
        }, iter: 3000, print: c => $"maxOpen={c.MaxOpen} maxActive={c.MaxActive} auto={c.Auto} steps=" + string.Join(" ", c.Steps.Select(s => $"{s.Op}({s.Zone},{s.Delta},{s.Blocks})")));
    }
}
