"""The thief's price against the tree's copy order (0.28.0): a copy of a copy goes under its
source because each symmetry rewrite stored in float32 adds its own rounding.  X: a tiny decoder
of ``bench lineage`` after 400 AdamW steps; A = g(X); B = g'(A).  Printed: the tree's parents
and d(B, X) for the honest B, for B computed as one rewrite of X in float64 and rounded once (the
order erased at no cost), and for B with Gaussian noise of 3e-6 of each matrix's spread added
(noise adds to both of B's distances alike: the order stays).  docs/security.md.

Usage::

    python scripts/tree_copy_attack.py > benchmarks/cpu/tree-copy-attack.txt
"""

from __future__ import annotations

import copy

import torch

from freqprint.attacks import Compose, DecoderPermutation, DecoderRotation, NormScaling
from freqprint.data.text import load_fortunes
from freqprint.verification.tree import lineage_tree
from freqprint_bench.lineage import _byte_batches, _new, _state, _tiny_config, _train


def main() -> None:
    cfg = _tiny_config()
    batches = _byte_batches(load_fortunes("fortunes-topic", "train", per_class=600).texts, 64, 16, 10)
    x = _train(_new(cfg, 300), batches, 400, 1e-3, seed=0)

    def g1() -> Compose:
        return Compose([NormScaling(seed=1), DecoderPermutation(seed=1), DecoderRotation(seed=2)])

    def g2() -> Compose:
        return Compose([NormScaling(seed=3), DecoderPermutation(seed=3), DecoderRotation(seed=4)])

    a = g1()(copy.deepcopy(x))
    b = g2()(copy.deepcopy(a))
    both = g2()(g1()(copy.deepcopy(x).double())).float()  # the thief's two rewrites computed as one, rounded once
    noisy = {k: v + 3e-6 * v.std() * torch.randn_like(v) if v.ndim == 2 else v for k, v in _state(b).items()}
    for label, bb in (("honest", _state(b)), ("as one", _state(both)), ("noise", noisy)):
        t = lineage_tree({"X": _state(x), "A": _state(a), "B": bb}, units=64)
        print(label, {e.child: e.parent for e in t.edges}, "d(B,X)", f"{t.distances['B']['X']:.3g}")


if __name__ == "__main__":
    main()
