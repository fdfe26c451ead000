#!/usr/bin/env python3
"""Import circles between the modules of each crate: a module that uses
another (`use crate::…`, `use super::…`, or a `crate::…` path in code)
which, directly or through others, uses it back. A module and the modules
inside it are one family and not counted against each other (a parent
declares its children; a child reaching its parent's items is how Rust
modules nest).

Usage: scripts/cycles.py        exits non-zero and prints each circle found
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRATES = ["src", "dataplane/src", "sched/src", "conntrack/src", "config/src",
          "vrrp/src", "connsync/src", "bench/src"]
PATH = re.compile(r"\b(crate|super)((?:::\w+)+)")


def module_of(src, path):
    rel = path.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def modules(src):
    return {module_of(src, p): p for p in src.rglob("*.rs") if "tests" not in p.relative_to(src).parts
            and p.name != "tests.rs"}


def resolve(mods, here, kind, segs):
    # `super` of a/b (a/b.rs or a/b/mod.rs) is a; `crate` is the root.
    path = (list(here[:-1]) if kind == "super" else []) + segs
    # The longest prefix that is a module.
    for n in range(len(path), 0, -1):
        if tuple(path[:n]) in mods:
            return tuple(path[:n])
    return None


def related(a, b):
    return a[:len(b)] == b or b[:len(a)] == a


def edges(src, mods):
    out = {m: set() for m in mods}
    for m, p in mods.items():
        text = p.read_text()
        # Test modules at a file's end are not the module's own imports.
        cut = re.search(r"#\[cfg\(test\)\]\s*mod \w+\s*\{", text)
        if cut:
            text = text[:cut.start()]
        text = re.sub(r"//.*", "", text)
        for kind, rest in PATH.findall(text):
            segs = [s for s in rest.split("::") if s and s != "super"]
            t = resolve(mods, m, kind, segs)
            if t is not None and t != m and not related(t, m):
                out[m].add(t)
    return out


def cycles(graph):
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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
    for v in graph:
        if v not in index:
            visit(v)
    return out


def main():
    found = 0
    for c in CRATES:
        src = ROOT / c
        mods = modules(src)
        for comp in cycles(edges(src, mods)):
            found += 1
            names = ["::".join(m) or "(root)" for m in comp]
            print(f"{c}: {' <-> '.join(names)}")
    print(f"import circles: {found}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
