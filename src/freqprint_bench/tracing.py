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

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from freqprint.attacks import BlockPermutation, BlockScaling, Compose, FineTune
from freqprint.data import ArrayDataset, load_dataset
from freqprint.errors import FreqprintError, InvalidArgument
from freqprint.io.cache import ModelCache
from freqprint.methods import Method, MethodContext, NoFingerprint
from freqprint.models import create_model
from freqprint.stats.metrics import summarize
from freqprint.training import TrainConfig, evaluate, train
from freqprint.verification.backbone import OwnerInit
from freqprint_bench.report import load_profiles

__all__ = [
    "PAPER_ACCURACY_COST",
    "PAPER_TABLE2",
    "PAPER_TABLE2_OURS",
    "PROFILES",
    "TracingProfile",
    "accuracy_cost_markdown",
    "run_accuracy_cost",
    "run_tracing",
    "train_source",
    "tracing_markdown",
    "tracing_plots",
]

# paper Table 2, CIFAR-10 fine-tuning column (ResNet-18 sources trained on CIFAR-100), lr -> accuracy %
_LRS = (1.0, 0.1, 0.01, 0.001, 0.0001)
PAPER_TABLE2 = {
    "rs": dict(zip(_LRS, (51.1, 100.0, 100.0, 100.0, 100.0))),
    "mw": dict(zip(_LRS, (50.0, 54.4, 95.0, 100.0, 100.0))),
    "ics": dict(zip(_LRS, (56.7, 60.6, 80.0, 100.0, 100.0))),
    "cka": dict(zip(_LRS, (55.0, 57.2, 80.0, 100.0, 100.0))),
    "ours": dict(zip(_LRS, (90.0, 100.0, 100.0, 100.0, 100.0))),
}
PAPER_TABLE2_OURS = PAPER_TABLE2["ours"]
# rebuttal Table C: clean accuracy (%) of ResNet-18 on CIFAR-10 / CIFAR-100 per method
PAPER_ACCURACY_COST = {"plain": (94.8, 76.3), "rs": (84.2, 59.9), "mw": (87.8, 62.1), "ours": (92.2, 75.5)}


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


PROFILES: dict[str, TracingProfile] = load_profiles("tracing", TracingProfile, name_field="name")  # profiles/tracing.json


@dataclass
class _Plan:
    """What a pool's training jobs need, and nothing else (no cache, no log): picklable, so a job
    can train on another process or machine (``run_tracing(executor=...)``)."""

    prof: TracingProfile
    data: dict[str, ArrayDataset]
    device: str

    @property
    def n(self) -> int:
        return self.data["src_train"].num_classes

    @property
    def shape(self) -> list[int]:
        return list(self.data["src_train"].shape)

    def context(self, idx: int) -> MethodContext:
        p = self.prof
        init = OwnerInit(p.model, {"num_classes": self.n, "in_channels": self.shape[0], **p.model_kwargs}, idx, True)
        return MethodContext(secret=f"tracing-secret-{idx}", num_classes=self.n, data=self.data["src_train"], init=init)

    def recipe(self, method: Method) -> dict[str, Any]:
        p = self.prof
        r = {
            "model": p.model,
            "kwargs": {"num_classes": self.n, "in_channels": self.shape[0], **p.model_kwargs},
            "input_shape": self.shape,
            "num_classes": self.n,
            "pseudo_class": False,
            "fingerprint": None,
        }
        r.update(method.recipe_patch())
        return r

    def chain(self, i: int, k: int, lr: float, device: str | None = None) -> Compose:
        """Source i's attack at the k-th learning rate: permutation → scaling → fine-tuning."""
        p, seed = self.prof, 1000 * (i + 1) + k
        return Compose(
            [
                BlockPermutation(seed=seed),
                BlockScaling(seed=seed),
                FineTune(
                    data=self.data["tgt_train"],
                    lr=lr,
                    epochs=p.finetune_epochs,
                    seed=seed,
                    device=device or self.device,
                    batch_size=p.batch_size,
                ),
            ]
        )


