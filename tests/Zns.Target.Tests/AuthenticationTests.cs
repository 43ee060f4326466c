// Every wait in these tests is bounded by an explicit timeout, so test cancellation tokens add nothing.
#pragma warning disable xUnit1051

using Zns.Nvme;
using Zns.Target.Controller;
using Zns.Target.Fabrics.Auth;
using Zns.Nvme.Layouts;
using Zns.TestKit;
using static Zns.Target.Tests.ZnsLoopback;

namespace Zns.Target.Tests;

/// <summary>DH-HMAC-CHAP over loopback with the test host (<see cref="DhchapHost"/>) on the other side.</summary>
public sealed class AuthenticationTests
{
    // Keys as `nvme gen-dhchap-key` prints them: a plain 32-byte secret, and a 48-byte one transformed with SHA-384.
    private static readonly string HostKey = DhchapKey.FromSecret(Enumerable.Range(0, 32).Select(i => (byte)i).ToArray(), 1).Encode();
    private static readonly string CtrlKey = DhchapKey.FromSecret(Enumerable.Range(100, 48).Select(i => (byte)i).ToArray(), 2).Encode();
    private static readonly string OtherKey = DhchapKey.FromSecret(Enumerable.Range(7, 32).Select(i => (byte)i).ToArray(), 0).Encode();

    private static TargetOptions Options(HostAuthentication? a = null, TimeSpan? timeout = null, int maxFailures = 10) => new()
    {
        AllowedHostNqns = [HostA, HostB],
        HostAuthentication = new Dictionary<string, HostAuthentication>
        {
            [HostA] = a ?? new HostAuthentication { HostKey = DhchapKey.Parse(HostKey), ControllerKey = DhchapKey.Parse(CtrlKey) },
        },
        AuthenticationTimeout = timeout ?? TimeSpan.FromSeconds(10),
        MaxAuthenticationFailures = maxFailures,
    };

    private static async Task<NvmeTcpInitiator> ConnectAdminAsync(ZnsLoopback env, string host, bool expectAuth)
    {
        var admin = await NvmeTcpInitiator.ConnectAsync(env.EndPoint);
        var cqe = await admin.ConnectAdminQueueAsync(env.Nqn, host, HostIdOf(host));
        Assert.True(cqe.Status.IsSuccess, cqe.Status.ToString());
        // Connect response DW0 AUTHREQ: ATR (bit 17, as Linux reads it) set exactly for hosts with a key; ASCR (bit 18) never.
        Assert.Equal(expectAuth ? 0b010UL : 0UL, (cqe.Result >> 16) & 7);
        return admin;
    }

    [Theory]
    [InlineData(new byte[] { 1 }, new byte[] { 0 })]
    [InlineData(new byte[] { 2 }, new byte[] { 1 })]
    [InlineData(new byte[] { 3 }, new byte[] { 2 })]
    public async Task RightKey_Authenticates_AdminAndIoQueues(byte[] hashes, byte[] groups)
    {
        await using var env = Start(Options(new HostAuthentication { HostKey = DhchapKey.Parse(HostKey), Hashes = hashes, DhGroups = groups }));
        await using var admin = await ConnectAdminAsync(env, HostA, expectAuth: true);
        // Nothing but authentication runs before it: Property Get is refused with Authentication Required.
        Assert.Equal(NvmeStatus.AuthenticationRequired.WithDnr(), (await admin.PropertyGetAsync(ControllerProperties.Cap, true)).Status);
        var result = await DhchapHost.AuthenticateAsync(admin, HostA, env.Nqn, new DhchapHostOptions { HostKey = HostKey });
        Assert.True(result.Succeeded, result.Detail);
        Assert.Equal(hashes[0], result.HashId);
        Assert.Equal(groups[0], result.DhGroupId);
        Assert.True((await admin.PropertySetAsync(ControllerProperties.Cc, 0x00460061)).Status.IsSuccess);

        // The I/O queue of an authenticated controller needs its own authentication.
        await using var io = await NvmeTcpInitiator.ConnectAsync(env.EndPoint);
        var c = await io.ConnectIoQueueAsync(1, admin.ControllerId, env.Nqn, HostA, HostIdOf(HostA));
        Assert.True(c.Status.IsSuccess);
        Assert.Equal(0b010UL, (c.Result >> 16) & 7);
        Assert.Equal(NvmeStatus.AuthenticationRequired.WithDnr(), (await io.ReadAsync(1, 0, 1, new byte[BlockSize])).Status);
        result = await DhchapHost.AuthenticateAsync(io, HostA, env.Nqn, new DhchapHostOptions { HostKey = HostKey, TransactionId = 7 });
        Assert.True(result.Succeeded, result.Detail);
        Assert.True((await io.ReadAsync(1, 0, 1, new byte[BlockSize])).Status.IsSuccess);
    }

