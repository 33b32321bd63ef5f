"""How a classification MetaV claim answers students of its source, by recipe and training length.

A thief distils the source into another family on the thief's own images (the task's thief
split) with the task's own ``distill``: soft labels at T = 1 (Adam), hard labels (SGD), soft
labels at T = 4 (SGD, Hinton's recipe, and Adam), for 4 and 12 epochs, into a LeNet and an MLP.
For each student the script prints its test accuracy, the claim's verdict (V's score, λ, the
reference rank, p) and, beside it, the closeness to the source on the claim's probe inputs and
its own rank among the reference answers (``p_closeness``), which the verdict does not use.

Usage (the claim's ensemble cache holds the source)::

    python scripts/metav_students.py CLAIM --cache .cache/freqprint/metav
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from freqprint.io.checkpoint import load_model
from freqprint.metav import load_claim
from freqprint.metav.tasks import TaskData

RECIPES = {
    "t1-adam": ({"temperature": 1.0, "optimizer": "adam"}, 1e-3),
    "hard-sgd": ({"hard": True}, 0.05),
    "t4-sgd": ({"temperature": 4.0}, 0.05),
    "t4-adam": ({"temperature": 4.0, "optimizer": "adam"}, 1e-3),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("claim", type=Path)
    ap.add_argument("--cache", type=Path, default=Path(".cache/freqprint/metav"))
    ap.add_argument("--seeds", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(2)
    mv, meta = load_claim(args.claim)
    task = mv.task
    if task.kind != "classification":
        raise SystemExit("error: this script takes a classification claim")
    source, _ = load_model(args.cache / f"classification-train-{meta['model_hashes']['source']}.safetensors")
    source.eval()
    data: TaskData = task.load()
    teacher = lambda x: task.outputs(source, x)
    print(f"claim {args.claim} (λ {mv.threshold:.4f}, {len(mv.floor.scores)} reference answers, α {mv.floor.alpha})")
    print("student                      acc    V       p_ref   p      derived  closeness  p_closeness")
    for arch in ("lenet", "mlp"):
        for rname, (opts, lr) in RECIPES.items():
            for epochs in (4, 12):
                for seed in range(1, args.seeds + 1):
                    t0 = time.time()
                    student, _ = task.build(arch, 1000 + seed)
                    student = task.distill(teacher, student, data.thief, epochs, lr, 1000 + seed, **opts)
                    with torch.no_grad():
                        acc = float((task.outputs(student, data.test.images).argmax(1) == data.test.labels).float().mean())
                    v = mv.verdict(student)
                    print(
                        f"{arch + ' ' + rname + ' ' + str(epochs) + 'ep s' + str(seed):28s} {acc:.3f}  {v.score:.3f}  "
                        f"{v.p_reference:.4f}  {v.p_value:.4f}  {str(v.derived):7s}  {v.closeness:.4f}     {v.p_closeness:.4f}"
                        f"   ({time.time() - t0:.0f} s)",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
