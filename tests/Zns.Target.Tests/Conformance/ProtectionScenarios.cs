using System.Buffers.Binary;
using Zns.Core.Zones;
using Zns.Nvme;
using Zns.Nvme.Layouts;
using static Zns.Target.Tests.Conformance.Conformance;
using static Zns.Target.Tests.Conformance.ConformanceTarget;

namespace Zns.Target.Tests.Conformance;

/// <summary>
/// Metadata and end-to-end protection through every front end: every PI type with either guard and the PI first or
/// last, in extended LBA formats (which a fabric carries), generated (PRACT) and checked (PRCHK) on Write, Read, Zone
/// Append with its reference tag remapping, Write Zeroes, Compare and Verify, each check's error; and a separate
/// metadata buffer, which only PCIe carries (MPTR) and a fabric does not attach.
/// </summary>
public sealed class ProtectionConformance
{
    private static readonly TargetSpec Spec = new() { Protection = true };

    private static readonly Dictionary<string, Func<FrontEnd, Task>> Scenarios = new()
    {
        [nameof(EveryPiFormat)] = EveryPiFormat,
        [nameof(IdentifyReportsTheFormats)] = IdentifyReportsTheFormats,
        [nameof(CorruptedTagsFailTheChecks)] = CorruptedTagsFailTheChecks,
    };

    public static TheoryData<string, FrontEndKind> Runs => Conformance.Runs(Scenarios.Keys);
    public static TheoryData<string> Names => new(Scenarios.Keys);

    [Theory, MemberData(nameof(Runs))]
    public Task Run(string scenario, FrontEndKind kind) => RunAsync(kind, Scenarios[scenario], Spec);

    [Theory, MemberData(nameof(Names))]
    public Task Parity(string scenario) => ParityAsync(Scenarios[scenario], Spec);

    [Theory, MemberData(nameof(Kinds))]
    public Task SeparateMetadataBuffer(FrontEndKind kind) => RunAsync(kind, SeparateMetadata, Spec);

    public static TheoryData<FrontEndKind> Kinds => new(Conformance.Kinds);

    private const byte Pract = ProtectionFields.PractBit, CheckAll = ProtectionFields.CheckMask;
    private const ushort App = 0xBEEF;

    private static MetadataFormat FormatOf(NamespaceOptions o) =>
        new(o.MetadataSize, o.MetadataExtended, o.PiType, o.PiFirst, o.Pif);

    /// <summary>A Read, Write, Compare, Zone Append, Write Zeroes or Verify with its protection fields.</summary>
    private static SubmissionQueueEntry Io(byte opcode, uint nsid, ulong slba, int blocks, byte prinfo, ulong reftag,
        ushort app = App, ushort mask = 0xFFFF, bool remap = false)
    {
        SubmissionQueueEntry sqe = Sqe.ReadWrite(opcode, nsid, slba, (uint)blocks, (uint)prinfo << 26 | (remap ? 1u << 25 : 0));
        sqe.SetCdw(14, (uint)reftag);
        sqe.SetCdw(3, (uint)(reftag >> 32) & 0xFFFF);
        sqe.SetCdw(15, app | (uint)mask << 16);
        return sqe;
    }

    private static byte[] Interleave(MetadataFormat f, byte[] data, byte[] metadata)
    {
        int blocks = data.Length / 512;
        var host = new byte[data.Length + metadata.Length];
        for (int b = 0; b < blocks; b++)
        {
            data.AsSpan(b * 512, 512).CopyTo(host.AsSpan(b * (512 + f.MetadataSize)));
            metadata.AsSpan(b * f.MetadataSize, f.MetadataSize).CopyTo(host.AsSpan(b * (512 + f.MetadataSize) + 512));
        }
        return host;
    }

    private static (byte[] Data, byte[] Metadata) Split(MetadataFormat f, byte[] host)
    {
        int blocks = host.Length / (512 + f.MetadataSize);
        var data = new byte[blocks * 512];
        var metadata = new byte[blocks * f.MetadataSize];
        for (int b = 0; b < blocks; b++)
        {
            host.AsSpan(b * (512 + f.MetadataSize), 512).CopyTo(data.AsSpan(b * 512));
            host.AsSpan(b * (512 + f.MetadataSize) + 512, f.MetadataSize).CopyTo(metadata.AsSpan(b * f.MetadataSize));
        }
        return (data, metadata);
    }

