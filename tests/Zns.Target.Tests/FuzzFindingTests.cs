using Zns.Nvme;
using Zns.Protocol;
using Zns.Target.Controller;
using static Zns.Target.Tests.TestHost;

namespace Zns.Target.Tests;

/// <summary>Regression tests for what the fuzz targets found (the inputs are also in fuzz/corpus).</summary>
public sealed class FuzzFindingTests
{
    /// <summary>
    /// command-dispatch crash: a KATO of FFFFFFFFh ms (Set Features 0Fh or Connect) threw from the timer API, which
    /// takes at most 2^32 - 2 ms. It is a legal value (about 49.7 days) and must simply be accepted.
    /// </summary>
    [Fact]
    public void LargestKeepAliveTimeout_IsAccepted()
    {
        using var host = new TestHost();
        var (admin, _, _) = host.ConnectAdmin(katoMs: uint.MaxValue);
        Enable(admin);
        Ok(Run(admin, Sqe.SetFeatures(FeatureId.KeepAliveTimer, uint.MaxValue)));
        Assert.Equal((ulong)uint.MaxValue, Run(admin, Sqe.GetFeatures(FeatureId.KeepAliveTimer)).Result);
        Ok(Run(admin, Sqe.Create(AdminOpcode.KeepAlive)));
        Ok(Run(admin, Sqe.SetFeatures(FeatureId.KeepAliveTimer, 5000)));
    }
}
