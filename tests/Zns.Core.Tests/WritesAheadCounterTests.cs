using Zns.Nvme;
using static Zns.Core.Tests.TestNamespaces;

namespace Zns.Core.Tests;

public sealed class WritesAheadCounterTests
{
    [Fact]
    public void CountsOnlyZoneInvalidWritesAheadOfTheWritePointer()
    {
        using var ns = Ram(Small());
        Assert.True(ns.Write(0, Blocks(2, 1)).IsSuccess);
        // Ahead of the write pointer (2), as a reordered second write would be: counted, twice.
        Assert.Equal(NvmeStatus.ZoneInvalidWrite.WithDnr(), ns.Write(4, Blocks(1, 2)));
        Assert.Equal(NvmeStatus.ZoneInvalidWrite.WithDnr(), ns.Write(3, Blocks(1, 2)));
        // Behind it (a rewrite), another zone's full state, and a success: not counted.
        Assert.Equal(NvmeStatus.ZoneInvalidWrite.WithDnr(), ns.Write(1, Blocks(1, 2)));
        Assert.True(ns.ZoneManagementSend(16, Zones.ZoneSendAction.Finish, false).IsSuccess);
        Assert.Equal(NvmeStatus.ZoneIsFull.WithDnr(), ns.Write(20, Blocks(1, 2)));
        Assert.True(ns.Write(2, Blocks(1, 3)).IsSuccess);
        Assert.Equal(2, ns.WritesAheadOfWritePointer);
    }
}
