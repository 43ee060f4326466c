using System.Buffers.Binary;
using Zns.Target.Nvme.Wire;
using Zns.Target.Transport;
using static Zns.Target.Tests.ZnsLoopback;

namespace Zns.Target.Tests;

/// <summary>IOCCSZ in Identify Controller comes from what the NVMe/TCP transport really accepts in-capsule.</summary>
public sealed class InCapsuleSizeTests
{
    [Theory]
    [InlineData(8192, 516)]
    [InlineData(16384, 1028)]
    public async Task Ioccsz_FollowsTheTransportsInCapsuleLimit(int inCapsule, uint ioccsz)
    {
        await using var env = Start(transport: new TargetTransportOptions { MaxInCapsuleDataLength = inCapsule });
        await using var host = await env.ConnectHostAsync();
        var id = new byte[4096];
        Assert.True((await host.Admin.IdentifyAsync(IdentifyCns.Controller, 0, id, cancellationToken: TestContext.Current.CancellationToken)).Status.IsSuccess);
        Assert.Equal(ioccsz, BinaryPrimitives.ReadUInt32LittleEndian(id.AsSpan(1792)));
    }
}