    /// <summary>Host-generated metadata: random bytes with the PI tuple of each block for reference tags from <paramref name="reftag"/>.</summary>
    private static byte[] HostMetadata(MetadataFormat f, byte[] data, ulong reftag, int seed, ushort app = App)
    {
        byte[] md = Pattern(data.Length / 512 * f.MetadataSize, seed);
        ProtectionInformation.Generate(f, 512, data, md, app, reftag);
        return md;
    }

    private static ulong ReferenceTag(MetadataFormat f, byte[] metadata, int block) =>
        ProtectionInformation.ReadTuple(f, metadata.AsSpan(block * f.MetadataSize + f.PiOffset, f.PiSize)).ReferenceTag;

    private static async Task EveryPiFormat(FrontEnd fe)
    {
        foreach (var (nsid, options) in PiFormats.Where(p => p.Options.MetadataExtended))
        {
            MetadataFormat f = FormatOf(options);
            int ms = f.MetadataSize;
            bool strips = ms == f.PiSize;
            string what = $"{fe.Kind} NSID {nsid} (pi={f.PiType} pif={f.Pif} pil={(f.PiFirst ? 1 : 0)} ms={ms})";

            // PRACT: the controller generates the PI; metadata beyond it still comes from the host.
            byte[] data = Pattern(2 * 512, (int)nsid);
            byte[] extra = Pattern(2 * ms, (int)nsid + 100);
            Ok(await fe.IoAsync(Io(IoOpcode.Write, nsid, 0, 2, Pract | CheckAll, 0), strips ? data : Interleave(f, data, extra)));
            Completion read = await fe.IoAsync(Io(IoOpcode.Read, nsid, 0, 2, CheckAll, 0), dataInLength: 2 * (512 + ms));
            Ok(read);
            var (back, md) = Split(f, read.Data);
            AssertData(data, back, what);
            for (int b = 0; b < 2; b++)
            {
                var (guard, app, reference) = ProtectionInformation.ReadTuple(f, md.AsSpan(b * ms + f.PiOffset, f.PiSize));
                Assert.Equal(ProtectionInformation.Guard(f, data.AsSpan(b * 512, 512), md.AsSpan(b * ms, ms)), guard);
                Assert.Equal((App, f.PiType == 3 ? 0UL : (ulong)b), (app, reference));
                if (f.PiFirst)
                {
                    Assert.True(md.AsSpan(b * ms + f.PiSize, ms - f.PiSize).SequenceEqual(extra.AsSpan(b * ms + f.PiSize, ms - f.PiSize)), $"{what}: metadata after the PI");
                }
            }
            // PRACT on a read strips metadata that is only the PI.
            Completion stripped = await fe.IoAsync(Io(IoOpcode.Read, nsid, 0, 2, Pract | CheckAll, 0), dataInLength: strips ? 1024 : 2 * (512 + ms));
            Ok(stripped);
            AssertData(strips ? data : read.Data, stripped.Data, what);

            // Each check's error on a write at the write pointer (LBA 2); none moves it.
            byte[] one = Pattern(512, (int)nsid + 7);
            byte[] good = HostMetadata(f, one, 2, 3);
            byte[] bad = (byte[])one.Clone();
            bad[100] ^= 0x10;
            Fails(await fe.IoAsync(Io(IoOpcode.Write, nsid, 2, 1, ProtectionFields.CheckGuard, 2), Interleave(f, bad, good)), NvmeStatus.EndToEndGuardCheckError, dnr: false);
            Fails(await fe.IoAsync(Io(IoOpcode.Write, nsid, 2, 1, ProtectionFields.CheckApplicationTag, 2, app: 0xCAFE), Interleave(f, one, good)), NvmeStatus.EndToEndApplicationTagCheckError, dnr: false);
            if (f.PiType == 1)
            {
                // Type 1: ILBRT must be the LBA's low bits.
                Fails(await fe.IoAsync(Io(IoOpcode.Write, nsid, 2, 1, ProtectionFields.CheckReferenceTag, 3), Interleave(f, one, good)), NvmeStatus.InvalidProtectionInformation);
                Fails(await fe.IoAsync(Io(IoOpcode.Write, nsid, 2, 1, ProtectionFields.CheckReferenceTag, 2), Interleave(f, one, HostMetadata(f, one, 9, 3))), NvmeStatus.EndToEndReferenceTagCheckError, dnr: false);
            }
            else
            {
                Fails(await fe.IoAsync(Io(IoOpcode.Write, nsid, 2, 1, ProtectionFields.CheckReferenceTag, 9), Interleave(f, one, good)), NvmeStatus.EndToEndReferenceTagCheckError, dnr: false);
            }
            // A mask of 0 checks no application tag bit.
            Ok(await fe.IoAsync(Io(IoOpcode.Write, nsid, 2, 1, CheckAll, 2, app: 0xCAFE, mask: 0), Interleave(f, one, good)));
            Assert.Equal(3UL, (await PiZoneAsync(fe, nsid, 0)).WritePointer);

            // Write Zeroes: PRACT generates the PI of zero blocks; a PRCHK bit is refused.
            Fails(await fe.IoAsync(Io(IoOpcode.WriteZeroes, nsid, 3, 1, ProtectionFields.CheckGuard, 3)), NvmeStatus.InvalidProtectionInformation);
            Ok(await fe.IoAsync(Io(IoOpcode.WriteZeroes, nsid, 3, 1, Pract, 3)));
            Completion zeros = await fe.IoAsync(Io(IoOpcode.Read, nsid, 3, 1, CheckAll, 3), dataInLength: 512 + ms);
            Ok(zeros);
            Assert.True(zeros.Data.AsSpan(0, 512).IndexOfAnyExcept((byte)0) < 0, $"{what}: Write Zeroes data");

            // Compare checks the stored PI, then compares; Verify checks it over the whole run.
            Ok(await fe.IoAsync(Io(IoOpcode.Compare, nsid, 0, 2, CheckAll, 0), read.Data));
            byte[] differs = (byte[])read.Data.Clone();
            differs[3] ^= 1;
            Fails(await fe.IoAsync(Io(IoOpcode.Compare, nsid, 0, 2, CheckAll, 0), differs), NvmeStatus.CompareFailure);
            // Type 3 keeps each block's reference tag as written (0, 0, 2, 3 here): only the guard is verified.
            byte verifyChecks = f.PiType == 3 ? ProtectionFields.CheckGuard : (byte)(ProtectionFields.CheckGuard | ProtectionFields.CheckReferenceTag);
            Ok(await fe.IoAsync(Io(IoOpcode.Verify, nsid, 0, 4, verifyChecks, 0)));
            Fails(await fe.IoAsync(Io(IoOpcode.Verify, nsid, 0, 4, ProtectionFields.CheckApplicationTag, 0, app: 0x1111)), NvmeStatus.EndToEndApplicationTagCheckError, dnr: false);

            // Unwritten blocks read with an all-ones PI, which no check looks at.
            Completion unwritten = await fe.IoAsync(Io(IoOpcode.Read, nsid, 10, 1, CheckAll, 10), dataInLength: 512 + ms);
            Ok(unwritten);
            Assert.True(unwritten.Data.AsSpan(512 + f.PiOffset, f.PiSize).IndexOfAnyExcept((byte)0xFF) < 0, $"{what}: unwritten PI");

            // Zone Append: Type 1 needs PIREMAP, Type 3 refuses it; with it the stored reference tags follow the LBA.
            ulong zone1 = PiZoneLbas;
            byte[] appended = Pattern(2 * 512, (int)nsid + 11);
            if (f.PiType == 1)
            {
                Fails(await fe.IoAsync(Io(IoOpcode.ZoneAppend, nsid, zone1, 2, Pract, zone1), strips ? appended : Interleave(f, appended, extra)), NvmeStatus.InvalidProtectionInformation);
            }
            if (f.PiType == 3)
            {
                Fails(await fe.IoAsync(Io(IoOpcode.ZoneAppend, nsid, zone1, 2, Pract, zone1, remap: true), strips ? appended : Interleave(f, appended, extra)), NvmeStatus.InvalidProtectionInformation);
            }
            bool remap = f.PiType != 3;
            Completion first = await fe.IoAsync(Io(IoOpcode.ZoneAppend, nsid, zone1, 2, Pract | CheckAll, zone1, remap: remap), strips ? appended : Interleave(f, appended, extra));
            Ok(first);
            // The host's PI names the zone start (as Linux writes it); the blocks land two further.
            Completion second = await fe.IoAsync(Io(IoOpcode.ZoneAppend, nsid, zone1, 2, CheckAll, zone1, remap: remap), Interleave(f, appended, HostMetadata(f, appended, zone1, 5)));
            Ok(second);
            Assert.Equal((zone1, zone1 + 2), (first.Result, second.Result));
            Completion all = await fe.IoAsync(Io(IoOpcode.Read, nsid, zone1, 4, CheckAll, zone1), dataInLength: 4 * (512 + ms));
            Ok(all);
            var (_, appendedMd) = Split(f, all.Data);
            for (int b = 0; b < 4; b++)
            {
                Assert.Equal(f.PiType == 3 ? zone1 : zone1 + (ulong)b, ReferenceTag(f, appendedMd, b));
            }
        }
    }

