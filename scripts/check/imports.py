#!/usr/bin/env python3
"""Which way imports run in src/ (docs/architecture.md, "Imports").

Reads every `crate::…`, `super::…` and `self::…` path in src/ and fails, naming the
files, when:
- two modules import each other in a circle. Modules are compared with their siblings
  (the files and folders of one folder): `decision::engine::act` using
  `decision::engine::advice` is an edge act -> advice; a child using its parent, or the
  reverse, is not an edge (a `mod.rs` declares its children and they use its types);
- a part uses another part it may not (the RULES below, from DESIGN.md "Parts").

Usage: scripts/check/imports.py [repository root]

Test files (`*_tests.rs`, `tests.rs`, `testkit.rs`, `fuzz*.rs`) are left out: a test may
reach wherever it needs to.
"""

import re
import sys
from pathlib import Path

SRC = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2]) / "src"

# part -> the parts of the crate it must not use. Adapters reach decision only through
# its ports; decision reaches no adapter; model is the leaf.
ADAPTERS = ("actuators", "advisors", "collector", "coordination", "enterprise")
RULES = {
    "model": ("config", "collector", "metrics", "anomaly", "health", "decision",
              "advisors", "actuators", "enterprise", "api", "app", "logging"),
    "decision": ADAPTERS + ("config", "api", "app", "metrics", "anomaly"),
    "config_kit": ("config", "decision", "api", "app", "metrics", "anomaly", "health") + ADAPTERS,
    "health": ("decision", "api", "app", "metrics") + ADAPTERS,
    "anomaly": ("decision", "api", "app", "metrics") + ADAPTERS,
    # The commands beside the agent talk to it over HTTP, not through its parts; they
    # read its files as it does (config, and api's web configuration).
    "cli": ("decision", "app", "metrics", "anomaly", "health") + ADAPTERS,
}
# For adapters: the only part of decision they may use.
ADAPTER_MAY_USE_OF_DECISION = ("ports",)

TEST_FILE = re.compile(r"(^|_)tests?\.rs$|^testkit\.rs$|^fuzz.*\.rs$|_fuzz\.rs$")
PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{")


def module_of(path: Path) -> tuple:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def modules() -> set:
    found = set()
    for path in SRC.rglob("*.rs"):
        m = module_of(path)
        for i in range(1, len(m) + 1):
            found.add(m[:i])
    return found


def strip_tests(text: str) -> str:
    """Drops `#[cfg(test)] mod … { … }` blocks and comments."""
    text = re.sub(r"//[^\n]*", "", text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def resolve(here: tuple, is_dir_module: bool, root: str, rest: str, known: set):
    segs = [s for s in rest.split("::") if s]
    if root == "crate":
        base = []
    else:
        # `self` is the file's own module; `super` its parent.
        base = list(here)
        if root == "super":
            base = base[:-1]
        while segs and segs[0] == "super":
            base = base[:-1]
            segs = segs[1:]
    full = tuple(base + segs)
    # The longest prefix that is a module of the crate.
    for n in range(len(full), 0, -1):
        if full[:n] in known:
            return full[:n]
    return None


def imports(known: set):
    for path in sorted(SRC.rglob("*.rs")):
        if TEST_FILE.search(path.name):
            continue
        here = module_of(path)
        text = strip_tests(path.read_text())
        targets = set()
        for m in PATH.finditer(text):
            t = resolve(here, path.name == "mod.rs", m.group(1), m.group(2), known)
            if t:
                targets.add(t)
        # `use crate::a::{b, c::D}`: the braces name modules too.
        for m in USE_GROUP.finditer(text):
            start = m.end()
            depth, j = 1, start
            while j < len(text) and depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            for item in re.split(r"[,{}]", text[start:j - 1]):
                item = item.strip().split(" as ")[0]
                if not item or item == "self":
                    continue
                t = resolve(here, False, m.group(1), m.group(2) + "::" + item, known)
                if t:
                    targets.add(t)
        yield path, here, targets


def sibling_edge(a: tuple, b: tuple):
    """The two siblings under the deepest common folder, unless one contains the other."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    if n == len(a) or n == len(b):
        return None
    return a[: n + 1], b[: n + 1]


def cycles(edges: dict) -> list:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    known = modules()
    edges, why, problems = {}, {}, []
    for path, here, targets in imports(known):
        rel = path.relative_to(SRC.parent)
        for t in targets:
            pair = sibling_edge(here, t)
            if pair:
                edges.setdefault(pair[0], set()).add(pair[1])
                why.setdefault(pair, set()).add(str(rel))
            part, other = here[0] if here else "lib", t[0]
            if other in RULES.get(part, ()):
                problems.append(f"{rel}: {part} must not use {'::'.join(t)}")
            if part in ADAPTERS and other == "decision" and (
                len(t) < 2 or t[1] not in ADAPTER_MAY_USE_OF_DECISION
            ):
                problems.append(
                    f"{rel}: an adapter uses {'::'.join(t)}; adapters use only decision::ports"
                )
    for comp in cycles(edges):
        names = " <-> ".join("::".join(m) for m in comp)
        files = []
        for a in comp:
            for b in comp:
                if b in edges.get(a, ()):
                    files.append(
                        f"    {'::'.join(a)} -> {'::'.join(b)}: "
                        + ", ".join(sorted(why[(a, b)]))
                    )
        problems.append(f"modules import each other in a circle: {names}\n" + "\n".join(files))
    for p in problems:
        print(p)
    if problems:
        print(f"imports: {len(problems)} problem(s); see docs/architecture.md, \"Imports\"")
        return 1
    print(f"imports: {len(known)} modules, no circle, every part within its rules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
