"""Write the uploads of docs/benchmarks.md §14d: SmolLM2 with its symmetry group applied and a
random initialisation of its config, both GGUF Q8_0, into OUT (the released file is copied beside
them by hand).  Usage: python scripts/lineage_uploads.py OUT"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from freqprint.attacks import Compose, DecoderPermutation, DecoderRotation, NormScaling
from freqprint.io.gguf import save_gguf
from freqprint_bench.llm import _load, _state, smollm2_gguf


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    base, _ = _load(smollm2_gguf())
    moved = Compose([NormScaling(seed=1), DecoderPermutation(seed=1), DecoderRotation(seed=2)])(base)
    save_gguf(_state(moved), out / "smollm2-symmetries-Q8_0.gguf", "Q8_0")
    torch.manual_seed(1)
    save_gguf(_state(type(base)(base.config)), out / "same-config-random-Q8_0.gguf", "Q8_0")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
