"""Why `lineage-tree` put a model where it did: the SmolLM2 tree of `bench lineage --which
smollm2` rebuilt (same seeds), then the tree's merges, exact relations, low-rank partners, the
direction cues into MODEL and the cost of every in-edge of MODEL (docs/benchmarks.md §14b).  The
tree's edge from ``('root',)`` is the node above the family (its cost: what a root pays).

    .venv/bin/python scripts/tree_edges.py [MODEL]      # default S/task-arith; 11 min 35 s, peak RSS 15.2 GB (0.24.0)

With ``--trees SEED`` it rebuilds the random trees of ``bench lineage --which trees --seed SEED``
instead (§14e; 2 min 55 s, peak RSS 0.57 GB for seed 2031, 0.24.0):

    .venv/bin/python scripts/tree_edges.py T1/2-half-depth --trees 2031
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import networkx as nx

import freqprint.verification.tree as tree
import freqprint_bench.lineage as bench

_parser = argparse.ArgumentParser(description="Why lineage-tree put MODEL where it did.")
_parser.add_argument("model", nargs="?", default="S/task-arith")
_parser.add_argument("--trees", type=int, metavar="SEED", help="the random trees of `bench lineage --which trees --seed SEED`")
_args = _parser.parse_args()
SEED: int | None = _args.trees
TARGET: str = _args.model
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


def _trees_only(nodes: Any, names: list[str], log: Any, found: Any = None) -> dict[str, Any]:
    family = [n for n in names if n.split("/")[0] == TARGET.split("/")[0]]
    t = tree.lineage_tree({n: nodes[n].source for n in family})
    for n in family:
        print(f"{n}: parents {t.parents[n]}, true {nodes[n].parents}, stored zeros {t.detail['stored'][n]['zeros']:.3f}")
    print(f"distances from {TARGET}:", {k: round(v, 4) for k, v in sorted(t.distances[TARGET].items(), key=lambda e: e[1])})
    return {"rows": []}


nx.minimum_spanning_arborescence = _spy_arborescence
tree._exact_relations = _spy_relations
bench._evaluate = _tree_only
bench._tree_recovery = _trees_only
with tempfile.TemporaryDirectory() as d:
    if SEED is None:
        bench.run_smollm2(Path(d))
    else:
        bench.run_trees(Path(d), seed=SEED)
