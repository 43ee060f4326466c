#!/usr/bin/env bash
# The documentation's links: every relative link and #anchor in README.md, docs/*.md and the other Markdown files
# resolves (the file exists; the anchor is a heading of that file as GitHub makes it), README.md has at most 300
# lines and shows the two commands, and every file in docs/ is linked from it. Prints TAP lines. See check-links.py.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v python3 >/dev/null; then
    echo "# skipped: python3 not found"; exit 0
fi
exec python3 "$here/check-links.py" "$here/../.."