def _train_source(plan: _Plan, method: Method, idx: int) -> tuple[nn.Module, dict[str, Any]]:
    p = plan.prof
    torch.manual_seed(idx)
    model = create_model(p.model, num_classes=plan.n, in_channels=plan.shape[0], **p.model_kwargs)
    ctx = plan.context(idx)
    method.prepare(model, ctx)
    cfg = TrainConfig(
        epochs=p.source_epochs, lr=p.source_lr, lr_drop_at=2 / 3, seed=idx, device=plan.device, batch_size=p.batch_size
    )
    train(model, ctx.data, cfg, criterion=method.criterion(ctx), progress=False)
    return model.cpu(), plan.recipe(method)


def train_source(
    profile: TracingProfile | str,
    method: Method,
    index: int,
    data_root: str | Path | None = None,
    target_root: str | Path | None = None,
    device: str = "cpu",
) -> tuple[nn.Module, dict[str, Any]]:
    """Source ``index`` of ``profile`` trained in this process, as a pool job trains it:
    ``(model, recipe)``.  The executor path must give the same weights (a test checks)."""
    prof = _profile(profile)
    return _train_source(_Plan(prof, _load_data(prof, data_root, target_root), device), method, index)


def _derive(plan: _Plan, method: Method, i: int, k: int, lr: float, parent: nn.Module) -> tuple[nn.Module, dict[str, Any]]:
    return plan.chain(i, k, lr)(parent), plan.recipe(method)


class _Pools:
    """Trains (or loads from the cache) one pool of source, independent and derived models per
    embedding method, all with the same seeds, secrets and attack chains.  With an ``executor``
    (:mod:`freqprint.executor`), each stage's missing models — the sources and independents, then
    the derived ones — first train as parallel jobs (:meth:`ModelCache.prefill`), and the pass
    below only loads them."""

    def __init__(
        self,
        prof: TracingProfile,
        cache: ModelCache,
        data: dict[str, ArrayDataset],
        device: str,
        log: Callable[[str], None],
        executor: Any = None,
    ) -> None:
        self.plan = _Plan(prof, data, device)  # what the training jobs need; the rest stays here
        self.prof, self.data, self.device = prof, data, device
        self.cache, self.log, self.executor = cache, log, executor

    def context(self, idx: int) -> MethodContext:
        return self.plan.context(idx)

    def _base(self, method: Method) -> dict[str, Any]:
        return {"method": {"name": method.name, **method.config()}}

    def _source_spec(self, method: Method, idx: int) -> dict[str, Any]:
        p = self.prof
        # a source depends on these fields only, so pools are shared across targets and lr grids
        fields = ("model", "model_kwargs", "source_data", "source_limit", "source_epochs", "source_lr", "batch_size")
        return {**self._base(method), "source": {k: getattr(p, k) for k in fields}, "kind": "source", "index": idx}

    def source(self, method: Method, idx: int) -> tuple[nn.Module, str]:
        """Model ``idx`` of the pool (sources first, then independents): seed ``idx``, secret ``idx``."""
        return self.cache.get(self._source_spec(method, idx), lambda: _train_source(self.plan, method, idx))

    def _derived_spec(self, method: Method, parent_hash: str, i: int, k: int, lr: float) -> dict[str, Any]:
        p = self.prof
        return {
            **self._base(method),
            "kind": "derived",
            "parent": parent_hash,
            "attack": self.plan.chain(i, k, lr).config(),
            "target": {"data": p.target_data, "limit": p.target_limit},
        }

    def pool(self, method: Method, derive: bool = True) -> dict[str, Any]:
        p, dev = self.prof, self.device
        n_models = p.sources + p.independents
        if self.executor is not None:
            n = self.cache.prefill(
                [(self._source_spec(method, idx), None, (method, idx)) for idx in range(n_models)],
                _train_source,
                self.executor,
                self.plan,
                self.log,
            )
            self.log(f"[{method.name}] trained {n} source/independent models on the executor")
        models: dict[str, dict[str, Any]] = {}
        for idx in range(n_models):
            kind = "source" if idx < p.sources else "independent"
            model, h = self.source(method, idx)
            acc = evaluate(model, self.data["src_test"], self.plan.n, device=dev)
            models[f"{kind}-{idx}"] = {
                "model": model,
                "hash": h,
                "kind": kind,
                "parent": idx if kind == "source" else None,
                "lr": None,
                "accuracy_source": acc,
            }
            self.log(f"[{method.name}] {kind} {idx}: accuracy {acc:.4f}")
        grid = [(i, k, lr) for i in range(p.sources if derive else 0) for k, lr in enumerate(p.lrs)]
        if self.executor is not None and grid:
            n = self.cache.prefill(
                [
                    (
                        self._derived_spec(method, models[f"source-{i}"]["hash"], i, k, lr),
                        None,
                        (method, i, k, lr, models[f"source-{i}"]["model"]),
                    )
                    for i, k, lr in grid
                ],
                _derive,
                self.executor,
                self.plan,
                self.log,
            )
            self.log(f"[{method.name}] trained {n} derived models on the executor")
        suspects: dict[str, dict[str, Any]] = {}
        for i, k, lr in grid:
            parent = models[f"source-{i}"]
            spec = self._derived_spec(method, parent["hash"], i, k, lr)
            name = f"derived-{i}-lr{lr:g}"
            try:
                model, h = self.cache.get(spec, partial(_derive, self.plan, method, i, k, lr, parent["model"]))
            except FreqprintError as e:  # e.g. fine-tuning diverged at lr 1
                suspects[name] = {"diverged": str(e), "parent": i, "lr": lr}
                self.log(f"[{method.name}] {name}: {e}")
                continue
            acc = evaluate(model, self.data["tgt_test"], self.plan.n, device=dev)
            suspects[name] = {"model": model, "hash": h, "kind": "derived", "parent": i, "lr": lr, "accuracy_target": acc}
            self.log(f"[{method.name}] {name}: target accuracy {acc:.4f}")
        for name, m in models.items():
            if m["kind"] == "independent":
                suspects[name] = m
        return {"method": self._base(method)["method"], "models": models, "suspects": suspects}


