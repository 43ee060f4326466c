#!/usr/bin/env python3
"""Checks the documentation: every relative link and image in README.md, docs/*.md and the other Markdown files of
the repository points at a file that exists, every #anchor matches a heading of its file as GitHub makes the
anchor, README.md is a front page of at most 300 lines with the two commands, and every file in docs/ is listed on
it. Prints TAP lines (ok N - ... / not ok N - ...) with a "#" line per broken link; exits 1 if any check failed.

Usage: check-links.py [ROOT]   (default: the repository this script is in)"""

import os
import re
import subprocess
import sys
import unicodedata
from urllib.parse import unquote

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", ".."))
README_MAX_LINES = 300
TWO_COMMANDS = ["dotnet run -c Release --project src/Zns.Cli -- serve", "bash test.sh"]
SKIP_DIRS = {".git", "bin", "obj", "node_modules", "packages", "TestResults"}

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
# [text](target) or ![alt](target), target optionally in <...> and optionally followed by a "title".
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
HTML_ANCHOR = re.compile(r"<a\s[^>]*(?:name|id)=\"([^\"]+)\"", re.I)


def markdown_files():
    try:
        out = subprocess.run(["git", "-C", ROOT, "ls-files", "-co", "--exclude-standard", "*.md"],
                             capture_output=True, text=True, check=True).stdout.split("\n")
        files = [f for f in out if f and os.path.isfile(os.path.join(ROOT, f))]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for d, dirs, names in os.walk(ROOT):
            dirs[:] = [x for x in dirs if x not in SKIP_DIRS]
            files += [os.path.relpath(os.path.join(d, n), ROOT) for n in names if n.endswith(".md")]
    return sorted(set(files))


def prose_lines(text):
    """The lines outside fenced code blocks, as (line number, line)."""
    fence = None
    for number, line in enumerate(text.split("\n"), 1):
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
        elif fence is not None and m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                and line.strip() == m.group(1):
            fence = None
        elif fence is None:
            yield number, line


def slug(heading):
    """The anchor GitHub gives a heading: markup dropped, lower case, punctuation removed, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)     # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text)                            # inline HTML
    text = text.replace("`", "").lower()
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in " -_" or cat[0] in "LN" or cat[0] == "M":
            kept.append(ch)
    return "".join(kept).replace(" ", "-")


_anchors = {}


def anchors(path):
    if path not in _anchors:
        found, seen = set(), {}
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for _, line in prose_lines(text):
            m = HEADING.match(line)
            if m:
                base = slug(m.group(2))
                n = seen.get(base, 0)
                seen[base] = n + 1
                found.add(base if n == 0 else f"{base}-{n}")
            for a in HTML_ANCHOR.findall(line):
                found.add(a)
        _anchors[path] = found
    return _anchors[path]


def broken_links(rel):
    path = os.path.join(ROOT, rel)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    problems = []
    for number, line in prose_lines(text):
        for m in LINK.finditer(CODE_SPAN.sub(lambda c: " " * len(c.group(0)), line)):
            target = m.group(1).strip("<>")
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("//"):
                continue                                          # http:, https:, mailto: ...
            file_part, _, anchor = target.partition("#")
            file_part = unquote(file_part.split("?")[0])
            dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
            if not dest.startswith(ROOT):
                problems.append(f"{rel}:{number}: {target}: leaves the repository")
            elif not os.path.exists(dest):
                problems.append(f"{rel}:{number}: {target}: no such file")
            elif anchor and dest.endswith(".md") and unquote(anchor).lower() not in anchors(dest):
                problems.append(f"{rel}:{number}: {target}: no heading with anchor #{anchor} in "
                                f"{os.path.relpath(dest, ROOT)}")
    return problems


def main():
    number = 0
    failed = 0

    def tap(ok, name, details=()):
        nonlocal number, failed
        number += 1
        print(f"{'ok' if ok else 'not ok'} {number} - {name}")
        for d in details:
            print(f"# {d}")
        failed += 0 if ok else 1

    files = markdown_files()
    readme_path = os.path.join(ROOT, "README.md")
    tap("README.md" in files, "README.md exists")
    for rel in files:
        problems = broken_links(rel)
        tap(not problems, f"{rel}: every relative link and anchor resolves", problems)

    readme = open(readme_path, encoding="utf-8").read() if os.path.exists(readme_path) else ""
    lines = readme.count("\n") + (0 if readme.endswith("\n") or not readme else 1)
    tap(lines <= README_MAX_LINES, f"README.md has at most {README_MAX_LINES} lines ({lines})")
    prose = {line.strip() for _, line in prose_lines(readme)}
    code = {line.strip() for line in readme.split("\n")} - prose
    for command in TWO_COMMANDS:
        tap(command in code, f"README.md shows the command: {command}")
    linked = {os.path.normpath(os.path.join(ROOT, m.group(1).split("#")[0]))
              for m in LINK.finditer(readme)}
    docs = sorted(f for f in files if f.startswith("docs/") and f.count("/") == 1)
    missing = [d for d in docs if os.path.join(ROOT, d) not in linked]
    tap(docs and not missing, "README.md links every file in docs/", [f"not linked: {d}" for d in missing])

    print(f"1..{number}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
