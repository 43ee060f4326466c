using System.Diagnostics;

namespace Zns.Cli.Tests;

/// <summary>
/// <c>zns qemu</c>: the QEMU command line read and rewritten (dry runs asserted word for word), each refusal, and a
/// fake QEMU (a shell script) for the exit status, signal forwarding and the zone state saved when QEMU exits.
/// </summary>
public sealed class QemuCliTests
{
    private const string Seed = "-drive file=zns.raw,id=nvmezns0,format=raw,if=none -device nvme,serial=deadbeef,id=nvme0 " +
        "-device nvme-ns,drive=nvmezns0,bus=nvme0,nsid=1,logical_block_size=4096,physical_block_size=4096,zoned=true," +
        "zoned.zone_size=64M,zoned.zone_capacity=62M,zoned.max_open=16,zoned.max_active=32,zoned.zasl=5";

    private static void Raw(TempDir dir, string name, long size = 32L << 30)
    {
        using var f = File.Create(Path.Combine(dir.Path, name));
        f.SetLength(size);
    }

    private static string[] Words(string s) => s.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    private static Task<(int Exit, string Out, string Err)> Zns(TempDir dir, string zns, string qemu) =>
        CliRunner.RunAsync(dir.Path, [.. Words("qemu " + zns), "--", .. Words(qemu)]);

    /// <summary>A fake QEMU: lists vfio-user-pci (or not) for -device help, says its version, otherwise records its arguments and runs <paramref name="body"/>.</summary>
    private static string FakeQemu(TempDir dir, string body, bool vfioUser = true, string version = "10.1.0")
    {
        string path = Path.Combine(dir.Path, "fake-qemu");
        string deviceHelp = vfioUser ? "echo 'vfio-user-pci options:'; exit 0"
            : "echo \"qemu-system-x86_64: -device vfio-user-pci,help: 'vfio-user-pci' is not a valid device model name\" >&2; exit 1";
        File.WriteAllText(path, $"""
            #!/bin/bash
            if [ "$1 $2" = "-device help" ]; then
              echo 'name "nvme", bus PCI, desc "Non-Volatile Memory Express"'
              {(vfioUser ? "echo 'name \"vfio-user-pci\", bus PCI, desc \"VFIO user device\"'" : "")}
              exit 0
            fi
            if [ "$1 $2" = "-device vfio-user-pci,help" ]; then
              {deviceHelp}
            fi
            if [ "$1" = "--version" ]; then echo "QEMU emulator version {version} (Debian)"; exit 0; fi
            printf '%s\n' "$@" > "{dir.Path}/args"
            {body}
            """);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        return path;
    }

    [Fact]
    public async Task DryRun_SeedCommand_BecomesVfioUserPciOnSharedMemory()
    {
        using var dir = new TempDir();
        Raw(dir, "zns.raw");
        var (exit, stdout, stderr) = await Zns(dir, "--dry-run --socket-dir /run/zq",
            "qemu-system-x86_64 -M q35,accel=tcg -m 2G -smp 2 -nographic " + Seed + " -kernel vmlinuz -append console=ttyS0");
        Assert.True(exit == 0, stderr);
        Assert.Equal("qemu-system-x86_64 -M q35,accel=tcg,memory-backend=zns-mem -m 2G -smp 2 -nographic " +
            "-object memory-backend-memfd,id=zns-mem,size=2G,share=on " +
            "-device '{\"driver\":\"vfio-user-pci\",\"socket\":{\"type\":\"unix\",\"path\":\"/run/zq/nvme0.sock\"},\"id\":\"nvme0\"}' " +
            "-kernel vmlinuz -append console=ttyS0\n", stdout);
        Assert.False(File.Exists(Path.Combine(dir.Path, "zns.raw.zns")));
        Assert.False(Directory.Exists("/run/zq"));
    }