def _load_data(prof: TracingProfile, data_root: str | Path | None, target_root: str | Path | None) -> dict[str, ArrayDataset]:
    d = {
        "src_train": load_dataset(prof.source_data, "train", root=data_root, limit=prof.source_limit),
        "src_test": load_dataset(prof.source_data, "test", root=data_root),
        "tgt_train": load_dataset(prof.target_data, "train", root=target_root or data_root, limit=prof.target_limit),
        "tgt_test": load_dataset(prof.target_data, "test", root=target_root or data_root),
    }
    if d["tgt_train"].num_classes != d["src_train"].num_classes or d["tgt_train"].shape != d["src_train"].shape:
        raise FreqprintError("source and target data must share the number of classes and the image shape (head is kept)")
    return d


def _profile(profile: TracingProfile | str) -> TracingProfile:
    if isinstance(profile, str):
        if profile not in PROFILES:
            raise InvalidArgument(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
        return PROFILES[profile]
    return profile


def _score(method: Method, pools: _Pools, pool: dict[str, Any]) -> dict[str, Any]:
    prof = pools.prof
    evidence = {i: method.extract(pool["models"][f"source-{i}"]["model"], pools.context(i)) for i in range(prof.sources)}
    pairs = []
    for i in range(prof.sources):
        for name, s in pool["suspects"].items():
            if "model" not in s:
                continue
            label = int(s.get("parent") == i and s["kind"] == "derived")
            pairs.append({"source": i, "suspect": name, "lr": s["lr"], "label": label, **method.score(evidence[i], s["model"])})
    keys = list(method.fixed_thresholds)
    by_lr: dict[str, Any] = {}
    for lr in prof.lrs:
        sel = [p for p in pairs if p["lr"] == lr or p["lr"] is None]
        if any(p["label"] for p in sel):
            by_lr[f"{lr:g}"] = {
                k: summarize([p[k] for p in sel], [p["label"] for p in sel], method.fixed_thresholds[k]) for k in keys
            }
    overall = {k: summarize([p[k] for p in pairs], [p["label"] for p in pairs], method.fixed_thresholds[k]) for k in keys}
    summary = {}
    for i, ev in evidence.items():  # scalar facts the method reports about its own evidence (RS: certificate)
        if isinstance(ev, dict):
            summary[str(i)] = {k: v for k, v in ev.items() if isinstance(v, (int, float))}
    return {
        "config": {"name": method.name, **method.config()},
        "pairs": pairs,
        "by_lr": by_lr,
        "overall": overall,
        "primary": keys[0],
        "evidence": summary,
    }


def run_tracing(
    methods: Method | Sequence[Method],
    profile: TracingProfile | str = "quick",
    cache_dir: str | Path = ".cache/freqprint",
    data_root: str | Path | None = None,
    target_root: str | Path | None = None,
    device: str = "cpu",
    log: Callable[[str], None] = print,
    executor: Any = None,
) -> dict[str, Any]:
    """Build (or load) one pool per embedding method, attack it, score every pair with every method.

    Passive methods (``embeds`` False: ICS, CKA) score the pool of the first embedding method
    given (the same models, as in the paper), or a plain pool when none is given.  ``executor``
    (:func:`freqprint.executor.create_executor`, e.g. Ray with a GPU per job) trains the missing
    models in parallel first; scoring stays in this process.
    """
    methods = list(methods) if isinstance(methods, (list, tuple)) else [cast(Method, methods)]
    if not methods:
        raise FreqprintError("no method to evaluate")
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise InvalidArgument(f"method names must be unique: {names}")
    prof = _profile(profile)
    t0 = time.time()
    cache = ModelCache(Path(cache_dir) / "models")
    pools_ = _Pools(prof, cache, _load_data(prof, data_root, target_root), device, log, executor)
    embedding = [m for m in methods if m.embeds] or [NoFingerprint()]
    host = embedding[0].name
    pools = {m.name: pools_.pool(m) for m in embedding}
    results = {}
    for m in methods:
        pool = m.name if m.embeds else host
        results[m.name] = {**_score(m, pools_, pools[pool]), "pool": pool}
        log(f"[{m.name}] scored {len(results[m.name]['pairs'])} pairs on the {pool!r} pool")
    return {
        "benchmark": "tracing",
        "profile": prof.to_dict(),
        "device": device,
        "seconds": time.time() - t0,
        "cache": {"hits": cache.hits, "misses": cache.misses, "trained_on_executor": cache.prefilled, "dir": str(cache.root)},
        "pools": {
            k: {
                "method": v["method"],
                "models": {kk: {x: y for x, y in vv.items() if x != "model"} for kk, vv in v["models"].items()},
                "suspects": {kk: {x: y for x, y in vv.items() if x != "model"} for kk, vv in v["suspects"].items()},
            }
            for k, v in pools.items()
        },
        "methods": results,
    }


def run_accuracy_cost(
    methods: Sequence[Method],
    profile: TracingProfile | str = "quick",
    cache_dir: str | Path = ".cache/freqprint",
    data_root: str | Path | None = None,
    device: str = "cpu",
    log: Callable[[str], None] = print,
    executor: Any = None,
) -> dict[str, Any]:
    """Clean source accuracy of every pool model of each embedding method and of plain training
    (the rebuttal's accuracy-cost table).  Reuses the tracing cache: same recipes, same models."""
    prof = _profile(profile)
    t0 = time.time()
    cache = ModelCache(Path(cache_dir) / "models")
    data = {
        "src_train": load_dataset(prof.source_data, "train", root=data_root, limit=prof.source_limit),
        "src_test": load_dataset(prof.source_data, "test", root=data_root),
    }
    pools_ = _Pools(prof, cache, {**data, "tgt_train": data["src_train"], "tgt_test": data["src_test"]}, device, log, executor)
    rows = {}
    for m in [NoFingerprint(), *[m for m in methods if m.embeds]]:
        accs = [a["accuracy_source"] for a in pools_.pool(m, derive=False)["models"].values()]
        rows[m.name] = {"accuracies": accs, "mean": sum(accs) / len(accs), "min": min(accs), "max": max(accs)}
    return {
        "benchmark": "accuracy-cost",
        "profile": prof.to_dict(),
        "device": device,
        "seconds": time.time() - t0,
        "cache": {"hits": cache.hits, "misses": cache.misses},
        "methods": rows,
    }


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def tracing_markdown(r: dict[str, Any]) -> str:
    p = r["profile"]
    limit = "" if p["source_limit"] is None else f" ({p['source_limit']} samples)"
    described = ", ".join(f"`{k}` ({len(v['pairs'])} pairs, pool `{v['pool']}`)" for k, v in r["methods"].items())
    lines = [
        f"Tracing benchmark, profile `{p['name']}`: {p['sources']} sources + {p['independents']} independent models per pool, "
        f"{p['model']} {p['model_kwargs']} trained {p['source_epochs']} epochs on {p['source_data']}{limit}; "
        f"suspects = permute → scale → fine-tune {p['finetune_epochs']} epochs on {p['target_data']}. "
        f"Methods: {described}. "
        f"{r['seconds'] / 60:.1f} min (cache: {r['cache']['hits']} hits, {r['cache']['misses']} trained).",
        "",
    ]
    if len(r["methods"]) > 1:
        lrs = list(next(iter(r["methods"].values()))["by_lr"])
        head = "| method (score) | " + " | ".join(f"lr {lr}" for lr in lrs) + " |"
        rule = "|---|" + "---|" * len(lrs)

        def table(cell: Callable[[str, dict[str, Any], str], str]) -> list[str]:
            return [head, rule] + [
                f"| {name} ({m['primary']}) | " + " | ".join(cell(name, m, lr) for lr in lrs) + " |"
                for name, m in r["methods"].items()
            ]

        def paper_cell(name: str, m: dict[str, Any], lr: str) -> str:
            a = m["by_lr"][lr][m["primary"]]
            pp = PAPER_TABLE2.get(name, {}).get(float(lr))
            return (
                f"{100 * a['best_balanced_accuracy']:.1f} % ({100 * a['best_threshold_accuracy']:.1f} %) | "
                f"{'' if pp is None else f'{pp:.1f} %'}"
            )

        lines += [
            "Best-threshold tracing accuracy, the paper's metric: balanced, i.e. (TPR + TNR)/2, with the plain "
            "accuracy over our unbalanced pairs in parentheses; the paper's Table 2 (CIFAR-10 column) beside it:",
            "",
            "| method (score) | " + " | ".join(f"lr {lr}: ours | paper" for lr in lrs) + " |",
            "|---|" + "---|---|" * len(lrs),
        ]
        lines += [
            f"| {name} ({m['primary']}) | " + " | ".join(paper_cell(name, m, lr) for lr in lrs) + " |"
            for name, m in r["methods"].items()
        ]
        lines += ["", "ROC-AUC (threshold-free; 0.5 = chance):", ""]
        lines += table(lambda name, m, lr: f"{m['by_lr'][lr][m['primary']]['roc_auc']:.3f}")
        lines += ["", "Accuracy at the threshold fixed in advance (see each method's table for the threshold):", ""]
        lines += table(lambda name, m, lr: f"{100 * m['by_lr'][lr][m['primary']]['fixed_threshold_accuracy']:.1f} %")
        lines.append("")
    for name, m in r["methods"].items():
        prim = m["primary"]
        extra = [k for k in m["overall"] if k != prim]
        fixed = m["overall"][prim]["fixed_threshold"]
        pool = r["pools"][m["pool"]]
        lines += [
            f"Method `{name}` (score `{prim}`, scored on the `{m['pool']}` pool):",
            "",
            f"| lr | paper Table 2 (CIFAR-10) | best-threshold acc. (balanced) | fixed-threshold acc. ({prim} > {fixed:g}) | ROC-AUC "
            "| TPR @ 1% FPR | " + "".join(f"{k}: best-thr. acc. / AUC | " for k in extra) + "pairs (+) | target acc. |",
            "|---|---|---|---|---|---|" + "---|" * len(extra) + "---|---|",
        ]
        for lr, row in m["by_lr"].items():
            a = row[prim]
            accs = [
                s["accuracy_target"] for s in pool["suspects"].values() if s.get("lr") == float(lr) and "accuracy_target" in s
            ]
            paper = PAPER_TABLE2.get(name, {}).get(float(lr))
            lines.append(
                f"| {lr} | {'' if paper is None else f'{paper:.1f} %'} | {100 * a['best_threshold_accuracy']:.1f} % "
                f"({100 * a['best_balanced_accuracy']:.1f} %) | "
                f"{100 * a['fixed_threshold_accuracy']:.1f} % | {a['roc_auc']:.3f} | {a['tpr_at_1pct_fpr']:.2f} | "
                + "".join(f"{100 * row[k]['best_threshold_accuracy']:.1f} % / {row[k]['roc_auc']:.3f} | " for k in extra)
                + f"{a['pairs']} ({a['positives']}) | {_mean(accs):.3f} |"
            )
        if name == "rs" or any("certified_radius_median" in e for e in m["evidence"].values()):
            radii = [e["certified_radius_median"] for e in m["evidence"].values() if "certified_radius_median" in e]
            dists = [q["param_distance"] for q in m["pairs"] if q["label"] == 1 and "param_distance" in q]
            if radii and dists:
                lines += [
                    "",
                    f"RS certificate: median certified ℓ2 parameter radius per source {min(radii):.3g}–{max(radii):.3g}; "
                    f"the derived suspects moved {min(dists):.3g}–{max(dists):.3g} from their source, "
                    f"{sum(d < max(radii) for d in dists)} of {len(dists)} inside the largest radius.",
                ]
        div = [k for k, s in pool["suspects"].items() if "diverged" in s]
        if div:
            lines += ["", f"Diverged fine-tunes (left out; the thief gets no usable model): {', '.join(div)}."]
        lines.append("")
    return "\n".join(lines)


def accuracy_cost_markdown(r: dict[str, Any]) -> str:
    p = r["profile"]
    lines = [
        f"Clean accuracy on the {p['source_data']} test set, {p['model']} {p['model_kwargs']}, "
        f"{p['source_epochs']} epochs, {p['sources'] + p['independents']} models per method (seeds 0..), "
        f"{r['seconds'] / 60:.1f} min (cache: {r['cache']['hits']} hits, {r['cache']['misses']} trained).",
        "",
        "| method | ours: mean (min–max) | cost vs plain | paper (ResNet-18, CIFAR-10 / CIFAR-100) |",
        "|---|---|---|---|",
    ]
    plain = r["methods"]["plain"]["mean"]
    for name, row in r["methods"].items():
        paper = PAPER_ACCURACY_COST.get(name)
        lines.append(
            f"| {name} | {row['mean']:.4f} ({row['min']:.4f}–{row['max']:.4f}) | {100 * (row['mean'] - plain):+.2f} pts | "
            f"{'' if paper is None else f'{paper[0]:.1f} % / {paper[1]:.1f} %'} |"
        )
    return "\n".join(lines) + "\n"


def tracing_plots(r: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Score histograms (derived vs unrelated) per method, and ROC curves per learning rate, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    panels = []
    for name, m in r["methods"].items():
        panels += [(name, k) for k in m["overall"] if k in (m["primary"], "tau_score")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (name, k) in zip(axes[0], panels):
        pairs = r["methods"][name]["pairs"]
        vals_all = [q[k] for q in pairs]
        clip = 50.0 if k == "neg_log10_p" else None
        lo, hi = (0.0, clip) if clip else (min(vals_all + [0.0]), max(vals_all + [1.0]))
        bins = [lo + (hi - lo) * i / 30 for i in range(31)]
        for label, color, text in ((0, "tab:blue", "unrelated"), (1, "tab:red", "derived")):
            vals = [min(q[k], clip - 1e-6) if clip else q[k] for q in pairs if q["label"] == label]
            ax.hist(vals, bins=bins, alpha=0.6, color=color, label=f"{text} ({len(vals)})")
        ax.set_title(f"{name}: {k}" + (" (clipped at 50)" if clip else ""), fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    written.append(out_dir / "tracing_scores.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    lrs = list(next(iter(r["methods"].values()))["by_lr"])
    fig, axes = plt.subplots(1, len(lrs), figsize=(3.3 * len(lrs), 3.3), squeeze=False)
    for ax, lr in zip(axes[0], lrs):
        for name, m in r["methods"].items():
            sel = [q for q in m["pairs"] if q["lr"] is None or f"{q['lr']:g}" == lr]
            f, t, _ = roc_curve([q["label"] for q in sel], [q[m["primary"]] for q in sel])
            ax.plot(f, t, label=name)
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set_title(f"lr {lr}", fontsize=9)
        ax.set_xlabel("FPR")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("TPR")
    fig.tight_layout()
    written.append(out_dir / "tracing_roc.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    return written


def small_profile(**overrides: Any) -> TracingProfile:
    """A profile for tests and smoke runs (override anything)."""
    return replace(PROFILES["quick"], **{"name": "smoke", **overrides})
