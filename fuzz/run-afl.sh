#!/usr/bin/env bash
# Coverage-guided fuzzing of zns with afl++ and SharpFuzz.
#
#   fuzz/run-afl.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Installs Debian's afl++ (apt) and the SharpFuzz.CommandLine 2.3.0 tool (into a local tool path) when missing,
# builds fuzz/Zns.Fuzz, instruments Zns.Core, Zns.Protocol and Zns.Target in the build output, then runs afl-fuzz
# for SECONDS_PER_TARGET (default 600) on each target (default: all), starting from fuzz/corpus/TARGET.
# Targets run one after the other unless AFL_PARALLEL=1. Results go to $AFL_WORK (default fuzz/.afl, ignored by
# git): findings/TARGET/default/{queue,crashes,hangs,fuzzer_stats}. A summary line per target is printed at the end.
# With AFL_UPDATE_CORPUS=1 the queue of each target is minimized with afl-cmin and written to fuzz/corpus/TARGET/afl-*
# (replacing the previous afl-* files; the hand-made seed-* files stay).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-600}
shift || true
targets=("$@")
work=${AFL_WORK:-fuzz/.afl}
mkdir -p "$work"
work=$(cd "$work" && pwd)

if ! command -v afl-fuzz >/dev/null; then
  echo "installing afl++ (apt)"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get install -y afl++ >/dev/null
fi
if [ ! -x "$work/tools/sharpfuzz" ]; then
  echo "installing SharpFuzz.CommandLine 2.3.0 into $work/tools"
  dotnet tool install SharpFuzz.CommandLine --version 2.3.0 --tool-path "$work/tools" >/dev/null
fi

echo "building and instrumenting"
rm -rf "$work/bin"
dotnet build fuzz/Zns.Fuzz -c Release -nologo -v quiet -o "$work/bin" >/dev/null
for assembly in Zns.Core Zns.Protocol Zns.Target; do
  "$work/tools/sharpfuzz" "$work/bin/$assembly.dll" >/dev/null
done

if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(dotnet "$work/bin/Zns.Fuzz.dll" list)
fi

export AFL_SKIP_BIN_CHECK=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1
export AFL_NO_AFFINITY=${AFL_NO_AFFINITY:-1}

run_target() {
  local target=$1
  rm -rf "$work/findings/$target"
  mkdir -p "$work/findings/$target"
  echo "afl-fuzz $target for ${seconds}s"
  afl-fuzz -i "fuzz/corpus/$target" -o "$work/findings/$target" -t 10000 -m none -V "$seconds" \
    -- dotnet "$work/bin/Zns.Fuzz.dll" afl "$target" > "$work/findings/$target.log" 2>&1 || true
}

if [ "${AFL_PARALLEL:-0}" = 1 ]; then
  for t in "${targets[@]}"; do run_target "$t" & done
  wait
else
  for t in "${targets[@]}"; do run_target "$t"; done
fi

if [ "${AFL_UPDATE_CORPUS:-0}" = 1 ]; then
  for t in "${targets[@]}"; do
    queue="$work/findings/$t/default/queue"
    [ -d "$queue" ] || continue
    rm -rf "$work/cmin-$t"
    afl-cmin -i "$queue" -o "$work/cmin-$t" -t 10000 -m none -- "$(command -v dotnet)" "$work/bin/Zns.Fuzz.dll" afl "$t" >/dev/null
    rm -f "fuzz/corpus/$t"/afl-*
    for f in "$work/cmin-$t"/*; do
      id=$(basename "$f" | sed -n 's/^id:\([0-9]*\).*/\1/p')
      cp "$f" "fuzz/corpus/$t/afl-${id:-$(basename "$f" | tr -c 'A-Za-z0-9' _)}"
    done
    echo "$t: $(ls "$work/cmin-$t" | wc -l) files after afl-cmin -> fuzz/corpus/$t/afl-*"
  done
fi

printf '%-20s %12s %10s %8s %8s %8s %10s\n' target execs exec/s corpus edges crashes hangs
for t in "${targets[@]}"; do
  stats="$work/findings/$t/default/fuzzer_stats"
  if [ ! -f "$stats" ]; then echo "$t: no fuzzer_stats (see $work/findings/$t.log)"; continue; fi
  get() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
  printf '%-20s %12s %10s %8s %8s %8s %10s\n' "$t" "$(get execs_done)" "$(get execs_per_sec)" "$(get corpus_count)" \
    "$(get edges_found)" "$(get saved_crashes)" "$(get saved_hangs)"
done