    [Fact]
    public async Task DryRun_TwoControllers_LegacyForm_Placement_MemoryInMiB_NoMachine()
    {
        using var dir = new TempDir();
        Raw(dir, "a.raw", 1L << 30);
        Raw(dir, "b.raw", 1L << 30);
        Raw(dir, "c.raw", 1L << 30);
        var (exit, stdout, stderr) = await Zns(dir, "--dry-run --socket-dir /s",
            "qemu-system-x86_64 -m 3072 -device pcie-root-port,id=rp1,bus=pcie.0,chassis=1 " +
            "-drive file=a.raw,id=a,format=raw,if=none,cache=none " +
            "-device nvme,drive=a,serial=legacy1,logical_block_size=4096,mdts=5,bus=rp1,addr=0x0 " +
            "-drive if=none,id=b,file=b.raw,format=raw -drive if=none,id=c,file=c.raw,format=raw " +
            "-device nvme,serial=two,id=ctl2,mqes=63,zoned.zasl=4 " +
            "-device nvme-ns,drive=b,nsid=2,zoned=on,zoned.zone_size=16M " +
            "-device nvme-ns,drive=c,bus=ctl2,nsid=3,uuid=0e4b1d8a-8a26-4b8a-9a43-56b0a7c0e5a1 -drive file=disk.qcow2,if=virtio");
        Assert.True(exit == 0, stderr);
        Assert.Equal("qemu-system-x86_64 -m 3072 -device pcie-root-port,id=rp1,bus=pcie.0,chassis=1 " +
            "-object memory-backend-memfd,id=zns-mem,size=3G,share=on -machine memory-backend=zns-mem " +
            "-device '{\"driver\":\"vfio-user-pci\",\"socket\":{\"type\":\"unix\",\"path\":\"/s/nvme0.sock\"},\"bus\":\"rp1\",\"addr\":\"0x0\"}' " +
            "-device '{\"driver\":\"vfio-user-pci\",\"socket\":{\"type\":\"unix\",\"path\":\"/s/nvme1.sock\"},\"id\":\"ctl2\"}' " +
            "-drive file=disk.qcow2,if=virtio\n", stdout);
    }

    [Theory]
    [InlineData("-m size=4G,slots=2,maxmem=8G", "size=4G")]
    [InlineData("-m 1536", "size=1536M")]
    [InlineData("-m 512M", "size=512M")]
    [InlineData("", "size=128M")]
    public async Task DryRun_MemorySize(string m, string expected)
    {
        using var dir = new TempDir();
        Raw(dir, "zns.raw");
        var (exit, stdout, stderr) = await Zns(dir, "--dry-run --socket-dir /s", $"qemu-system-x86_64 -machine q35 {m} " + Seed);
        Assert.True(exit == 0, stderr);
        Assert.Contains($"-object memory-backend-memfd,id=zns-mem,{expected},share=on ", stdout);
        Assert.Contains("-machine q35,memory-backend=zns-mem ", stdout);
    }

    [Fact]
    public async Task DryRun_SharedBackendOfTheScript_IsKept()
    {
        using var dir = new TempDir();
        Raw(dir, "zns.raw");
        var (exit, stdout, stderr) = await Zns(dir, "--dry-run --socket-dir /s",
            "qemu-system-x86_64 -m 2G -object memory-backend-file,id=m0,size=2G,mem-path=/dev/shm/g,share=on -machine q35,memory-backend=m0 " + Seed);
        Assert.True(exit == 0, stderr);
        Assert.Equal("qemu-system-x86_64 -m 2G -object memory-backend-file,id=m0,size=2G,mem-path=/dev/shm/g,share=on -machine q35,memory-backend=m0 " +
            "-device '{\"driver\":\"vfio-user-pci\",\"socket\":{\"type\":\"unix\",\"path\":\"/s/nvme0.sock\"},\"id\":\"nvme0\"}'\n", stdout);
    }

    [Fact]
    public async Task Refused_BackendNotShared()
    {
        using var dir = new TempDir();
        Raw(dir, "zns.raw");
        var (exit, _, stderr) = await Zns(dir, "--dry-run",
            "qemu-system-x86_64 -m 2G -object memory-backend-ram,id=ram0,size=2G -machine memory-backend=ram0 " + Seed);
        Assert.Equal(2, exit);
        Assert.Equal("zns: -object memory-backend-ram,id=ram0,size=2G: guest memory backend 'ram0' is not shared; vfio-user needs share=on (e.g. -object memory-backend-memfd,id=ram0,size=...,share=on)\n", stderr);
    }

    [Fact]
    public async Task Refused_DriveNotRaw_ByFormatAndByContent()
    {
        using var dir = new TempDir();
        var (exit, _, stderr) = await Zns(dir, "--dry-run",
            "qemu-system-x86_64 -drive file=d.qcow2,id=d,format=qcow2,if=none -device nvme,serial=s,drive=d");
        Assert.Equal(2, exit);
        Assert.Equal("zns: -drive file=d.qcow2,id=d,format=qcow2,if=none: d.qcow2 is qcow2, zns serves raw files only: convert it with `qemu-img convert -O raw d.qcow2 d.raw`\n", stderr);

        File.WriteAllBytes(Path.Combine(dir.Path, "img"), [(byte)'Q', (byte)'F', (byte)'I', 0xfb, 0, 0, 0, 3, 0, 0]);
        (exit, _, stderr) = await Zns(dir, "--dry-run", "qemu-system-x86_64 -drive file=img,id=d,if=none -device nvme,serial=s,drive=d");
        Assert.Equal(2, exit);
        Assert.StartsWith("zns: -drive file=img,id=d,if=none: img is qcow2, zns serves raw files only: convert it with `qemu-img convert -O raw img", stderr);
    }

