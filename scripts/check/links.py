#!/usr/bin/env python3
"""Every relative link in README.md and docs/**/*.md resolves.

A link's file must exist (relative to the page that links it), and its #anchor must be
a heading of the target page as GitHub spells it (lowercase, punctuation dropped,
spaces to hyphens, "-1", "-2", ... for repeated headings) or an explicit
<a name="..."> / id="...". Links inside code blocks and inline code are not links;
absolute addresses (https:, mailto:) are not checked. Prints every broken link with
its page and line, and exits 1 if there is any.

    python3 scripts/check/links.py
"""

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`+[^`]*`+")
# [text](target "title") and ![alt](target); the text may hold one level of brackets.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+[^>]*(?:name|id)\s*=\s*\"([^\"]+)\"", re.I)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def pages():
    found = [ROOT / "README.md"]
    found += sorted((ROOT / "docs").rglob("*.md"))
    return [p for p in found if p.is_file()]


def prose_lines(text):
    """(line number, line) outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def slug(heading):
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text, flags=re.UNICODE)
    return text.replace(" ", "-")


def anchors(path, cache={}):
    if path not in cache:
        seen = {}
        found = set()
        for _, line in prose_lines(path.read_text(encoding="utf-8")):
            for name in HTML_ANCHOR.findall(line):
                found.add(name)
            match = HEADING.match(line)
            if not match:
                continue
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
        cache[path] = found
    return cache[path]


def links(path):
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        definition = REFERENCE_DEF.match(line)
        if definition:
            yield number, definition.group(1)
            continue
        for target in INLINE_LINK.findall(INLINE_CODE.sub("", line)):
            yield number, target


def problem(page, target):
    """What is wrong with one link, or None."""
    if SCHEME.match(target) or target.startswith("//"):
        return None
    file_part, _, anchor = target.partition("#")
    if file_part:
        resolved = (page.parent / file_part).resolve()
        if not resolved.exists():
            return f"{file_part} does not exist"
    else:
        resolved = page
    if not anchor:
        return None
    if resolved.is_dir():
        return f"#{anchor}: {file_part} is a directory"
    if resolved.suffix.lower() != ".md":
        # GitHub's line anchors into a source file.
        return None if re.fullmatch(r"L\d+(-L\d+)?", anchor) else f"#{anchor}: not a markdown page"
    if anchor not in anchors(resolved):
        return f"#{anchor}: no such heading in {os.path.relpath(resolved, ROOT)}"
    return None


def main():
    broken = []
    checked = 0
    for page in pages():
        for number, target in links(page):
            checked += 1
            why = problem(page, target)
            if why:
                broken.append(f"{page.relative_to(ROOT)}:{number}: ({target}) {why}")
    for line in broken:
        print(line)
    print(f"{checked} links in {len(pages())} pages, {len(broken)} broken")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
