namespace Zns.Cli.Tests;

/// <summary><c>zns serve</c> DH-HMAC-CHAP options: every bad value is refused with exit code 2, naming the field.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class AuthenticationCliTests
{
    private const string Host = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-0000000000aa";
    private const string Key = "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:";

    [Theory]
    [InlineData(new[] { "--dhchap-key", Key }, "--dhchap-key: must follow the --allow-host")]
    [InlineData(new[] { "--allow-host", Host, "--dhchap-key", "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaS:" }, "--dhchap-key: CRC-32")]
    [InlineData(new[] { "--allow-host", Host, "--dhchap-key", "secret" }, "--dhchap-key: not a DH-HMAC-CHAP key")]
    [InlineData(new[] { "--allow-host", Host, "--dhchap-ctrl-key", Key }, "has DH-HMAC-CHAP settings but no --dhchap-key")]
    [InlineData(new[] { "--allow-host", Host, "--dhchap-key", Key, "--dhchap-hash", "md5" }, "--dhchap-hash: 'md5' is not one of")]
    [InlineData(new[] { "--allow-host", Host, "--dhchap-key", Key, "--dhchap-dhgroup", "ffdhe1024" }, "--dhchap-dhgroup: 'ffdhe1024' is not one of")]
    [InlineData(new[] { "--allow-host", Host, "--dhchap-key", Key, "--dhchap-ctrl-key", Key }, "--dhchap-ctrl-key: host")]
    public async Task BadAuthenticationOptions_NameTheField_AndExit2(string[] args, string message)
    {
        using var dir = new TempDir();
        var r = await CliRunner.RunAsync(dir.Path, ["serve", "ram:64M,zoned.zone_size=8M", "--listen", "127.0.0.1:0", .. args]);
        Assert.Equal(2, r.Exit);
        Assert.Contains(message, r.Err);
        Assert.DoesNotContain("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh", r.Err); // never echo a secret
    }

    [Fact]
    public async Task KeysFile_ReadableByOthers_IsRefusedNamingIt_AndBadLinesNameTheLine()
    {
        using var dir = new TempDir();
        string file = Path.Combine(dir.Path, "keys");
        File.WriteAllText(file, $"# comment\n{Host} {Key} hash=sha256\n");
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        var r = await CliRunner.RunAsync(dir.Path, "serve", "ram:64M,zoned.zone_size=8M", "--listen", "127.0.0.1:0", "--dhchap-keys", file);
        Assert.Equal(2, r.Exit);
        Assert.Contains($"--dhchap-keys: {file} is accessible by group or others", r.Err);

        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.WriteAllText(file, $"# comment\n{Host} {Key} hash=sha999\n");
        r = await CliRunner.RunAsync(dir.Path, "serve", "ram:64M,zoned.zone_size=8M", "--listen", "127.0.0.1:0", "--dhchap-keys", file);
        Assert.Equal(2, r.Exit);
        Assert.Contains($"{file}:2: hash: 'sha999'", r.Err);
    }
}
