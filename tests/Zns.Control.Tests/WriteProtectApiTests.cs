using System.Buffers.Binary;
using System.Net;
using System.Text.Json;
using Zns.Nvme;
using Zns.Protocol;
using static Zns.Control.Tests.ControlFixture;

namespace Zns.Control.Tests;

/// <summary><c>PUT /api/namespaces/{nsid}/write-protect</c> seen by a host over NVMe/TCP.</summary>
public sealed class WriteProtectApiTests
{
    private const byte ChangedNamespaceList = 0x04;
    private const uint NamespaceAttributeChangedEvent = 0x0004_0002;
    private const uint NamespaceAttributeNotices = 1u << 8;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static bool WriteProtectedOf(string namespaceJson) => JsonDocument.Parse(namespaceJson).RootElement.GetProperty("writeProtected").GetBoolean();

    private static async Task<byte> NsattrAsync(ControlFixture f)
    {
        var id = new byte[4096];
        Assert.True((await f.Admin.IdentifyAsync(0x00, 1, id, cancellationToken: Ct)).Status.IsSuccess);
        return id[99];
    }

    [Fact]
    public async Task Toggling_RaisesTheNotice_ListsTheNsid_AndFailsWritesUntilLifted()
    {
        await using var f = await StartAsync();
        await f.ConnectAsync();
        Assert.True((await f.Admin.SetFeaturesAsync(0x0B, NamespaceAttributeNotices, Ct)).Status.IsSuccess);
        var aer = f.Admin.SubmitAsync(AdminCommand(AdminOpcode.AsyncEventRequest), cancellationToken: Ct);
        await Task.Delay(100, Ct);
        Assert.False(aer.IsCompleted);
        Assert.False(WriteProtectedOf((await f.OkAsync(HttpMethod.Get, "api/namespaces"))[1..^1]));

        Assert.True(WriteProtectedOf(await f.OkAsync(HttpMethod.Put, "api/namespaces/1/write-protect", """{"enabled":true}""")));
        var done = await aer.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.True(done.Status.IsSuccess);
        Assert.Equal(NamespaceAttributeChangedEvent, (uint)done.Result);
        var page = new byte[4096];
        Assert.True((await f.Admin.SubmitAsync(GetLogPage(ChangedNamespaceList, 4096, 0, 0), readBuffer: page, cancellationToken: Ct)).Status.IsSuccess);
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(page));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(page.AsSpan(4)));
        Assert.Equal(1, await NsattrAsync(f));
        Assert.True(WriteProtectedOf((await f.OkAsync(HttpMethod.Get, "api/namespaces"))[1..^1]));

        var write = await f.Io.WriteAsync(1, 0, 1, Pattern(BlockSize, 3), Ct);
        Assert.Equal(0, write.Status.Sct);
        Assert.Equal(0x20, write.Status.Sc);
        Assert.True(write.Status.Dnr);
        Assert.True((await f.Io.ReadAsync(1, 0, 1, new byte[BlockSize], Ct)).Status.IsSuccess);
        Assert.Equal(0ul, f.Namespace.GetZone(0).WritePointer);
        Assert.Contains("\"namespace_write_protected\":1", await f.OkAsync(HttpMethod.Get, "api/stats"));

        var aer2 = f.Admin.SubmitAsync(AdminCommand(AdminOpcode.AsyncEventRequest), cancellationToken: Ct);
        Assert.False(WriteProtectedOf(await f.OkAsync(HttpMethod.Put, "api/namespaces/1/write-protect", """{"enabled":false}""")));
        Assert.Equal(NamespaceAttributeChangedEvent, (uint)(await aer2.WaitAsync(TimeSpan.FromSeconds(10), Ct)).Result);
        Assert.Equal(0, await NsattrAsync(f));
        Assert.True((await f.Io.WriteAsync(1, 0, 1, Pattern(BlockSize, 3), Ct)).Status.IsSuccess);
        Assert.Equal(1ul, f.Namespace.GetZone(0).WritePointer);
    }

    [Theory]
    [InlineData("api/namespaces/1/write-protect", "{}", HttpStatusCode.BadRequest, "enabled: required")]
    [InlineData("api/namespaces/1/write-protect", """{"enabled":"yes"}""", HttpStatusCode.BadRequest, "enabled: has the wrong type")]
    [InlineData("api/namespaces/1/write-protect", """{"enable":true}""", HttpStatusCode.BadRequest, "enable:")]
    [InlineData("api/namespaces/1/write-protect", "", HttpStatusCode.BadRequest, "body: a JSON object is required")]
    [InlineData("api/namespaces/2/write-protect", """{"enabled":true}""", HttpStatusCode.NotFound, "nsid: '2' is not a namespace")]
    public async Task BadRequests_NameTheField_AndChangeNothing(string path, string json, HttpStatusCode status, string error)
    {
        await using var f = await StartAsync();
        var (code, body) = await f.SendAsync(HttpMethod.Put, path, json);
        Assert.Equal(status, code);
        Assert.StartsWith(error, ErrorOf(body));
        Assert.False(f.Target.Subsystem.IsWriteProtected(1));
    }
}
