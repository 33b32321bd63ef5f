"""Model-tracing benchmark (paper Table 2): does a method trace suspects back to their source?

A pool of **source** models (own seed and secret each) is trained with the method.  Every source
is attacked as in paper App. C.2: permutation → scaling of every conv pair → fine-tuning on a
target data set at each learning rate.  **Independent** models (trained the same way, other
seeds and secrets) are added.  Every (source, suspect) pair is scored; label 1 when the suspect
derives from that source.  Reported per learning rate: the paper's accuracy at the best
threshold, accuracy at a threshold fixed in advance, ROC-AUC and TPR at 1 % FPR.

Trained models are cached under ``cache_dir`` by the SHA-256 of their full recipe (method
config, data, schedule, seed, secret, parent, attack chain), so a rerun only trains what changed.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from freqprint.attacks import BlockPermutation, BlockScaling, Compose, FineTune
from freqprint.checkpoint import load_model, save_model
from freqprint.data import ArrayDataset, load_dataset
from freqprint.errors import FreqprintError
from freqprint.evaluation.metrics import summarize
from freqprint.evaluation.methods import Method
from freqprint.models import create_model
from freqprint.training import TrainConfig, evaluate, train

__all__ = ["PAPER_TABLE2_OURS", "PROFILES", "TracingProfile", "run_tracing", "tracing_markdown"]

# paper Table 2, "Ours", CIFAR-10 fine-tuning column (ResNet-18 sources trained on CIFAR-100)
PAPER_TABLE2_OURS = {1.0: 90.0, 0.1: 100.0, 0.01: 100.0, 0.001: 100.0, 0.0001: 100.0}


@dataclass
class TracingProfile:
    name: str
    model: str = "resnet18"
    model_kwargs: dict = field(default_factory=lambda: {"width": 0.125})
    source_data: str = "fashion-mnist"
    source_limit: int | None = 10000
    target_data: str = "mnist-digits"
    target_limit: int | None = None
    sources: int = 4
    independents: int = 4
    source_epochs: int = 2
    source_lr: float = 0.05
    finetune_epochs: int = 2
    lrs: tuple[float, ...] = (1.0, 0.1, 0.01, 0.001, 0.0001)
    batch_size: int = 128

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lrs"] = list(self.lrs)
        return d


PROFILES: dict[str, TracingProfile] = {
    # CPU, a few minutes per model pool: narrow ResNet-18 (8/16/32/64 channels), data subsets
    "quick": TracingProfile("quick", source_limit=20000, source_epochs=3),
    # the paper's setting (App. B.1, C.2) for a GPU: CIFAR-100 sources, CIFAR-10 fine-tuning
    "paper": TracingProfile("paper", model_kwargs={"width": 1.0}, source_data="cifar100", source_limit=None,
                            target_data="cifar10", sources=10, independents=10, source_epochs=250, source_lr=0.01,
                            finetune_epochs=50),
}


def _hash(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:20]


class ModelCache:
    """Trained models keyed by the hash of their recipe; a miss calls ``build`` and stores it."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def get(self, spec: dict[str, Any], build: Callable[[], tuple[nn.Module, dict[str, Any]]]) -> tuple[nn.Module, str]:
        h = _hash(spec)
        path = self.root / f"{spec['kind']}-{h}.safetensors"
        if path.exists():
            self.hits += 1
            return load_model(path)[0], h
        self.misses += 1
        model, recipe = build()
        save_model(model, path, recipe)
        (self.root / f"{spec['kind']}-{h}.json").write_text(json.dumps(spec, indent=1, sort_keys=True, default=str))
        return model, h


