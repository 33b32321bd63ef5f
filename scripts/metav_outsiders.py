"""Score a classification MetaV claim on suspects built here, outside the ensemble code (issue 24).

The suspects use recipes and families that no default manifest contains, so they test what the
claim does on models its owner did not imagine:

* far negatives: a width-8 SmallCNN and a 64-unit MLP trained with Adam on MNIST digits,
  scikit-learn's digits, Fashion-MNIST with random labels and Fashion-MNIST rotated by 90°;
  untrained networks; APIs that answer uniformly, a constant, or at random;
* close negatives: a width-16 SmallCNN trained with Adam on Fashion-MNIST's test images;
* positives: students of the source (T = 1 probabilities, Adam) in a 256-unit MLP and a width-8
  SmallCNN, a hard-label student, the source fine-tuned with Adam, the source behind a
  label-only API.

Usage (the claim's ensemble cache holds the source)::

    python scripts/metav_outsiders.py CLAIM --cache .cache/freqprint/metav --out /tmp/outsiders

It writes the suspects once (reused on a rerun), runs ``freqprint metav verify --json`` on all of
them and prints one row per suspect and the totals.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import torch
import torch.nn.functional as F

APIS = """
import hashlib, torch
def uniform(x):
    return torch.zeros(len(x), 10)
def constant(x):
    return torch.tensor([[4.0, 0, 1, 0, 0, 2, 0, 0, 0, 0]]).expand(len(x), 10)
def random(x):
    out = []
    for row in x.reshape(len(x), -1):
        g = torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(row.numpy().tobytes()).digest()[:6], "little"))
        out.append(3 * torch.randn(1, 10, generator=g))
    return torch.cat(out)
def label_only(x):
    import os
    from freqprint.io.checkpoint import load_model
    global _src
    if "_src" not in globals():
        _src, _ = load_model(os.environ["OUTSIDER_SOURCE"])
        _src.eval()
    with torch.no_grad():
        return torch.nn.functional.one_hot(_src(x)[:, :10].argmax(1), 10).float()
