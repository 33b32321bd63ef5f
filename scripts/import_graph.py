"""The import graph of ``src/``: modules, the packages they belong to, and the edges between them.

    python scripts/import_graph.py            # the package-level graph as a Mermaid diagram
    python scripts/import_graph.py --check    # exit 1 on a cycle or on a library -> benchmark edge

Edges come from the source (``ast``), not from importing it: module-level imports make the
graph whose cycles matter; imports inside functions (made on call) are reported apart.
``tests/test_architecture.py`` asserts the same rules.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
TOP = ("freqprint", "freqprint_bench")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for top in TOP for p in (SRC / top).rglob("*.py")}


def imports(path: Path, known: set[str]) -> list[tuple[str, bool]]:
    """``(imported module, at module level?)`` for every freqprint / freqprint_bench import."""
    tree = ast.parse(path.read_text(), str(path))
    top_level = {id(n) for n in tree.body}
    for n in tree.body:  # imports under `if TYPE_CHECKING:` are not executed
        if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.dump(n.test):
            top_level -= {id(c) for c in ast.walk(n)}
    out = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name.split(".")[0] not in TOP:
                continue
            while name not in known and "." in name:  # `from pkg import function` -> pkg
                name = name.rsplit(".", 1)[0]
            if name in known:
                out.append((name, id(node) in top_level))
    return out


def edges() -> dict[str, set[tuple[str, bool]]]:
    mods = modules()
    known = set(mods)
    return {m: {(t, top) for t, top in imports(p, known) if t != m} for m, p in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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


def package_of(m: str) -> str:
    parts = m.split(".")
    return ".".join(parts[:2]) if parts[0] == "freqprint" and len(parts) > 1 else parts[0]


def problems() -> list[str]:
    e = edges()
    # a package __init__ importing its own submodules is how packages re-export; a cycle through
    # one is still a cycle, so they stay in the graph
    module_level = {m: {t for t, top in ts if top} for m, ts in e.items()}
    found = [f"import cycle: {' -> '.join(c)}" for c in cycles(module_level)]
    for m, ts in e.items():
        if m.startswith("freqprint_bench"):
            continue
        # the CLI's thin `bench`, `demo` and `metav bench` commands may import the benchmark
        # package when they run (inside the command function); nothing else in the library may
        cli = m.startswith("freqprint.cli")
        found += [
            f"library -> benchmark: {m} imports {t}" for t, top in ts if t.startswith("freqprint_bench") and (top or not cli)
        ]
    return found


def mermaid() -> str:
    """The package-level graph of module-level imports, as in ARCHITECTURE.md (``errors`` and
    ``factory``, which every package uses, left out; the CLI's imports are all made on call)."""
    skip = {"freqprint", "freqprint.errors", "freqprint.factory"}
    pk: dict[str, set[str]] = defaultdict(set)
    for m, ts in edges().items():
        for t, top in ts:
            a, b = package_of(m), package_of(t)
            if a != b and top and a not in skip and b not in skip and a != "freqprint.cli":
                pk[a].add(b)

    def short(s: str) -> str:
        return s.removeprefix("freqprint.")

    lines = [
        "graph LR",
        "    cli[cli] -. on call .-> library[the library's public functions]",
        "    cli -. bench commands, on call .-> freqprint_bench",
    ]
    lines += [
        f"    {short(a)} --> {' & '.join(short(b) for b in sorted(pk[a]))}"
        for a in sorted(pk, key=lambda x: (x.startswith("freqprint_bench"), x))
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if "--check" in sys.argv:
        bad = problems()
        print("\n".join(bad) or "no cycles; no library -> benchmark edge")
        sys.exit(1 if bad else 0)
    print(mermaid())
