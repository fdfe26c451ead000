#!/usr/bin/env python3
"""The code-size limits of the house: no non-test function over 120 lines,
no file over 900. Prints the longest functions and largest files of the
workspace's Rust sources and of the XDP programs' C, and exits non-zero
when a limit is passed.

Usage: scripts/sizes.py [--top N]
A Rust function is counted from its `fn` line to its closing brace; code
after a `#[cfg(test)]` line of a file, and files under tests/ or named
tests.rs, count as tests. A C function (kernel style: its `{` and `}` alone
at the start of a line) is counted from its first header line to its `}`.
"""
import pathlib
import re
import sys

FN_LIMIT, FILE_LIMIT = 120, 900
ROOT = pathlib.Path(__file__).resolve().parent.parent
FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(unsafe\s+)?(extern\s+\"C\"\s+)?fn\s+(\w+)")


def functions(path):
    lines = path.read_text().splitlines()
    test_from = next((i for i, l in enumerate(lines) if l.strip() == "#[cfg(test)]"), len(lines))
    i = 0
    while i < test_from:
        m = FN.match(lines[i])
        if not m:
            i += 1
            continue
        depth, j, opened = 0, i, False
        while j < len(lines):
            code = re.sub(r'"(\\.|[^"\\])*"|//.*', "", lines[j])
            depth += code.count("{") - code.count("}")
            opened = opened or "{" in code
            if opened and depth <= 0 or (not opened and code.rstrip().endswith(";")):
                break
            j += 1
        yield m.group(6), i + 1, j - i + 1
        i += 1


def c_functions(path):
    lines = path.read_text().splitlines()
    start = None
    for i, line in enumerate(lines):
        if line == "{" and i > 0:
            # The header: the lines above back to a blank line or comment.
            start = i - 1
            while start > 0 and lines[start - 1].strip() and not lines[start - 1].startswith(("//", "#", "}")):
                start -= 1
            calls = re.findall(r"(\w+)\s*\(", " ".join(lines[start:i]))
            name = next((c for c in calls if c not in ("SEC", "__attribute__", "noinline")), "?")
        elif line == "}" and start is not None:
            yield name, start + 1, i - start + 1
            start = None


def main():
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 5
    files = [p for p in ROOT.rglob("*.rs") if "target" not in p.parts and "fuzz" not in p.parts]
    fns, sizes = [], []
    for p in files:
        rel = p.relative_to(ROOT)
        sizes.append((len(p.read_text().splitlines()), str(rel)))
        if "tests" in rel.parts or p.name == "tests.rs" or "benches" in rel.parts:
            continue
        fns += [(n, f"{rel}:{line}", name) for name, line, n in functions(p)]
    for p in (ROOT / "dataplane" / "src" / "xdp").iterdir():
        if p.suffix in (".c", ".h"):
            rel = p.relative_to(ROOT)
            sizes.append((len(p.read_text().splitlines()), str(rel)))
            fns += [(n, f"{rel}:{line}", name) for name, line, n in c_functions(p)]
    fns.sort(reverse=True)
    sizes.sort(reverse=True)
    print("longest non-test functions:")
    for n, at, name in fns[:top]:
        print(f"  {n:4} {at} {name}")
    print("largest files:")
    for n, at in sizes[:top]:
        print(f"  {n:4} {at}")
    bad = [f for f in fns if f[0] > FN_LIMIT] + [s for s in sizes if s[0] > FILE_LIMIT]
    if bad:
        print(f"over the limits ({FN_LIMIT} lines a function, {FILE_LIMIT} a file): {len(bad)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