"""


def fit(model: torch.nn.Module, x: torch.Tensor, target, epochs: int = 2, lr: float = 1e-3, seed: int = 0, soft: bool = False):
    """Adam, batch 64; ``target`` labels, or a teacher (probabilities at T = 1) with ``soft``."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            xb = x[perm[i : i + 64]]
            out = model(xb)[:, :10]
            if soft:
                with torch.no_grad():
                    p = F.softmax(target(xb)[:, :10], 1)
                loss = F.kl_div(F.log_softmax(out, 1), p, reduction="batchmean")
            else:
                loss = F.cross_entropy(out, target[perm[i : i + 64]])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def build(out: Path, source_path: Path) -> dict[str, tuple[str, int]]:
    """Every suspect: name → (spec for `metav verify`, label 1 = derived)."""
    from freqprint.data import load_dataset
    from freqprint.io.checkpoint import load_model, save_model
    from freqprint.models import create_model

    torch.set_num_threads(2)
    specs: dict[str, tuple[str, int]] = {}
    recipes = {
        "cnn8": {"model": "smallcnn", "kwargs": {"num_classes": 10, "width": 8}, "input_shape": [1, 28, 28]},
        "cnn16": {"model": "smallcnn", "kwargs": {"num_classes": 10, "width": 16}, "input_shape": [1, 28, 28]},
        "mlp64": {"model": "mlp", "kwargs": {"num_classes": 10, "hidden": 64}, "input_shape": [1, 28, 28]},
        "mlp256": {"model": "mlp", "kwargs": {"num_classes": 10, "hidden": 256}, "input_shape": [1, 28, 28]},
        "lenet": {"model": "lenet", "kwargs": {"num_classes": 10}, "input_shape": [1, 28, 28]},
    }

    def save(name: str, arch: str, make, label: int) -> None:
        path = out / f"{name}.safetensors"
        if not path.exists():
            r = recipes[arch]
            torch.manual_seed(zlib.crc32(name.encode()))  # the same suspects on every run
            model = make(create_model(r["model"], **r["kwargs"]))
            save_model(model, path, r)
        specs[name] = (str(path), label)

    fashion = load_dataset("fashion-mnist", "test")
    fx, fy = fashion.images[:4000], fashion.labels[:4000]
    g = torch.Generator().manual_seed(5)
    others = {
        "mnist": (lambda d: (d.images[:4000], d.labels[:4000]))(load_dataset("mnist-digits", "train")),
        "sklearn-digits": (lambda d: (d.images, d.labels))(load_dataset("sklearn-digits", "train")),
        "fashion-random-labels": (fx, torch.randint(0, 10, (len(fx),), generator=g)),
        "fashion-rot90": (torch.rot90(fx, 1, (2, 3)), fy),
    }
    for dname, (x, y) in others.items():
        for arch in ("cnn8", "mlp64"):
            save(f"far-{dname}-{arch}", arch, lambda m, x=x, y=y: fit(m, x, y), 0)
    for arch in ("cnn8", "mlp64", "lenet"):
        save(f"far-untrained-{arch}", arch, lambda m: m.eval(), 0)
    for i in range(2):
        save(f"close-indep-adam-{i}", "cnn16", lambda m, i=i: fit(m, fx, fy, 2, seed=i), 0)
    source, _ = load_model(source_path)
    source.eval()
    thief = load_dataset("fashion-mnist", "train").images[-4000:]
    for arch in ("mlp256", "cnn8"):
        save(f"pos-student-t1-adam-{arch}", arch, lambda m: fit(m, thief, source, 3, soft=True), 1)
    with torch.no_grad():
        hard = torch.cat([source(thief[i : i + 500])[:, :10].argmax(1) for i in range(0, len(thief), 500)])
    save("pos-student-hard-cnn8", "cnn8", lambda m: fit(m, thief, hard, 3), 1)
    # the source fine-tuned with Adam (its own recipe: the pseudo class stays in the head)
    ft_path = out / "pos-finetuned-adam.safetensors"
    if not ft_path.exists():
        import copy

        m = copy.deepcopy(source)
        with torch.no_grad():
            y = m(thief)[:, :10].argmax(1)
        fit(m, thief, y, 1, lr=1e-4)
        from freqprint.io.checkpoint import read_recipe

        save_model(m, ft_path, read_recipe(source_path))
    specs["pos-finetuned-adam"] = (str(ft_path), 1)
    (out / "outsider_apis.py").write_text(APIS)
    for name in ("uniform", "constant", "random"):
        specs[f"far-api-{name}"] = (f"py:outsider_apis:{name}", 0)
    specs["pos-api-label-only"] = ("py:outsider_apis:label_only", 1)
    return specs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("claim", type=Path)
    ap.add_argument("--cache", type=Path, default=Path(".cache/freqprint/metav"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/metav-outsiders"))
    ap.add_argument("--freqprint", default=str(Path(sys.executable).with_name("freqprint")))
    args = ap.parse_args()
    from safetensors import safe_open

    with safe_open(str(args.claim), "pt") as f:
        meta = json.loads(f.metadata()["freqprint.metav"])
    source = args.cache / f"classification-train-{meta['model_hashes']['source']}.safetensors"
    args.out.mkdir(parents=True, exist_ok=True)
    specs = build(args.out, source)
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(args.out), os.environ.get("PYTHONPATH", "")]), OUTSIDER_SOURCE=str(source)
    )
    cmd = [args.freqprint, "metav", "verify", str(args.claim), *[s for s, _ in specs.values()], "--json", "--allow-code"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode not in (0, 1):
        sys.exit(f"metav verify failed ({r.returncode}): {r.stderr.strip()}")
    rows = json.loads(r.stdout)["suspects"]
    tp = fn = tn = fp = 0
    print(f"claim {args.claim} (format {meta['format']}, λ = {meta['threshold']:.4f})")
    print(f"{'suspect':34} {'label':8} {'score':>7} {'p':>9} verdict")
    for (name, (_, label)), row in zip(specs.items(), rows):
        derived = bool(row["derived"])
        p = f"{row['p_value']:.2g}" if "p_value" in row else "–"
        print(
            f"{name:34} {'derived' if label else 'innocent':8} {row['score']:7.4f} {p:>9} {'DERIVED' if derived else 'not derived'}"
        )
        tp += label and derived
        fn += label and not derived
        tn += (not label) and not derived
        fp += (not label) and derived
    print(f"TPR {tp}/{tp + fn}, TNR {tn}/{tn + fp} (innocents accused: {fp})")


if __name__ == "__main__":
    main()
