"""The random trees of `bench lineage --which trees --seed S` for many seeds, scored by the tree
code as it is now (docs/benchmarks.md §14e): what a change to `freqprint.verification.tree` does
to every seed's trees, the held-out ones included (they stop being held out once a change is
judged on them).  The models are rebuilt by the bench's own generator and kept under ``--cache``
(one folder per seed: state dicts as safetensors, GGUF files, the truth in ``meta.json``), so a
second run only scores; scoring is the bench's own (``_tree_recovery``).

    .venv/bin/python scripts/tree_rescore.py --cache .cache/tree-rescore 2026-2044
    # 0.35.0: about 70 s per seed to build its 33 models on 2 cores (peak RSS 0.58 GB), then
    # about 70 s to score the 19 seeds; output benchmarks/cpu/tree-rescore.txt (the tree code of
    # 0.32.0 and 0.34.0 on the same models: benchmarks/cpu/tree-rescore-0.32.txt, -0.34.txt;
    # seeds 2045-2051 and 2052-2055 likewise, benchmarks/cpu/tree-rescore-2045-2051*.txt, -2052-2055*.txt)
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

import freqprint_bench.lineage as bench


def seeds(specs: list[str]) -> list[int]:
    out: list[int] = []
    for s in specs:
        a, _, b = s.partition("-")
        out += list(range(int(a), int(b or a) + 1))
    return out


def _build(seed: int, folder: Path) -> None:
    """Run the bench's generator for ``seed`` and keep its models and their truth in ``folder``."""
    scorer = bench._tree_recovery

    def keep(nodes: dict[str, Any], names: list[str], log: Any, found: Any = None) -> dict[str, Any]:
        folder.mkdir(parents=True, exist_ok=True)
        meta = {}
        for n in names:
            stem = n.replace("/", "_")
            src = nodes[n].source
            if isinstance(src, dict):
                file = f"{stem}.safetensors"
                save_file({k: v.contiguous() for k, v in src.items()}, str(folder / file))
            else:
                file = f"{stem}.gguf"
                shutil.copy(src, folder / file)
            meta[n] = {"file": file, "parents": nodes[n].parents, "kind": nodes[n].kind, "equivalent": nodes[n].equivalent}
        (folder / "meta.json").write_text(json.dumps(meta, indent=1))
        return {"rows": []}  # scored from the folder, as every later run is

    bench._tree_recovery = keep
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bench.run_trees(Path(tmp), seed=seed, log=lambda _: None)
    finally:
        bench._tree_recovery = scorer


def load_nodes(folder: Path) -> dict[str, bench.Node]:
    """One seed's kept models as the bench's tree nodes (sources: state dicts or GGUF paths)."""
    meta = json.loads((folder / "meta.json").read_text())
    return {
        n: bench.Node(
            n,
            load_file(str(folder / m["file"])) if m["file"].endswith(".safetensors") else folder / m["file"],
            m["parents"],
            m["kind"],
            m["equivalent"],
        )
        for n, m in meta.items()
    }


def _score(folder: Path) -> dict[str, Any]:
    nodes = load_nodes(folder)
    return bench._tree_recovery(nodes, list(nodes), lambda _: None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("seeds", nargs="+", help="seeds or ranges (2026-2042)")
    ap.add_argument("--cache", type=Path, required=True, help="where each seed's models are kept")
    args = ap.parse_args()
    total = right = 0
    classes: dict[str, int] = {}
    for seed in seeds(args.seeds):
        folder = args.cache / str(seed)
        if not (folder / "meta.json").exists():
            _build(seed, folder)
        tr = _score(folder)
        meta = json.loads((folder / "meta.json").read_text())
        for w in tr["wrong"]:
            c = _miss_class(meta, w["model"], w["predicted"])
            classes[c] = classes.get(c, 0) + 1
        total += tr["children"]
        right += tr["correct"]
        wrong = "; ".join(
            f"{w['model']} ({w['kind']}) under {' + '.join(w['predicted']) or 'no parent'}, true {' + '.join(w['true'])}"
            for w in tr["wrong"]
        )
        print(
            f"{seed}: {tr['correct']}/{tr['children']} under a true parent ({tr['correct_by_equivalent']} by an equivalent one), {tr['roots_correct']}/{tr['roots']} roots, families {'right' if tr['families_correct'] else 'WRONG'}"
            + (f"; wrong: {wrong}" if wrong else ""),
            flush=True,
        )
    print(f"total: {right}/{total} ({right / max(total, 1):.1%})")
    print("misses by the predicted parent's relation to the truth: " + ", ".join(f"{k} {v}" for k, v in sorted(classes.items())))


def _miss_class(meta: dict[str, Any], model: str, predicted: list[str]) -> str:
    """What a wrong parent is to the model: a sibling (another child of its parent), its
    grandparent, its own child, or anything else (a merge's pair among them)."""
    truth = meta[model]["parents"]
    if len(predicted) != 1 or len(truth) != 1:
        return "other"
    (p,) = predicted
    if meta[p]["parents"] == truth:
        return "sibling"
    if p in meta[truth[0]]["parents"]:
        return "grandparent"
    if model in meta[p]["parents"]:
        return "own child"
    return "other"


if __name__ == "__main__":
    main()
