#!/usr/bin/env bash
# Install what the zone map's browser test needs: Debian's chromium and playwright-core (npm) in .cache/npm.
# Idempotent.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
if ! command -v chromium >/dev/null; then
  if [[ $(id -u) -ne 0 ]]; then echo "install-browser: chromium missing; run as root to install" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; }
fi
if [[ ! -f $repo/.cache/npm/node_modules/playwright-core/package.json ]]; then
  command -v npm >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq --no-install-recommends npm; }
  mkdir -p "$repo/.cache/npm"
  npm install --no-audit --no-fund --prefix "$repo/.cache/npm" playwright-core@1.65.1 >/dev/null
fi
echo "install-browser: done"