    private static async Task<(ZoneState State, ulong WritePointer)> PiZoneAsync(FrontEnd fe, uint nsid, uint zone)
    {
        Completion c = await fe.IoAsync(Sqe.ZoneReceive(nsid, zone * PiZoneLbas, 128, partial: true), dataInLength: 128);
        Ok(c);
        return ((ZoneState)(c.Data[65] >> 4), BinaryPrimitives.ReadUInt64LittleEndian(c.Data.AsSpan(64 + 24)));
    }

    private static async Task IdentifyReportsTheFormats(FrontEnd fe)
    {
        foreach (var (nsid, options) in PiFormats.Where(p => p.Options.MetadataExtended))
        {
            MetadataFormat f = FormatOf(options);
            Completion id = await fe.AdminAsync(Sqe.Identify(IdentifyCns.Namespace, nsid), dataInLength: 4096);
            Ok(id);
            byte[] d = id.Data;
            Assert.Equal(ms(f), BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan(IdentifyNamespaceLayout.Lbaf0)));
            Assert.Equal(9, d[IdentifyNamespaceLayout.Lbaf0 + 2]);
            Assert.Equal(IdentifyNamespaceLayout.FlbasExtended, d[IdentifyNamespaceLayout.Flbas]);
            Assert.Equal(IdentifyNamespaceLayout.DpcAll, d[IdentifyNamespaceLayout.Dpc]);
            Assert.Equal(f.PiType | (f.PiFirst ? 8 : 0), d[IdentifyNamespaceLayout.Dps]);
            Completion nvm = await fe.AdminAsync(Sqe.Identify(IdentifyCns.IoCommandSetNamespace, nsid, Csi.Nvm), dataInLength: 4096);
            Ok(nvm);
            Assert.Equal((uint)f.Pif << 7, BinaryPrimitives.ReadUInt32LittleEndian(nvm.Data.AsSpan(IdentifyNvmNamespaceLayout.Elbaf0)));
        }