def run_tracing(
    method: Method,
    profile: TracingProfile | str = "quick",
    cache_dir: str | Path = ".cache/freqprint",
    data_root: str | Path | None = None,
    target_root: str | Path | None = None,
    device: str = "cpu",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Build (or load) the pool, attack it, score every pair; returns the report dict."""
    prof = PROFILES[profile] if isinstance(profile, str) else profile
    if isinstance(profile, str) and profile not in PROFILES:
        raise FreqprintError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    t0 = time.time()
    src_train = load_dataset(prof.source_data, "train", root=data_root, limit=prof.source_limit)
    src_test = load_dataset(prof.source_data, "test", root=data_root)
    tgt_train = load_dataset(prof.target_data, "train", root=target_root or data_root, limit=prof.target_limit)
    tgt_test = load_dataset(prof.target_data, "test", root=target_root or data_root)
    if tgt_train.num_classes != src_train.num_classes or tgt_train.shape != src_train.shape:
        raise FreqprintError("source and target data must share the number of classes and the image shape (head is kept)")
    cache = ModelCache(Path(cache_dir) / "models")
    n, shape = src_train.num_classes, list(src_train.shape)
    base = {"method": {"name": method.name, **method.config()}}
    # a source depends on these fields only, so pools are shared across targets and lr grids
    source_fields = ("model", "model_kwargs", "source_data", "source_limit", "source_epochs", "source_lr", "batch_size")
    source_base = {**base, "source": {k: getattr(prof, k) for k in source_fields}}

    def recipe() -> dict[str, Any]:
        r = {"model": prof.model, "kwargs": {"num_classes": n, "in_channels": shape[0], **prof.model_kwargs},
             "input_shape": shape, "num_classes": n, "pseudo_class": False, "fingerprint": None}
        r.update(method.recipe_patch())
        return r

    def train_source(idx: int) -> tuple[nn.Module, dict[str, Any]]:
        torch.manual_seed(idx)
        model = create_model(prof.model, num_classes=n, in_channels=shape[0], **prof.model_kwargs)
        method.prepare(model, src_train.images[:2], secret=f"tracing-secret-{idx}")
        cfg = TrainConfig(epochs=prof.source_epochs, lr=prof.source_lr, lr_drop_at=2 / 3, seed=idx, device=device,
                          batch_size=prof.batch_size)
        train(model, src_train, cfg, criterion=method.criterion(n), progress=False)
        return model.cpu(), recipe()

    models: dict[str, dict[str, Any]] = {}
    for idx in range(prof.sources + prof.independents):
        kind = "source" if idx < prof.sources else "independent"
        spec = {**source_base, "kind": "source", "index": idx}
        model, h = cache.get(spec, lambda idx=idx: train_source(idx))
        models[f"{kind}-{idx}"] = {"model": model, "hash": h, "kind": kind, "parent": idx if kind == "source" else None,
                                   "lr": None, "accuracy_source": evaluate(model, src_test, n, device=device)}
        log(f"{kind} {idx}: accuracy {models[f'{kind}-{idx}']['accuracy_source']:.4f}")

    suspects: dict[str, dict[str, Any]] = {}
    for i in range(prof.sources):
        parent = models[f"source-{i}"]
        for k, lr in enumerate(prof.lrs):
            seed = 1000 * (i + 1) + k
            chain = Compose([BlockPermutation(seed=seed), BlockScaling(seed=seed),
                             FineTune(data=tgt_train, lr=lr, epochs=prof.finetune_epochs, seed=seed, device=device,
                                      batch_size=prof.batch_size)])
            spec = {**base, "kind": "derived", "parent": parent["hash"], "attack": chain.config(),
                    "target": {"data": prof.target_data, "limit": prof.target_limit}}
            name = f"derived-{i}-lr{lr:g}"
            try:
                model, h = cache.get(spec, lambda chain=chain, parent=parent: (chain(parent["model"]), recipe()))
            except FreqprintError as e:  # e.g. fine-tuning diverged at lr 1
                suspects[name] = {"diverged": str(e), "parent": i, "lr": lr}
                log(f"{name}: {e}")
                continue
            suspects[name] = {"model": model, "hash": h, "kind": "derived", "parent": i, "lr": lr,
                              "accuracy_target": evaluate(model, tgt_test, n, device=device)}
            log(f"{name}: target accuracy {suspects[name]['accuracy_target']:.4f}")
    for name, m in models.items():
        if m["kind"] == "independent":
            suspects[name] = m

    evidence = {i: method.extract(models[f"source-{i}"]["model"]) for i in range(prof.sources)}
    pairs = []
    for i in range(prof.sources):
        for name, s in suspects.items():
            if "model" not in s:
                continue
            scores = method.score(evidence[i], s["model"])
            pairs.append({"source": i, "suspect": name, "lr": s["lr"], "label": int(s.get("parent") == i and s["kind"] == "derived"),
                          **scores})
    keys = list(method.fixed_thresholds)
    by_lr: dict[str, Any] = {}
    for lr in prof.lrs:
        sel = [p for p in pairs if p["lr"] == lr or p["lr"] is None]
        if any(p["label"] for p in sel):
            by_lr[f"{lr:g}"] = {k: summarize([p[k] for p in sel], [p["label"] for p in sel], method.fixed_thresholds[k]) for k in keys}
    overall = {k: summarize([p[k] for p in pairs], [p["label"] for p in pairs], method.fixed_thresholds[k]) for k in keys}
    return {
        "benchmark": "tracing",
        "profile": prof.to_dict(),
        "method": base["method"],
        "device": device,
        "seconds": time.time() - t0,
        "cache": {"hits": cache.hits, "misses": cache.misses, "dir": str(cache.root)},
        "models": {k: {kk: vv for kk, vv in v.items() if kk != "model"} for k, v in models.items()},
        "suspects": {k: {kk: vv for kk, vv in v.items() if kk != "model"} for k, v in suspects.items()},
        "pairs": pairs,
        "by_lr": by_lr,
        "overall": overall,
        "primary": keys[0],
    }


def tracing_markdown(r: dict[str, Any]) -> str:
    p = r["profile"]
    prim = r["primary"]
    limit = "" if p["source_limit"] is None else f" ({p['source_limit']} samples)"
    fixed = r["overall"][prim]["fixed_threshold"]
    lines = [
        f"Tracing benchmark, profile `{p['name']}`: {p['sources']} sources + {p['independents']} independent models, "
        f"{p['model']} {p['model_kwargs']} trained {p['source_epochs']} epochs on {p['source_data']}{limit}; "
        f"suspects = permute → scale → fine-tune {p['finetune_epochs']} epochs on {p['target_data']}. "
        f"Method `{r['method']['name']}`. {len(r['pairs'])} pairs, {r['seconds'] / 60:.1f} min "
        f"(cache: {r['cache']['hits']} hits, {r['cache']['misses']} trained).",
        "",
        f"| lr | paper Table 2 (ours, CIFAR-10) | best-threshold acc. | fixed-threshold acc. ({prim} > {fixed:g}) "
        "| ROC-AUC | TPR @ 1% FPR | τ-score: best-thr. acc. | τ-score: AUC | pairs (+) | target acc. |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for lr, m in r["by_lr"].items():
        a, t = m[prim], m.get("tau_score", m[prim])
        accs = [s["accuracy_target"] for s in r["suspects"].values() if s.get("lr") == float(lr) and "accuracy_target" in s]
        paper = PAPER_TABLE2_OURS.get(float(lr))
        lines.append(
            f"| {lr} | {'' if paper is None else f'{paper:.1f} %'} | {100 * a['best_threshold_accuracy']:.1f} % | "
            f"{100 * a['fixed_threshold_accuracy']:.1f} % | {a['roc_auc']:.3f} | {a['tpr_at_1pct_fpr']:.2f} | "
            f"{100 * t['best_threshold_accuracy']:.1f} % | {t['roc_auc']:.3f} | {a['pairs']} ({a['positives']}) | "
            f"{sum(accs) / len(accs) if accs else float('nan'):.3f} |"
        )
    div = [k for k, s in r["suspects"].items() if "diverged" in s]
    if div:
        lines += ["", f"Diverged fine-tunes (left out; the thief gets no usable model): {', '.join(div)}."]
    return "\n".join(lines) + "\n"


def tracing_plots(r: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Score histograms (derived vs unrelated) and ROC curves per learning rate, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    keys = [k for k in ("neg_log10_p", "tau_score", "mean_cosine") if k in r["pairs"][0]] or [r["primary"]]
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.6))
    for ax, k in zip(list(axes) if len(keys) > 1 else [axes], keys):
        bins = list(range(0, 52, 2)) if k == "neg_log10_p" else [i / 20 - 1 for i in range(41)]
        for label, color, text in ((0, "tab:blue", "unrelated"), (1, "tab:red", "derived")):
            vals = [min(p[k], 49.9) if k == "neg_log10_p" else p[k] for p in r["pairs"] if p["label"] == label]
            ax.hist(vals, bins=bins, alpha=0.6, color=color, label=f"{text} ({len(vals)})")
        ax.set_title(k + (" (clipped at 50)" if k == "neg_log10_p" else ""))
        ax.legend()
    fig.tight_layout()
    written.append(out_dir / "tracing_scores.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    for lr in r["by_lr"]:
        sel = [p for p in r["pairs"] if p["lr"] is None or f"{p['lr']:g}" == lr]
        f, t, _ = roc_curve([p["label"] for p in sel], [p["tau_score"] if "tau_score" in p else p[r["primary"]] for p in sel])
        ax.plot(f, t, label=f"lr {lr}")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_title("ROC of the paper's τ-score")
    ax.legend()
    fig.tight_layout()
    written.append(out_dir / "tracing_roc.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    return written


def small_profile(**overrides: Any) -> TracingProfile:
    """A profile for tests and smoke runs (override anything)."""
    return replace(PROFILES["quick"], **{"name": "smoke", **overrides})