    [Fact]
    public async Task Refused_UnknownOption_OrLeftOutWithIgnoreUnknown()
    {
        using var dir = new TempDir();
        Raw(dir, "zns.raw");
        string qemu = "qemu-system-x86_64 -drive file=zns.raw,id=n,format=raw,if=none -device nvme,serial=s,id=c,cmb_size_mb=64 -device nvme-ns,drive=n,bus=c,shared=off";
        var (exit, stdout, stderr) = await Zns(dir, "--dry-run --socket-dir /s", qemu);
        Assert.Equal(2, exit);
        Assert.Equal("", stdout);
        Assert.Equal("zns: -device nvme,serial=s,id=c,cmb_size_mb=64: option cmb_size_mb=64 is not implemented by zns (--ignore-unknown goes on without it)\n", stderr);

        (exit, stdout, stderr) = await Zns(dir, "--dry-run --ignore-unknown --socket-dir /s", qemu);
        Assert.True(exit == 0, stderr);
        Assert.Equal("zns: ignoring cmb_size_mb=64 of -device nvme,serial=s,id=c,cmb_size_mb=64: not implemented by zns\n" +
                     "zns: ignoring shared=off of -device nvme-ns,drive=n,bus=c,shared=off: not implemented by zns\n", stderr);
        Assert.StartsWith("qemu-system-x86_64 -object memory-backend-memfd,id=zns-mem,size=128M,share=on", stdout);
    }

    [Fact]
    public async Task Refused_PhysicalBlockSizeLargerThanLogical()
    {
        using var dir = new TempDir();
        Raw(dir, "zns.raw");
        var (exit, _, stderr) = await Zns(dir, "--dry-run",
            "qemu-system-x86_64 -drive file=zns.raw,id=n,format=raw,if=none -device nvme,serial=s,id=c -device nvme-ns,drive=n,bus=c,physical_block_size=4096");
        Assert.Equal(2, exit);
        Assert.Equal("zns: -device nvme-ns,drive=n,bus=c,physical_block_size=4096: physical_block_size=4096 is not supported: zns reports the logical block size (512) as the physical one (leave it out or set it to 512)\n", stderr);
    }

    [Fact]
    public async Task Refused_OneFileNamedTwice()
    {
        using var dir = new TempDir();
        Raw(dir, "zns.raw");
        var (exit, _, stderr) = await Zns(dir, "--dry-run",
            "qemu-system-x86_64 -drive file=zns.raw,id=a,format=raw,if=none -drive file=./zns.raw,id=b,format=raw,if=none " +
            "-device nvme,serial=s,id=c -device nvme-ns,drive=a,bus=c -device nvme-ns,drive=b,bus=c");
        Assert.Equal(2, exit);
        Assert.Equal("zns: ./zns.raw: named by two devices (-device nvme-ns,drive=a,bus=c and -device nvme-ns,drive=b,bus=c): zns serves a file once\n", stderr);
    }

