"""What step 9 of `freqprint.verification.tree` (siblings, by the shape of a difference) moved on
the bench's random trees (docs/benchmarks.md §14e): every member it took from under u to under
u's parent w, tagged by the truth — FIX (w is its true parent: u was a sibling), BREAK (u was
its true parent: a chain read as siblings) or NEITHER — with the two shapes it compared,
(effective rank, excess kurtosis) of v − u and of v − w.  The models are
``scripts/tree_rescore.py``'s cache (build them with it first).

    .venv/bin/python scripts/tree_sibling_moves.py --cache .cache/tree-rescore 2026-2055
    # 0.37.0: 97 s on 2 cores; output benchmarks/cpu/tree-sibling-moves.txt
    # (2056-2065, the seeds held out for 0.37.0: benchmarks/cpu/tree-sibling-moves-2056-2065.txt)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tree_rescore import load_nodes, seeds  # the script beside this one

import freqprint.verification.tree as tree
import freqprint_bench.lineage as bench


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("seeds", nargs="+", help="seeds or ranges whose models are under --cache")
    ap.add_argument("--cache", type=Path, required=True)
    a = ap.parse_args()
    moves: list[tuple[str, str, str, Any, Any]] = []
    step9 = tree._siblings

    def spy(tree_parent: dict[str, str], by_name: dict[str, Any], *rest: Any) -> dict[str, str]:
        out = step9(tree_parent, by_name, *rest)
        for v, w in out.items():
            if tree_parent[v] != w:
                u = tree_parent[v]
                moves.append((v, u, w, tree._shape(by_name[u], by_name[v]), tree._shape(by_name[w], by_name[v])))
        return out

    tree._siblings = spy
    counts = {"FIX": 0, "BREAK": 0, "NEITHER": 0}
    for seed in seeds(a.seeds):
        folder = a.cache / str(seed)
        meta = json.loads((folder / "meta.json").read_text())
        moves.clear()
        bench._tree_recovery(load_nodes(folder), list(meta), lambda _: None)
        for v, u, w, su, sw in moves:
            truth = meta[v]["parents"]
            tag = "FIX" if truth == [w] else "BREAK" if truth == [u] else "NEITHER"
            counts[tag] += 1
            print(
                f"{seed} {tag:<7} {v} ({meta[v]['kind']}): from {u} ({meta[u]['kind']}) to {w}; "
                f"v − u rank {su[0]:.4f} kurtosis {su[1]:.3f}, v − w {sw[0]:.4f} {sw[1]:.3f}",
                flush=True,
            )
    print(f"moved {sum(counts.values())}: " + ", ".join(f"{k} {n}" for k, n in counts.items()))


if __name__ == "__main__":
    main()
