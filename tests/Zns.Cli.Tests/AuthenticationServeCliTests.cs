using System.Diagnostics;
using Zns.Nvme;
using Zns.Target.Fabrics.Auth;
using Zns.TestKit;

namespace Zns.Cli.Tests;

/// <summary>
/// DH-HMAC-CHAP through <c>zns serve --allow-host --dhchap-key --dhchap-ctrl-key</c>: the test host authenticates both
/// ways over NVMe/TCP (an RFC 7919 group, so the target's Diffie-Hellman runs) and a wrong key is refused.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class AuthenticationServeCliTests
{
    private const string Nqn = "nqn.2026-01.io.zns:subsys";
    private const string Host = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-0000000000ab";
    private static readonly Guid HostId = Guid.Parse("00000000-0000-4000-8000-0000000000ab");
    private static readonly string HostKey = DhchapKey.FromSecret([.. Enumerable.Range(0, 32).Select(i => (byte)i)], 1).Encode();
    private static readonly string CtrlKey = DhchapKey.FromSecret([.. Enumerable.Range(100, 48).Select(i => (byte)i)], 2).Encode();
    private static readonly string OtherKey = DhchapKey.FromSecret([.. Enumerable.Range(7, 32).Select(i => (byte)i)], 0).Encode();

    [Fact]
    public async Task ServeWithAKey_AuthenticatesTheHostBothWays_AndRefusesAWrongKey()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        using var server = Process.Start(CliRunner.StartInfo(dir.Path, "serve", "ram:64M,zoned.zone_size=8M", "--listen", "127.0.0.1:0",
            "--control", "off", "--allow-host", Host, "--dhchap-key", HostKey, "--dhchap-ctrl-key", CtrlKey, "--dhchap-dhgroup", "ffdhe2048"))!;
        try
        {
            var endPoint = await CliRunner.WaitForListenAsync(server, ct);
            await using var admin = await NvmeTcpInitiator.ConnectAsync(endPoint, cancellationToken: ct);
            var connect = await admin.ConnectAdminQueueAsync(Nqn, Host, HostId, sqSize: 31, cancellationToken: ct);
            Assert.True(connect.Status.IsSuccess, connect.Status.ToString());
            Assert.Equal(0b010UL, (connect.Result >> 16) & 7); // AUTHREQ.ATR
            Assert.Equal(NvmeStatus.AuthenticationRequired.WithDnr(), (await admin.PropertySetAsync(0x14, 0x00460061, cancellationToken: ct)).Status);
            var result = await DhchapHost.AuthenticateAsync(admin, Host, Nqn, new DhchapHostOptions { HostKey = HostKey, ControllerKey = CtrlKey }, ct);
            Assert.True(result.Succeeded, result.Detail);
            Assert.Equal("authenticated both ways", result.Detail);
            Assert.Equal(DhGroup.Ffdhe2048, result.DhGroupId);
            Assert.True((await admin.PropertySetAsync(0x14, 0x00460061, cancellationToken: ct)).Status.IsSuccess);

            await using var io = await NvmeTcpInitiator.ConnectAsync(endPoint, cancellationToken: ct);
            Assert.True((await io.ConnectIoQueueAsync(1, admin.ControllerId, Nqn, Host, HostId, sqSize: 31, ct)).Status.IsSuccess);
            result = await DhchapHost.AuthenticateAsync(io, Host, Nqn, new DhchapHostOptions { HostKey = HostKey, TransactionId = 2 }, ct);
            Assert.True(result.Succeeded, result.Detail);
            Assert.True((await io.WriteAsync(1, 0, 1, new byte[4096], ct)).Status.IsSuccess);

            await using var impostor = await NvmeTcpInitiator.ConnectAsync(endPoint, cancellationToken: ct);
            Assert.True((await impostor.ConnectAdminQueueAsync(Nqn, Host, HostId, sqSize: 31, cancellationToken: ct)).Status.IsSuccess);
            result = await DhchapHost.AuthenticateAsync(impostor, Host, Nqn, new DhchapHostOptions { HostKey = OtherKey }, ct);
            Assert.False(result.Succeeded);
            Assert.Equal((byte)AuthFailureReason.Failed, result.FailureExplanation);
            await impostor.Closed.WaitAsync(TimeSpan.FromSeconds(10), ct);
        }
        finally
        {
            server.Kill();
            await server.WaitForExitAsync(ct);
        }
    }
}