    [Fact]
    public async Task Refused_QemuWithoutVfioUserClient_NamesItsVersion()
    {
        using var dir = new TempDir();
        Raw(dir, "zns.raw");
        string qemu = FakeQemu(dir, "exit 0", vfioUser: false, version: "7.2.22");
        var (exit, _, stderr) = await Zns(dir, "--socket-dir sockets", qemu + " " + Seed);
        Assert.Equal(2, exit);
        Assert.Equal($"zns: {qemu} (QEMU 7.2.22) has no vfio-user client (no vfio-user-pci in -device help): zns qemu needs QEMU 10.1 or newer\n", stderr);
        Assert.False(File.Exists(Path.Combine(dir.Path, "args")));
        Assert.False(File.Exists(Path.Combine(dir.Path, "zns.raw.zns")));
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "sockets")));
    }

    [Fact]
    public async Task Refused_FileServedByAnotherZns()
    {
        using var dir = new TempDir();
        Raw(dir, "zns.raw");
        using var server = Process.Start(CliRunner.StartInfo(dir.Path, "serve", "--listen", "127.0.0.1:0", "--control", "off", "zns.raw"))!;
        try
        {
            await CliRunner.WaitForListenAsync(server, TestContext.Current.CancellationToken);
            string qemu = FakeQemu(dir, "exit 0");
            var (exit, _, stderr) = await Zns(dir, "", qemu + " -drive file=zns.raw,id=d,format=raw,if=none -device nvme,serial=s,drive=d");
            Assert.Equal(2, exit);
            Assert.Equal("zns: zns.raw: in use by another zns process\n", stderr);
            Assert.False(File.Exists(Path.Combine(dir.Path, "args")));
        }
        finally
        {
            server.Kill();
            await server.WaitForExitAsync(TestContext.Current.CancellationToken);
        }
    }

    [Fact]
    public async Task NoNvmeDevice_RunsQemuUnchanged_AndPassesItsStatus()
    {
        using var dir = new TempDir();
        string qemu = FakeQemu(dir, "exit 3");
        var (exit, stdout, stderr) = await Zns(dir, "", qemu + " -m 1G -nographic");
        Assert.Equal(3, exit);
        Assert.Equal("", stderr);
        Assert.Equal("-m\n1G\n-nographic\n", File.ReadAllText(Path.Combine(dir.Path, "args")));
    }

    [Fact]
    public async Task Run_ServesTheControllers_PassesTheStatus_SavesZoneState()
    {
        using var dir = new TempDir();
        Raw(dir, "zns.raw");
        // The fake QEMU sees the socket zns listens on, then exits with 5.
        string qemu = FakeQemu(dir, $"[ -S \"{dir.Path}/s/nvme0.sock\" ] && echo listening > \"{dir.Path}/seen\"; exit 5");
        var (exit, _, stderr) = await Zns(dir, "--socket-dir s", qemu + " -m 1G " + Seed);
        Assert.True(exit == 5, stderr);
        Assert.Equal("listening\n", File.ReadAllText(Path.Combine(dir.Path, "seen")));
        Assert.Equal(["-m", "1G", "-object", "memory-backend-memfd,id=zns-mem,size=1G,share=on", "-machine", "memory-backend=zns-mem", "-device",
            $"{{\"driver\":\"vfio-user-pci\",\"socket\":{{\"type\":\"unix\",\"path\":\"{dir.Path}/s/nvme0.sock\"}},\"id\":\"nvme0\"}}"],
            File.ReadAllLines(Path.Combine(dir.Path, "args")));
        Assert.Contains("zns: nvme0 (serial deadbeef) over vfio-user on", stderr);
        Assert.Contains("zns.raw: 512 zones of 64 MiB (capacity 62 MiB), 4096-byte blocks, max open 16, max active 32", stderr);

        // Zone state written when QEMU exited: the geometry is kept, and the lock is free for the next run.
        var (infoExit, info, _) = await CliRunner.RunAsync(dir.Path, "info", "zns.raw");
        Assert.Equal(0, infoExit);
        Assert.Contains("64 MiB", info);
        Assert.DoesNotContain("none (all zones Empty)", info);
        (exit, _, stderr) = await Zns(dir, "--socket-dir s", qemu + " -m 1G " + Seed);
        Assert.True(exit == 5, stderr);
    }

    [Fact]
    public async Task Sigterm_IsForwardedToQemu_ThenZnsExitsWithItsStatus()
    {
        using var dir = new TempDir();
        Raw(dir, "zns.raw");
        string qemu = FakeQemu(dir, $"trap 'echo TERM > \"{dir.Path}/got\"; exit 7' TERM; touch \"{dir.Path}/ready\"; while :; do sleep 0.1; done");
        var psi = CliRunner.StartInfo(dir.Path, [.. Words("qemu --socket-dir s --"), qemu, .. Words(Seed)]);
        using var zns = Process.Start(psi)!;
        var ct = TestContext.Current.CancellationToken;
        var stderr = zns.StandardError.ReadToEndAsync(ct);
        _ = zns.StandardOutput.ReadToEndAsync(ct);
        string ready = Path.Combine(dir.Path, "ready");
        for (int i = 0; i < 600 && !File.Exists(ready) && !zns.HasExited; i++)
        {
            await Task.Delay(100, ct);
        }
        Assert.True(File.Exists(ready), "the fake QEMU did not start");
        using (var kill = Process.Start("kill", ["-TERM", zns.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync(ct);
        }
        await zns.WaitForExitAsync(ct);
        Assert.Equal(7, zns.ExitCode);
        Assert.Equal("TERM\n", File.ReadAllText(Path.Combine(dir.Path, "got")));
        Assert.True(File.Exists(Path.Combine(dir.Path, "zns.raw.zns")), await stderr);
    }
}
