"""Can the lineage tree order two symmetry rewrites of one decoder by the rounding each adds?

Part 1: X is a random-initialised decoder of the tiny config of ``bench lineage``, A = g(X) and
B = g'(A) two rewrites by the decoder's symmetry group (norm scaling, head/unit permutation,
residual rotation; ``freqprint_bench.lineage._symmetries``), stored in float32.  B's true parent
is A; each rewrite adds its own float32 rounding, so B sits about √2 times farther from X than
from A *if* the tree's aligned distances resolve that rounding.  Printed per draw: the tree's
parents and its aligned distances (``LineageTree.distances``).

Part 2: the same question on a *trained* decoder (X: 200 AdamW steps on the English fortunes),
with a second rewrite A2 = g''(X) beside A and B, at 64 and 256 sampled units: whether the
copies' distances order them as their rewrites do (X–A and A–B below X–B, A–A2 and B–A2) — the
premise of joining copies by their minimum spanning tree.

Each line also prints the copies' distances refitted in float64 on every unit
(``freqprint.verification.tree._copy_distance``, what the tree orders copies by since 0.28.0):
one rewrite apart, two, or three.  docs/benchmarks.md §14e.

Usage::

    python scripts/tree_copy_order.py > benchmarks/cpu/tree-copy-order.txt
"""

from __future__ import annotations

import itertools

import torch

from freqprint.data.text import load_fortunes
from freqprint.verification.parent import read_decoder
from freqprint.verification.tree import _copy_distance, lineage_tree
from freqprint_bench.lineage import _byte_batches, _load_state, _new, _state, _symmetries, _tiny_config, _train


def _refit(zoo: dict) -> str:
    decs = {k: read_decoder(v) for k, v in zoo.items()}
    cpu = torch.device("cpu")
    return ", ".join(f"{a}-{b} {_copy_distance(decs[a], decs[b], cpu):.3g}" for a, b in itertools.combinations(zoo, 2))


def main() -> None:
    cfg = _tiny_config()
    for s in range(4):
        x = _new(cfg, 100 + s)
        a_sd = _symmetries(x, 10 + s)
        b_sd = _symmetries(_load_state(cfg, a_sd), 20 + s)
        zoo = {"X": {k: v.clone() for k, v in x.state_dict().items()}, "A": a_sd, "B": b_sd}
        t = lineage_tree(zoo)
        d = t.distances
        parents = {e.child: e.parent for e in t.edges}
        print(
            f"draw {s}: parents {parents}; d(B, A) = {d['B']['A']:.3g}, d(B, X) = {d['B']['X']:.3g}, d(A, X) = {d['A']['X']:.3g}"
        )
        print(f"  float64 refit: {_refit(zoo)}")
    batches = _byte_batches(load_fortunes("fortunes-topic", "train", per_class=600).texts, 64, 16, 10)
    x = _train(_new(cfg, 300), batches, 200, 1e-3, seed=0)
    a_sd = _symmetries(x, 11)
    zoo = {"X": _state(x), "A": a_sd, "A2": _symmetries(x, 13), "B": _symmetries(_load_state(cfg, a_sd), 15)}
    for units in (64, 256):
        t = lineage_tree(zoo, units=units)
        d = t.distances
        pairs = [("X", "A"), ("A", "B"), ("X", "A2"), ("X", "B"), ("A", "A2"), ("B", "A2")]
        print(
            f"trained, {units} units: parents {dict((e.child, e.parent) for e in t.edges)}; "
            + ", ".join(f"d({a}, {b}) = {d[a][b]:.4g}" for a, b in pairs)
        )
    print(f"trained, float64 refit: {_refit(zoo)}")


if __name__ == "__main__":
    main()
