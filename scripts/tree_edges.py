"""Why `lineage-tree` put a model where it did: the SmolLM2 tree of `bench lineage --which
smollm2` rebuilt (same seeds), then the tree's merges, exact relations, low-rank partners, the
direction cues into MODEL and the cost of every in-edge of MODEL (docs/benchmarks.md §14b).

    .venv/bin/python scripts/tree_edges.py [MODEL]      # default S/task-arith; 7 min 15 s, peak RSS 15.4 GB
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import networkx as nx

import freqprint.verification.tree as tree
import freqprint_bench.lineage as bench

TARGET = sys.argv[1] if len(sys.argv) > 1 else "S/task-arith"
_arborescence = nx.minimum_spanning_arborescence
_relations = tree._exact_relations


def _spy_arborescence(g: nx.DiGraph, **kw: Any) -> nx.DiGraph:
    arb = _arborescence(g, **kw)
    if TARGET in g.nodes:
        for u, v in arb.edges():
            print(f"tree: {u} -> {v}  cost {g[u][v]['weight']:.4f}")
        for u, v, w in sorted(g.edges(data="weight"), key=lambda e: e[2]):
            if v == TARGET:
                print(f"  in-edge {u} -> {v}  cost {w:.4f}")
    return arb


def _spy_relations(members: Any, merges: Any, cues: Any) -> Any:
    exact, partners = _relations(members, merges, cues)
    if any(m.name == TARGET for m in members):
        print("merges:", merges)
        print("exact relations (child: parents):", exact)
        print("low-rank partners:", partners)
        for (u, v), c in cues.items():
            if v == TARGET:
                print(f"  cue {u} -> {v}: {c}")
    return exact, partners


def _tree_only(nodes: Any, units: int, log: Any, names: list[str]) -> dict[str, Any]:
    t = tree.lineage_tree({n: nodes[n].source for n in names})
    for n in names:
        print(f"{n}: parents {t.parents[n]}, true {nodes[n].parents}")
    return {}


nx.minimum_spanning_arborescence = _spy_arborescence
tree._exact_relations = _spy_relations
bench._evaluate = _tree_only
with tempfile.TemporaryDirectory() as d:
    bench.run_smollm2(Path(d))