    [Fact]
    public async Task Bidirectional_ControllerProvesItsKey_AndReauthenticationWorks()
    {
        await using var env = Start(Options());
        await using var admin = await ConnectAdminAsync(env, HostA, expectAuth: true);
        var opts = new DhchapHostOptions { HostKey = HostKey, ControllerKey = CtrlKey, Hashes = [3, 1], DhGroups = [2, 0] };
        var result = await DhchapHost.AuthenticateAsync(admin, HostA, env.Nqn, opts);
        Assert.True(result.Succeeded, result.Detail);
        Assert.Equal("authenticated both ways", result.Detail);
        Assert.Equal(DhchapHash.Sha256, result.HashId); // the first of the target's list that the host offers
        Assert.Equal(DhGroup.Ffdhe3072, result.DhGroupId);
        // Re-authentication on the live queue: a new transaction, and the queue keeps working.
        result = await DhchapHost.AuthenticateAsync(admin, HostA, env.Nqn, opts with { TransactionId = 2 });
        Assert.True(result.Succeeded, result.Detail);
        Assert.True((await admin.PropertyGetAsync(ControllerProperties.Cap, true)).Status.IsSuccess);

        // A host holding the wrong controller key rejects the controller with AUTH_Failure2; the queue is dropped.
        await using var doubter = await ConnectAdminAsync(env, HostA, expectAuth: true);
        result = await DhchapHost.AuthenticateAsync(doubter, HostA, env.Nqn, opts with { ControllerKey = OtherKey });
        Assert.False(result.Succeeded);
        Assert.Equal("controller response mismatch", result.Detail);
        await doubter.Closed.WaitAsync(ZnsLoopback.Timeout);
    }

    [Fact]
    public async Task WrongKey_GetsFailure1_AndTheQueueIsDisconnected()
    {
        await using var env = Start(Options());
        await using var admin = await ConnectAdminAsync(env, HostA, expectAuth: true);
        var result = await DhchapHost.AuthenticateAsync(admin, HostA, env.Nqn, new DhchapHostOptions { HostKey = OtherKey });
        Assert.False(result.Succeeded);
        Assert.Equal((byte)AuthFailureReason.Failed, result.FailureExplanation);
        await admin.Closed.WaitAsync(ZnsLoopback.Timeout);
        await ControllerGoneAsync(env);
    }

    [Fact]
    public async Task HostThatIgnoresAuthentication_CannotUseTheController()
    {
        await using var env = Start(Options());
        await using var admin = await ConnectAdminAsync(env, HostA, expectAuth: true);
        Assert.Equal(NvmeStatus.AuthenticationRequired.WithDnr(), (await admin.PropertySetAsync(ControllerProperties.Cc, 0x00460061)).Status);
        Assert.Equal(NvmeStatus.AuthenticationRequired.WithDnr(), (await admin.KeepAliveAsync()).Status);
        // An I/O queue cannot be joined either (the controller was never enabled).
        await using var io = await NvmeTcpInitiator.ConnectAsync(env.EndPoint);
        var c = await io.ConnectIoQueueAsync(1, admin.ControllerId, env.Nqn, HostA, HostIdOf(HostA));
        Assert.False(c.Status.IsSuccess);
        // A host without a key is still served without authentication (ATR clear); an unknown host is refused.
        await using (var plain = await ConnectAdminAsync(env, HostB, expectAuth: false))
            Assert.True((await plain.PropertyGetAsync(ControllerProperties.Cap, true)).Status.IsSuccess);
        await using var stranger = await NvmeTcpInitiator.ConnectAsync(env.EndPoint);
        Assert.Equal(NvmeStatus.ConnectInvalidHost.WithDnr(), (await stranger.ConnectAdminQueueAsync(env.Nqn, HostC, HostIdOf(HostC))).Status);
    }

    [Fact]
    public async Task MalformedAndOutOfOrderMessages_AreRefused()
    {
        await using var env = Start(Options());
        await using var admin = await ConnectAdminAsync(env, HostA, expectAuth: true);
        // Command fields: SECP must be E9h, SPSP 01h/01h, TL non-zero and equal to the data length.
        Assert.Equal(NvmeStatus.InvalidField.WithDnr(), (await DhchapHost.SendAsync(admin, new byte[72], cdw10: 0xEA010100)).Status);
        Assert.Equal(NvmeStatus.InvalidField.WithDnr(), (await DhchapHost.SendAsync(admin, new byte[72], cdw10: 0xE9010200)).Status);
        Assert.Equal(NvmeStatus.InvalidField.WithDnr(), (await DhchapHost.ReceiveAsync(admin, new byte[16], cdw10: 0xE9000100)).Status);
        Assert.Equal(NvmeStatus.DataSglLengthInvalid.WithDnr(), (await DhchapHost.SendAsync(admin, new byte[72], transferLength: 64)).Status);
        // A reply before any negotiation (replayed or out of order): AUTH_Failure1 "incorrect protocol message".
        byte[] reply = new byte[16 + 64];
        reply[0] = 1; reply[1] = 2; reply[6] = 32;
        Assert.True((await DhchapHost.SendAsync(admin, reply)).Status.IsSuccess);
        byte[] answer = new byte[64];
        Assert.True((await DhchapHost.ReceiveAsync(admin, answer)).Status.IsSuccess);
        Assert.Equal(0x00, answer[0]);
        Assert.Equal(AuthProtocol.Failure1, answer[1]);
        Assert.Equal(AuthProtocol.ReasonFailed, answer[6]);
        Assert.Equal((byte)AuthFailureReason.IncorrectProtocolMessage, answer[7]);
        Assert.All(answer[8..], b => Assert.Equal(0, b)); // the rest of AL is zero
        await admin.Closed.WaitAsync(ZnsLoopback.Timeout);

        // A negotiate asking for a secure channel (no TLS here) and one offering no usable hash.
        foreach ((byte scC, byte hash, AuthFailureReason why) in new[] { ((byte)1, (byte)1, AuthFailureReason.SecureChannelMismatch), ((byte)0, (byte)9, AuthFailureReason.HashUnusable) })
        {
            await using var a = await ConnectAdminAsync(env, HostA, expectAuth: true);
            byte[] negotiate = new byte[72];
            NegotiateMessage.Write(negotiate, 1, scC, [hash], [0]);
            Assert.True((await DhchapHost.SendAsync(a, negotiate)).Status.IsSuccess);
            Assert.True((await DhchapHost.ReceiveAsync(a, answer)).Status.IsSuccess);
            Assert.Equal(AuthProtocol.Failure1, answer[1]);
            Assert.Equal((byte)why, answer[7]);
        }
    }

