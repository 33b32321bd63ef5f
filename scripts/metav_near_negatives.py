"""Regression's far negatives against V's training: does V stop accusing "other data" models once
its training split holds more of them?

``freqprint metav bench --tasks regression`` accuses 7 of its 189 far negatives: models predicting
BMI from the other diabetes features (an "other dataset" of the same shapes, whose answers carry
information about disease progression, the source's target) and rounded APIs of them, all with
V ≈ 0.995 and the top conformal rank, while V's training split holds one such model.  The obvious
fix: per seen other dataset, 4 more models in train and 2 in val (the far families'
architectures), each also served through the task's APIs.  This script runs the regression
benchmark once per draw — ``none`` (the default manifest), and the added models drawn from each
seed base given — and prints the verdict's rate per population and for the three other-data
families (breast-cancer: the dataset no split but test holds).  Models come from the cache, so a
draw costs its new models and V's training: about a minute here.  docs/benchmarks.md §13.

Usage::

    python scripts/metav_near_negatives.py --out /tmp/metav-near none 700000 800000 900000
"""

from __future__ import annotations

import argparse
from pathlib import Path

import freqprint_bench.metav as bench
from freqprint.metav.ensemble import _FAR_ARCHS, _SERVED, Entry, Manifest, default_manifest
from freqprint.metav.tasks import create_task

PER_DATASET = {"train": 4, "val": 2}
FAMILIES = ("other-data diabetes-bmi", "other-data diabetes-shuffled", "other-data breast-cancer")


def with_near_negatives(seed_base: int):
    """``default_manifest`` with the added models (regression only), their seeds from ``seed_base``."""

    def manifest(kind: str, profile: str = "quick") -> Manifest:
        m = default_manifest(kind, profile)
        if kind != "regression":
            return m
        src = next(e for e in m.entries if e.name == "source")
        far, seen = _FAR_ARCHS[kind], list(create_task(kind).other_datasets)[:-1]  # the last: test only
        seed = iter(range(seed_base, seed_base + 100_000))
        for split, per in PER_DATASET.items():
            for i in range(per * len(seen)):
                d, arch = seen[i % len(seen)], far[(i // len(seen)) % len(far)]
                name = f"far:{split}:other-near-{i}"
                params = {"data": f"other:{d}", "epochs": src.params["epochs"], "lr": src.params["lr"]}
                m.entries.append(
                    Entry(name, "negative", f"other-data {d}", split, "train", arch=arch, seed=next(seed), params=params)
                )
                for api, p in _SERVED[kind]:
                    m.entries.append(
                        Entry(
                            f"far:{split}:{api}-near-{i}",
                            "negative",
                            f"neg api-{api} far",
                            split,
                            "output",
                            name,
                            seed=next(seed),
                            params=p,
                        )
                    )
        return m

    return manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("draws", nargs="+", help="'none' (the default manifest), or the first seed of the added models")
    ap.add_argument("--out", required=True)
    ap.add_argument("--cache", default=".cache/freqprint/metav")
    args = ap.parse_args()
    for draw in args.draws:
        bench.default_manifest = default_manifest if draw == "none" else with_near_negatives(int(draw))
        res = bench.run_metav_bench("quick", ("regression",), args.cache, Path(args.out) / f"draw-{draw}", log=lambda _: None)
        task = res["tasks"]["regression"]
        r = task["results"]["verdict"]
        pops = {p["population"].split(":")[0]: p for p in r["populations"]}
        fams = {f["family"]: f for f in r["families"]}
        cells = [
            f"{k} {pops[k]['correct']}/{pops[k]['n']}" for k in ("far", "close", "derived", "students, held-out recipe or family")
        ]
        cells += [f"{f.split()[-1]} {fams[f]['correct']}/{fams[f]['n']}" for f in FAMILIES]
        print(f"draw {draw}: λ {task['threshold']:.3f}; right: " + ", ".join(cells), flush=True)
        if "correct_no_floor" in pops["far"]:  # 0.29: the bench's claims carry the opt-in closeness floor
            cells = [
                f"{k} {pops[k]['correct_no_floor']}/{pops[k]['n']}"
                for k in ("far", "close", "derived", "students, held-out recipe or family")
            ]
            cells += [f"{f.split()[-1]} {fams[f]['correct_no_floor']}/{fams[f]['n']}" for f in FAMILIES]
            print(f"draw {draw}, without the closeness floor: right: " + ", ".join(cells), flush=True)


if __name__ == "__main__":
    main()
