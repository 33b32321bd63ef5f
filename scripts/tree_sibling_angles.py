"""Why `lineage-tree` takes a fine-tune for its sibling's child (docs/benchmarks.md §14e): over
the bench's random trees (the models `scripts/tree_rescore.py` keeps under ``--cache``), every
SFT model v with an SFT candidate parent S, in two configurations — S is v's true parent (S's own
parent P), or S is v's sibling (P the parent of both) — and the angle at S in the triangle P, S, v
from the tree's own aligned distances, ``cos = (d(S,P)² + d(S,v)² − d(P,v)²) / (2·d(S,P)·d(S,v))``.
A change made after S and independent of S's own change makes a right angle (cos ≈ 0); a
sibling trained on correlated text overshoots S's change (cos < 0) — and so does a child of S
trained on S's own text.  If the two populations overlap, no reading of these distances tells a
sibling from a child, and the rows say by how much.

    .venv/bin/python scripts/tree_sibling_angles.py --cache .cache/tree-rescore 2026-2044
    # 0.35.0 (and 0.34.0): 77 s on 2 cores once the cache is built (peak RSS 0.45 GB); output
    # benchmarks/cpu/tree-sibling-angles.txt
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from tree_rescore import load_nodes, seeds  # the script beside this one: the models it keeps

from freqprint.verification.tree import lineage_tree


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("seeds", nargs="+", help="seeds or ranges (2026-2044) whose models are under --cache")
    ap.add_argument("--cache", type=Path, required=True)
    args = ap.parse_args()
    rows = []
    for seed in seeds(args.seeds):
        nodes = load_nodes(args.cache / str(seed))
        meta = {n: {"parents": x.parents, "kind": x.kind} for n, x in nodes.items()}
        tree = lineage_tree({n: x.source for n, x in nodes.items()})
        dist = tree.distances

        def cos_at(s: str, p: str, v: str) -> float:
            x, y, z = dist[s][p], dist[s][v], dist[p][v]
            return (x * x + y * y - z * z) / (2 * x * y) if min(x, y) > 1e-4 else math.nan

        sft = {n for n, m in meta.items() if m["kind"].startswith("SFT")}
        for v in sorted(sft):
            (par,) = meta[v]["parents"]
            if par in sft and v in dist and par in dist[v] and meta[par]["parents"][0] in dist[v]:
                p = meta[par]["parents"][0]
                rows.append((seed, "child", v, par, cos_at(par, p, v), tree.parents[v] == [par]))
            for s in sorted(sft - {v}):
                if meta[s]["parents"] == [par] and v in dist and s in dist[v]:
                    rows.append((seed, "sibling", v, s, cos_at(s, par, v), tree.parents[v] == [s]))
    for seed, rel, v, s, c, under in sorted(rows, key=lambda r: r[4]):
        print(f"{seed} {v:>9} S = {s:>8}  S is its {rel:<7}  cos at S {c:+.3f}  {'put under S' if under else ''}")
    for rel in ("child", "sibling"):
        cs = [r[4] for r in rows if r[1] == rel]
        under = [r[4] for r in rows if r[1] == rel and r[5]]
        print(
            f"S is v's {rel}: {len(cs)} pairs, cos at S {min(cs):+.3f} to {max(cs):+.3f}; put under S: {len(under)}"
            + (f" (cos {min(under):+.3f} to {max(under):+.3f})" if under else "")
        )


if __name__ == "__main__":
    main()