    [Fact]
    public async Task HostThatStopsMidExchange_IsDisconnectedAfterTheTimeout()
    {
        await using var env = Start(Options(timeout: TimeSpan.FromMilliseconds(700)));
        await using var admin = await ConnectAdminAsync(env, HostA, expectAuth: true);
        byte[] negotiate = new byte[72];
        NegotiateMessage.Write(negotiate, 1, 0, [1], [0]);
        Assert.True((await DhchapHost.SendAsync(admin, negotiate)).Status.IsSuccess);
        Assert.True((await DhchapHost.ReceiveAsync(admin, new byte[4096])).Status.IsSuccess); // the challenge; no reply follows
        await admin.Closed.WaitAsync(ZnsLoopback.Timeout);
        await ControllerGoneAsync(env);
    }

    [Fact]
    public async Task KeepAliveTimer_StartsWhenTheAdminQueueIsAuthenticated()
    {
        await using var env = Start(Options());
        await using var admin = await NvmeTcpInitiator.ConnectAsync(env.EndPoint);
        var cqe = await admin.ConnectAdminQueueAsync(env.Nqn, HostA, HostIdOf(HostA), keepAliveTimeoutMs: 300);
        Assert.True(cqe.Status.IsSuccess);
        await Task.Delay(900); // a slow host: longer than KATO before its first authentication message
        var result = await DhchapHost.AuthenticateAsync(admin, HostA, env.Nqn, new DhchapHostOptions { HostKey = HostKey, DhGroups = [0] });
        Assert.True(result.Succeeded, result.Detail);
        // From now on KATO applies: a host that then sends nothing loses the controller.
        await admin.Closed.WaitAsync(ZnsLoopback.Timeout);
        await ControllerGoneAsync(env);
    }

    [Fact]
    public async Task FailedAttempts_AreRateLimitedPerSourceAddress()
    {
        await using var env = Start(Options(maxFailures: 2));
        for (int i = 0; i < 2; i++)
        {
            await using var admin = await ConnectAdminAsync(env, HostA, expectAuth: true);
            var r = await DhchapHost.AuthenticateAsync(admin, HostA, env.Nqn, new DhchapHostOptions { HostKey = OtherKey, DhGroups = [0] });
            Assert.False(r.Succeeded);
        }
        // The third Connect from 127.0.0.1 is refused before any exchange, even with the right key.
        await using var next = await NvmeTcpInitiator.ConnectAsync(env.EndPoint);
        var cqe = await next.ConnectAdminQueueAsync(env.Nqn, HostA, HostIdOf(HostA));
        Assert.Equal(NvmeStatus.ConnectControllerBusy.WithDnr(), cqe.Status);
    }

    /// <summary>The connection closes first; the controller goes when the server has noticed.</summary>
    private static async Task ControllerGoneAsync(ZnsLoopback env)
    {
        var deadline = DateTime.UtcNow + ZnsLoopback.Timeout;
        while (env.Target.Subsystem.ControllerCount != 0 && DateTime.UtcNow < deadline)
            await Task.Delay(20);
        Assert.Equal(0, env.Target.Subsystem.ControllerCount);
    }

    [Fact]
    public void Options_RequireKeyedHostsOnTheAllowList()
    {
        var bad = new TargetOptions
        {
            HostAuthentication = new Dictionary<string, HostAuthentication> { [HostA] = new() { HostKey = DhchapKey.Parse(HostKey) } },
        };
        var e = Assert.Throws<ArgumentException>(bad.Validate);
        Assert.Equal(nameof(TargetOptions.HostAuthentication), e.ParamName);
        var same = Options(new HostAuthentication { HostKey = DhchapKey.Parse(HostKey), ControllerKey = DhchapKey.Parse(HostKey) });
        Assert.Throws<ArgumentException>(same.Validate);
    }
}
