"""The premise of `lineage-tree`'s kurtosis cue, measured (docs/benchmarks.md §14e): the excess
kurtosis of a tiny decoder's MLP weights (the test's Markov-chain decoder) after 60, 140, 200 and
400 Adam steps from initialisation, and of a 20-step fine-tune of each at two learning rates.
A fine-tune is flatter than its parent (the cue points the right way) only once the parent is
past its first steps.

    .venv/bin/python scripts/tree_kurtosis.py
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from freqprint.verification.parent import read_decoder
from freqprint.verification.tree import _stored_stats
from test_parent_lineage import new, state, train


def kurtosis(model: torch.nn.Module) -> float:
    dec = read_decoder(state(model))
    return sum(_stored_stats(dec, b, torch.device("cpu"))[1] for b in range(len(dec.blocks))) / len(dec.blocks)


def main() -> None:
    base = new(0)
    print(f"initialisation: excess kurtosis {kurtosis(base):.4f}")
    done = 0
    for steps in (60, 140, 200, 400):
        base = train(base, steps - done, seed=0)
        done = steps
        fast = kurtosis(train(copy.deepcopy(base), 20, seed=1, lr=1e-3))
        slow = kurtosis(train(copy.deepcopy(base), 20, seed=1, lr=3e-4))
        k = kurtosis(base)
        print(
            f"parent after {steps:3d} steps: {k:.4f}; 20-step fine-tune at 1e-3: {fast:.4f} ({'flatter' if fast < k else 'HEAVIER'}), "
            f"at 3e-4: {slow:.4f} ({'flatter' if slow < k else 'HEAVIER'})"
        )


if __name__ == "__main__":
    main()
