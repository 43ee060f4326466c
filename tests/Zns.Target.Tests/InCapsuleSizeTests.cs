using System.Buffers.Binary;
using Zns.Nvme;
using Zns.Protocol;
using Zns.Nvme.Layouts;
using Zns.Target.Tcp;
using Zns.TestKit;
using static Zns.Target.Tests.ZnsLoopback;

namespace Zns.Target.Tests;

/// <summary>IOCCSZ in Identify Controller comes from what the NVMe/TCP transport really accepts in-capsule.</summary>
public sealed class InCapsuleSizeTests
{
    [Theory]
    [InlineData(8192, 516)]
    [InlineData(16384, 1028)]
    [InlineData(128 * 1024, 8196)]
    public async Task Ioccsz_FollowsTheTransportsInCapsuleLimit(int inCapsule, uint ioccsz)
    {
        await using var env = Start(transport: new TargetTransportOptions { MaxInCapsuleDataLength = inCapsule });
        await using var host = await env.ConnectHostAsync();
        var id = new byte[4096];
        Assert.True((await host.Admin.IdentifyAsync(IdentifyCns.Controller, 0, id, cancellationToken: TestContext.Current.CancellationToken)).Status.IsSuccess);
        Assert.Equal(ioccsz, BinaryPrimitives.ReadUInt32LittleEndian(id.AsSpan(1792)));
    }

    /// <summary>
    /// Writes of the default in-capsule limit travel with their command (no R2T) and land whole, whether the target
    /// receives them in one buffer or across several; a batch of them sent at once all complete with their data.
    /// </summary>
    [Fact]
    public async Task WritesOfTheDefaultInCapsuleLimit_NeedNoR2T_AndLandWhole()
    {
        int length = new TargetTransportOptions().MaxInCapsuleDataLength;
        await using var target = new LoopbackTarget();
        await using var raw = await RawNvmeTcpConnection.ConnectAsync(target.EndPoint, TestContext.Current.CancellationToken);
        await raw.HandshakeAsync();
        for (int round = 0; round < 2; round++)
        {
            // One write alone, then eight sent together.
            int count = round == 0 ? 1 : 8;
            for (int i = 0; i < count; i++)
            {
                var sqe = LoopbackTarget.Command(IoOpcode.Write, (ulong)i * (ulong)length);
                sqe.SetFlags(NvmeTcp.SqeFlagsSgl);
                sqe.SetCommandId((ushort)(100 * round + i));
                sqe.SetSgl(0, (uint)length, NvmeTcp.SglInCapsuleData);
                await raw.SendAsync(Capsule(sqe, LoopbackTarget.Pattern(length, 100 * round + i)), TestContext.Current.CancellationToken);
            }
            for (int i = 0; i < count; i++)
            {
                var pdu = (await raw.ReceivePduAsync(ZnsLoopback.Timeout))!.Value.Pdu;
                Assert.Equal(PduType.CapsuleResp, pdu.Type);
                Assert.True(pdu.Response.Status.IsSuccess, pdu.Response.Status.ToString());
            }
            for (int i = 0; i < count; i++)
                Assert.Equal(LoopbackTarget.Pattern(length, 100 * round + i), target.Factory.Storage.AsSpan(i * length, length).ToArray());
        }
    }
}