        static ushort ms(MetadataFormat f) => (ushort)f.MetadataSize;
    }

    /// <summary>The media-error fault of PI: a damaged guard or reference tag fails the host's next checking read.</summary>
    private static async Task CorruptedTagsFailTheChecks(FrontEnd fe)
    {
        foreach (uint nsid in new uint[] { 10, 12 })
        {
            ZonedNamespace ns = fe.Host.Namespaces.Single(n => n.Options.Nsid == nsid);
            int ms = ns.Geometry.Metadata.MetadataSize;
            Ok(await fe.IoAsync(Io(IoOpcode.Write, nsid, 0, 2, Pract | CheckAll, 0), Pattern(2 * 512, 3)));
            Assert.Equal(1, ns.CorruptProtectionInformation(0, 1, PiCorruption.Guard));
            Assert.Equal(1, ns.CorruptProtectionInformation(1, 3, PiCorruption.ReferenceTag));
            Fails(await fe.IoAsync(Io(IoOpcode.Read, nsid, 0, 1, Pract | CheckAll, 0), dataInLength: 512), NvmeStatus.EndToEndGuardCheckError, dnr: false);
            Ok(await fe.IoAsync(Io(IoOpcode.Read, nsid, 1, 1, Pract | ProtectionFields.CheckGuard, 1), dataInLength: 512));
            Fails(await fe.IoAsync(Io(IoOpcode.Read, nsid, 1, 1, Pract | CheckAll, 1), dataInLength: 512), NvmeStatus.EndToEndReferenceTagCheckError, dnr: false);
            // Without checks the data still reads.
            Ok(await fe.IoAsync(Io(IoOpcode.Read, nsid, 0, 2, 0, 0), dataInLength: 2 * (512 + ms)));
        }
    }

    /// <summary>
    /// Separate metadata (MPTR) over PCIe: generated, checked and returned beside the data. A fabric has no MPTR, so
    /// it does not attach the namespace: not in the active list, Invalid Namespace for its I/O.
    /// </summary>
    private static async Task SeparateMetadata(FrontEnd fe)
    {
        const uint nsid = SeparateMetadataNsid;
        MetadataFormat f = FormatOf(PiFormats.Single(p => p.Nsid == nsid).Options);
        // A 64-bit guard namespace is served: CTRATT.ELBAS sends the host to ELBAF (controller data differs per transport).
        Completion ctrl = await fe.AdminAsync(Sqe.Identify(IdentifyCns.Controller, 0), dataInLength: 4096);
        Ok(ctrl);
        Assert.Equal(IdentifyControllerLayout.CtrattExtendedLbaFormats, BinaryPrimitives.ReadUInt32LittleEndian(ctrl.Data.AsSpan(IdentifyControllerLayout.Ctratt)));
        Completion list = await fe.AdminAsync(Sqe.Identify(IdentifyCns.ActiveNamespaceList, 0), dataInLength: 4096);
        Ok(list);
        bool listed = Enumerable.Range(0, 1024).Any(i => BinaryPrimitives.ReadUInt32LittleEndian(list.Data.AsSpan(i * 4)) == nsid);
        byte[] data = Pattern(2 * 512, 77);
        byte[] md = HostMetadata(f, data, 0, 78);
        if (fe.Kind != FrontEndKind.Pcie)
        {
            Assert.False(listed, $"{fe.Kind}: a namespace with a separate metadata buffer is not attached over a fabric");
            Fails(await fe.IoAsync(Io(IoOpcode.Write, nsid, 0, 2, Pract, 0), data), NvmeStatus.InvalidNamespace);
            return;
        }
        Assert.True(listed);
        Ok(await fe.IoAsync(Io(IoOpcode.Write, nsid, 0, 2, CheckAll, 0), [.. data, .. md], metadataLength: md.Length));
        Completion read = await fe.IoAsync(Io(IoOpcode.Read, nsid, 0, 2, CheckAll, 0), dataInLength: data.Length + md.Length, metadataLength: md.Length);
        Ok(read);
        AssertData([.. data, .. md], read.Data, "data then separate metadata");
        // PRACT: no metadata moves (it is only the PI); the stored tuple is the controller's.
        Ok(await fe.IoAsync(Io(IoOpcode.Write, nsid, 2, 1, Pract | CheckAll, 2), data[..512]));
        Completion stripped = await fe.IoAsync(Io(IoOpcode.Read, nsid, 0, 3, Pract | CheckAll, 0), dataInLength: 3 * 512);
        Ok(stripped);
        AssertData([.. data, .. data[..512]], stripped.Data, "stripped read");
        Fails(await fe.IoAsync(Io(IoOpcode.Write, nsid, 3, 2, CheckAll, 3), [.. data, .. HostMetadata(f, data, 3, 1).Select((b, i) => i == 1 ? (byte)(b ^ 1) : b)], metadataLength: md.Length),
            NvmeStatus.EndToEndGuardCheckError, dnr: false);
    }
}
