"""The hardest negatives for ``freqprint trace``: a panel of independently trained models of the
owner's own recipe family (issue 10).

Independent models of one recipe converge to similar features, so they are where a lineage test
would first produce false matches.  The panel varies what an honest competitor varies — seed,
width, the subset of the data, whether a fingerprint module (with its own secret) is attached —
and keeps the owner's architecture family, data and schedule.  Three checks:

* every panel model against the owner (fingerprint, lineage, combined): false matches;
* panel pairs (model j as the owner, its seed public, against the next ``pairs`` models):
  false lineage matches between independent models of one recipe;
* every panel model against its *own* initialisation: the test's power on briefly trained models.

Models are cached by recipe hash (the tracing cache), so a rerun only re-scores.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from freqprint.io.cache import ModelCache
from freqprint.stats.null import format_p
from freqprint.verification.backbone import OwnerInit, lineage
from freqprint.verification.provenance import trace

__all__ = ["panel_markdown", "run_panel_bench"]

WIDTHS = (32, 16, 48, 32)


def _panel_model(i: int, cache: ModelCache, data, limit: int, epochs: int, device: str) -> tuple[torch.nn.Module, dict[str, Any]]:
    from freqprint.fingerprint import FingerprintConfig, attach
    from freqprint.fingerprint.loss import FingerprintLoss, add_pseudo_class
    from freqprint.models import create_model
    from freqprint.training import TrainConfig, train

    seed = 10_000 + i
    width = WIDTHS[i % len(WIDTHS)]
    module = i % 2 == 0
    spec = {
        "kind": "panel",
        "index": i,
        "seed": seed,
        "width": width,
        "module": module,
        "limit": limit,
        "epochs": epochs,
        "data": "fashion-mnist",
    }
    recipe: dict[str, Any] = {
        "model": "smallcnn",
        "kwargs": {"num_classes": 10, "in_channels": 1, "width": width},
        "input_shape": [1, 28, 28],
        "num_classes": 10,
        "pseudo_class": module,
        "fingerprint": None,
        "init": {"scheme": "seed", "seed": seed},
    }

    def build() -> tuple[torch.nn.Module, dict[str, Any]]:
        torch.manual_seed(seed)
        net = create_model("smallcnn", **recipe["kwargs"])
        crit = None
        if module:
            cfg = FingerprintConfig(target="conv2", secret=f"panel-secret-{i}", filters=256)
            attach(net, cfg, data.images[:2])
            add_pseudo_class(net)
            recipe["fingerprint"] = cfg.to_dict()
            crit = FingerprintLoss(10, weight=5e-4)
        train(
            net,
            data.subset(limit, seed=seed),
            TrainConfig(epochs=epochs, lr=0.05, lr_drop_at=2 / 3, seed=seed, device=device),
            criterion=crit,
            progress=False,
        )
        return net.cpu(), recipe

    model, _ = cache.get(spec, build)
    return model, {"index": i, "seed": seed, "width": width, "module": module}


def run_panel_bench(
    owner: str | Path,
    owner_secret: str,
    n: int = 100,
    pairs: int = 10,
    limit: int = 6000,
    epochs: int = 1,
    cache_dir: str | Path = ".cache/freqprint/models",
    data_root: str | None = None,
    device: str = "cpu",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train (or load) ``n`` panel models and run the three checks of the module docstring."""
    from freqprint.data import load_dataset
    from freqprint.verification.key import extract

    t0 = time.time()
    pairs = min(pairs, n - 1)  # never a model against its own θ₀ (that is the power check)
    data = load_dataset("fashion-mnist", "train", root=data_root)
    owner_init = OwnerInit.from_file(owner, secret=owner_secret)
    key = extract(owner, secret=owner_secret)
    cache = ModelCache(cache_dir)
    cache.root.mkdir(parents=True, exist_ok=True)
    models, infos = [], []
    for i in range(n):
        m, info = _panel_model(i, cache, data, limit, epochs, device)
        models.append(m)
        infos.append(info)
        if (i + 1) % 10 == 0:
            log(f"panel: {i + 1}/{n} models ({cache.misses} trained, {time.time() - t0:.0f} s)")
    train_s = time.time() - t0
    vs_owner = []
    for m, info in zip(models, infos):
        tr = trace(m, key=key, owner_init=owner_init)
        vs_owner.append(
            {
                **info,
                "fingerprint": tr.channel("fingerprint").log10_p,
                "lineage": tr.channel("lineage").log10_p,
                "combined": tr.log10_p,
                "found": tr.found,
            }
        )
    log(f"panel vs owner: {sum(r['found'] for r in vs_owner)} false matches of {n}")
    inits = [
        OwnerInit("smallcnn", {"num_classes": 10, "in_channels": 1, "width": info["width"]}, info["seed"], True) for info in infos
    ]
    own = []
    for m, info, init in zip(models, infos, inits):
        r = lineage(init, m)
        own.append({**info, "lineage": r.log10_p, "found": r.found})
    log(f"panel vs own init: {sum(r['found'] for r in own)} of {n} found")
    pair_rows = []
    t1 = time.time()
    for j in range(n):
        for step in range(1, pairs + 1):
            k = (j + step) % n
            r = lineage(inits[j], models[k])
            pair_rows.append({"owner": j, "suspect": k, "lineage": r.log10_p, "found": r.found})
    log(
        f"panel pairs: {sum(r['found'] for r in pair_rows)} false matches of {len(pair_rows)} "
        f"({(time.time() - t1) / max(1, len(pair_rows)):.3f} s per pair)"
    )
    return {
        "benchmark": "panel",
        "owner": str(owner),
        "n": n,
        "limit": limit,
        "epochs": epochs,
        "widths": list(WIDTHS),
        "torch": torch.__version__,
        "trained": cache.misses,
        "train_seconds": train_s,
        "vs_owner": vs_owner,
        "own_init": own,
        "pairs": pair_rows,
        "seconds": time.time() - t0,
    }


def panel_markdown(res: dict[str, Any]) -> str:
    def smallest(rows: list[dict[str, Any]], k: str) -> str:
        return format_p(min(r[k] for r in rows)) if rows else "—"

    vo, own, pr = res["vs_owner"], res["own_init"], res["pairs"]
    lines = [
        f"Panel: {res['n']} SmallCNNs (widths {', '.join(map(str, sorted(set(res['widths']))))}; half with a fingerprint "
        f"module under their own secret), each trained {res['epochs']} epoch(s) on its own random {res['limit']} "
        "Fashion-MNIST images from its own seed.",
        "",
        "| check | comparisons | matches (p < 1e-6) | smallest p |",
        "|---|---|---|---|",
        f"| panel vs owner: fingerprint | {len(vo)} | {sum(r['fingerprint'] < -6 for r in vo)} | {smallest(vo, 'fingerprint')} |",
        f"| panel vs owner: lineage | {len(vo)} | {sum(r['lineage'] < -6 for r in vo)} | {smallest(vo, 'lineage')} |",
        f"| panel vs owner: **combined** | {len(vo)} | **{sum(r['found'] for r in vo)}** | {smallest(vo, 'combined')} |",
        f"| panel pairs (lineage, owner's seed public) | {len(pr)} | {sum(r['found'] for r in pr)} | {smallest(pr, 'lineage')} |",
        f"| panel vs its own θ₀ (power) | {len(own)} | {sum(r['found'] for r in own)} | largest p: "
        f"{format_p(max(r['lineage'] for r in own)) if own else '—'} |",
    ]
    return "\n".join(lines) + "\n"
