#!/usr/bin/env bash
# The packages as a user gets them: `dotnet pack` the CLI (a .NET tool) and the in-process API (Zns.Nvme,
# Zns.Core, Zns.Protocol, Zns.Target), install the tool from the packed files and run it, and build and run a small program
# that references Zns.Target from the packed files and serves a namespace on 127.0.0.1:0. TAP lines on stdout.
# Needs the NuGet registry for the packages' own dependencies.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /var/tmp/zns-packages.XXXXXX)
trap 'rm -rf "$work"' EXIT
n=0
tap() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - packages: $2"; else echo "not ok $n - packages: $2"; fi; }
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 NUGET_PACKAGES="$work/nuget"
feed=$work/feed

ok=0
for p in Zns.Nvme Zns.Core Zns.Protocol Zns.Target Zns.Cli; do
    dotnet pack "$repo/src/$p/$p.csproj" -c Release -o "$feed" -nologo -v quiet >"$work/pack-$p.log" 2>&1 || { ok=1; tail -5 "$work/pack-$p.log" | sed 's/^/#   /'; }
done
tap $ok "dotnet pack makes zns (tool), Zns.Nvme, Zns.Core, Zns.Protocol, Zns.Target"
for pkg in Zns.Nvme Zns.Core Zns.Protocol Zns.Target; do
    f=$feed/$pkg.0.1.0.nupkg
    python3 -c 'import sys, zipfile; n = zipfile.ZipFile(sys.argv[1]).namelist(); sys.exit(0 if "README.md" in n and f"lib/net10.0/{sys.argv[2]}.xml" in n else 1)' "$f" "$pkg"
    tap $? "$pkg package carries its README and XML docs"
done

dotnet tool install zns --tool-path "$work/tools" --add-source "$feed" --version 0.1.0 >"$work/tool.log" 2>&1; rc=$?
[ $rc = 0 ] || tail -5 "$work/tool.log" | sed 's/^/#   /'
tap $rc "dotnet tool install zns from the packed file"
(cd "$work" && "$work/tools/zns" create t.raw --size 256M --zone-size 16M >/dev/null 2>&1 \
    && "$work/tools/zns" report t.raw 2>&1 | head -1 | grep -q "start: 0x000000000")
tap $? "the installed zns creates a backstore and reports its zones"

mkdir -p "$work/app"
cat >"$work/app/app.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><Nullable>enable</Nullable><ImplicitUsings>enable</ImplicitUsings></PropertyGroup>
  <ItemGroup><PackageReference Include="Zns.Target" Version="0.1.0" /></ItemGroup>
</Project>
XML
cat >"$work/app/Program.cs" <<'CS'
using System.Net;
using System.Net.Sockets;
using Zns.Core.Zones;
using Zns.Target.Controller;
using Zns.Target.Tcp;

using var ns = ZonedNamespace.CreateInMemory(64L << 20, new NamespaceOptions { ZoneSize = 16L << 20 });
var data = new byte[4096];
Console.WriteLine($"write {ns.Write(0, data).IsSuccess} wp {ns.GetZone(0).WritePointer}");
using var target = new NvmeTarget(new TargetOptions(), [ns]);
await using var listener = new NvmeTcpListener(new TargetTransportOptions { ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0) }, target);
listener.Start();
using var client = new TcpClient();
await client.ConnectAsync(listener.LocalEndPoint);
Console.WriteLine($"listening {listener.LocalEndPoint.Port > 0} connected {client.Connected}");
CS
cat >"$work/app/nuget.config" <<XML
<configuration><packageSources><add key="local" value="$feed" /></packageSources></configuration>
XML
(cd "$work/app" && dotnet run -c Release >"$work/app.log" 2>&1); rc=$?
[ $rc = 0 ] || tail -8 "$work/app.log" | sed 's/^/#   /'
grep -q "write True wp 1" "$work/app.log" && grep -q "listening True connected True" "$work/app.log"; rc2=$?
tap $((rc | rc2)) "a program referencing the Zns.Target package writes a zone and serves it on 127.0.0.1:0"
