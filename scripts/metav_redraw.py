"""A fresh test split for `freqprint metav bench`: the same claim, new suspects.

The benchmark's test split is one draw of seeds, and a route designed while looking at it
(the replicate margin, docs/benchmarks.md §13) is judged on it.  This script runs the benchmark
once more with every test-split model re-drawn — each test entry's seed moved by ``--seed-base``
(its recipe, family and parent otherwise unchanged; a test model's test-split ancestors are
re-drawn with it) — while the train, validation, reference and replicate splits keep theirs, so
the claim is the benchmark's own, bit for bit, and only the suspects are new.  Deterministic
rewrites of a model of another split (the source's pruning, its APIs) come out identical: they
are the same suspects again, as they would be in any draw.

Usage (the models of the other splits come from the benchmark's cache)::

    python scripts/metav_redraw.py --tasks generation --seed-base 3000000 --out /tmp/metav-redraw
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import freqprint_bench.metav as bench
from freqprint.metav.ensemble import Manifest, default_manifest


def redrawn(seed_base: int):
    """``default_manifest`` with every test-split entry's seed moved by ``seed_base``."""

    def manifest(kind: str, profile: str = "quick") -> Manifest:
        m = default_manifest(kind, profile)
        entries = [replace(e, seed=e.seed + seed_base) if e.split == "test" else e for e in m.entries]
        out = Manifest(m.task, entries, m.profile)
        out.validate(f"redrawn {kind} manifest")
        return out

    return manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="generation")
    ap.add_argument("--seed-base", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cache", default=".cache/freqprint/metav")
    a = ap.parse_args()
    bench.default_manifest = redrawn(a.seed_base)  # the benchmark builds its manifest through this name
    bench.run_metav_bench("quick", tuple(a.tasks.split(",")), a.cache, a.out)


if __name__ == "__main__":
    main()
