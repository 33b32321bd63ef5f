"""The MetaV claim trainer: one call from a manifest to a committed claim artefact.

What ``freqprint metav train`` runs: build (or load from the cache) the train, validation,
reference and replicate splits of the manifest's ensemble, train the fingerprint inputs X and the
meta-verifier V jointly (:func:`~freqprint.metav.core.fit_metav`), calibrate λ on the validation
split, give the claim its floor from the reference split and, where the manifest has
replicates of the source, the replicate route (:func:`~freqprint.metav.core.calibrate_floor`), and write the claim
(:func:`~freqprint.metav.artefact.save_claim`) whose commitment the owner publishes.

**Reproducible**: the same manifest, seed, torch version and thread count give the same X, V, λ
and floor, bit for bit (tested); the claim records the torch version and thread count.  Another
thread count changes floating-point sums, so the numbers move in their last bits and a verdict
near λ can move with them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freqprint.errors import FreqprintError, InvalidArgument
from freqprint.metav.artefact import save_claim
from freqprint.metav.core import MetaV, MetaVConfig, calibrate_floor, fit_metav
from freqprint.metav.ensemble import Ensemble, Manifest, build_ensemble

__all__ = ["ClaimTraining", "fit_claim", "metav_configs", "train_claim"]


def metav_configs(profile: str) -> dict[str, MetaVConfig]:
    """The MetaV settings of each profile (the defaults of :class:`MetaVConfig` otherwise)."""
    steps = {"tiny": 60, "quick": 300, "large": 1500}[profile]
    return {
        "classification": MetaVConfig(n_inputs=32, steps=steps, augment=0.05),
        "regression": MetaVConfig(n_inputs=32, steps=steps, augment=0.05),
        "generation": MetaVConfig(n_inputs=16, steps=steps, augment=0.02),
    }


@dataclass(frozen=True)
class ClaimTraining:
    """What :func:`train_claim` wrote: the claim's path and commitment, and its calibration."""

    path: Path
    commitment: str
    kind: str
    n_inputs: int
    threshold: float
    validation_models: int
    validation_aruc: float
    reference_models: int
    alpha: float
    probe_floor: float | None = None
    floor_quantile: float | None = None
    probe_statistic: str | None = None
    replicates: int = 0


def train_claim(
    manifest: Manifest,
    out: str | Path,
    cache: str | Path,
    *,
    seed: int = 0,
    n_inputs: int | None = None,
    steps: int | None = None,
    updates: str | None = None,
    augment: float | None = None,
    floor_quantile: float | None = None,
    no_floor: bool = False,
    root: str | Path | None = None,
    device: str = "cpu",
    alpha: float = 0.01,
    log: Callable[[str], None] = print,
) -> ClaimTraining:
    """Train MetaV on ``manifest``'s ensemble and write the committed claim to ``out``.

    The settings are the manifest profile's (:func:`metav_configs`; ``quick`` for a custom
    profile) with ``seed`` and any of ``n_inputs``, ``steps``, ``updates``, ``augment``,
    ``floor_quantile`` given (the probe floor's quantile, 0.05 by default; ``no_floor``: none)."""
    kind = manifest.task["kind"]
    base = metav_configs(manifest.profile if manifest.profile in ("tiny", "quick", "large") else "quick").get(kind)
    if base is None:
        raise InvalidArgument(f"unknown task kind {kind!r}")
    changes: dict[str, Any] = {
        k: v
        for k, v in {
            "n_inputs": n_inputs,
            "steps": steps,
            "updates": updates,
            "augment": augment,
            "floor_quantile": floor_quantile,
        }.items()
        if v is not None
    }
    if no_floor:
        if floor_quantile is not None:
            raise InvalidArgument("give a floor quantile or no floor, not both")
        changes["floor_quantile"] = None
    cfg = dataclasses.replace(base, seed=seed, **changes)
    splits = ("train", "val", "reference", "replicate")
    ens = build_ensemble(manifest, cache, root=str(root) if root else None, log=log, splits=splits, device=device)
    v, ref = ens.split("val"), ens.split("reference")
    if not ref:
        raise FreqprintError("the manifest has no 'reference' split: a claim's p-value needs independent reference models")
    mv = fit_claim(ens, cfg, alpha, log)
    commitment = save_claim(mv, out, manifest.to_dict(), ens.hashes)
    best = mv.history[-1]["best_step"]
    aruc = next(h["val_aruc"] for h in mv.history if h.get("step") == best)
    assert mv.floor is not None  # fit_claim calibrates it
    return ClaimTraining(
        Path(out),
        commitment,
        kind,
        len(mv.inputs),
        float(mv.threshold),
        len(v),
        float(aruc),
        len(ref),
        alpha,
        mv.floor.probe_floor,
        mv.floor.floor_quantile,
        mv.task.probe_statistic_name,
        mv.floor.replicates,
    )


def fit_claim(ens: Ensemble, cfg: MetaVConfig, alpha: float = 0.01, log: Callable[[str], None] = print) -> MetaV:
    """MetaV trained on ``ens``'s train and val splits, λ calibrated, and its floor calibrated on
    the reference split with ``cfg.n_probes`` natural probe inputs of the owner's data (the
    probe floor on the train and val positives when cfg.floor_quantile is set)."""
    lo, hi = ens.task.domain(ens.data.owner)
    # where the task's input law has a symmetry (a generator's prior), every model is read in the
    # source's frame (freqprint.stats.latent): V learns on what it will be shown
    frame = ens.task.frame(ens.source.query, cfg.frame_codes) if cfg.canonical else None
    mv = fit_metav(
        ens.task,
        [(ens.task.canonical(m.query, frame, cfg.frame_codes), m.label) for m in ens.split("train")],
        [(ens.task.canonical(m.query, frame, cfg.frame_codes), m.label) for m in ens.split("val")],
        ens.task.init_inputs(ens.data.owner, cfg.n_inputs, cfg.seed),
        (lo, hi),
        cfg,
        log=log,
    )
    mv.frame = frame
    calibrate_floor(
        mv,
        ens.source.query,
        [(m.query, m.entry.family) for m in ens.split("reference")],
        ens.task.real_inputs(ens.data.owner, cfg.n_probes, cfg.seed + 1),
        alpha,
        positives=[m.query for s in ("train", "val") for m in ens.split(s) if m.label == 1],
        replicates=[m.query for m in ens.split("replicate")],
    )
    return mv
