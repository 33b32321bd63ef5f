"""Metrics for a verifier's scores on positive (derived) and negative (independent) suspects.

**ARUC** (the robustness–uniqueness *overlap*, the paper; public reimplementations
disagree, several compute a ROC area under this name)::

    R(λ) = |{f ∈ P : s(f) ≥ λ}| / |P|        robustness (TPR at λ)
    U(λ) = |{f ∈ N : s(f) <  λ}| / |N|        uniqueness (TNR at λ)
    ARUC = ∫₀¹ min(R(λ), U(λ)) dλ

for scores in [0, 1].  It is 1 only when every positive scores 1 and every negative 0; it
rewards a wide margin, where ROC-AUC rewards only the ranking.  Computed exactly: R and U are
step functions, so the integral is a sum over the sorted scores.

Beside it: ROC-AUC, TPR at 1 % FPR (``freqprint.stats.metrics``), and TPR / TNR at a
threshold fixed beforehand (the calibrated λ), each with a percentile bootstrap interval over
suspect models (positives and negatives resampled separately).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

__all__ = ["aruc", "bootstrap", "per_family", "score_metrics", "summarise"]


def aruc(pos: Sequence[float] | np.ndarray, neg: Sequence[float] | np.ndarray) -> float:
    """∫₀¹ min(R(λ), U(λ)) dλ, exactly (scores clipped to [0, 1])."""
    p = np.clip(np.asarray(pos, float), 0, 1)
    n = np.clip(np.asarray(neg, float), 0, 1)
    if len(p) == 0 or len(n) == 0:
        return float("nan")
    # R and U are constant between consecutive breakpoints (every score, 0 and 1)
    pts = np.unique(np.concatenate([[0.0, 1.0], p, n]))
    lo, hi = pts[:-1], pts[1:]
    mid = (lo + hi) / 2
    r = (p[None, :] >= mid[:, None]).mean(1)
    u = (n[None, :] < mid[:, None]).mean(1)
    return float((np.minimum(r, u) * (hi - lo)).sum())


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    return float(roc_auc_score(y, np.r_[pos, neg]))


def _tpr_at_1pct(pos: np.ndarray, neg: np.ndarray) -> float:
    from freqprint.stats.metrics import tpr_at_fpr

    return tpr_at_fpr(np.r_[pos, neg], np.r_[np.ones(len(pos)), np.zeros(len(neg))], 0.01)


def score_metrics(pos: Sequence[float] | np.ndarray, neg: Sequence[float] | np.ndarray, threshold: float) -> dict[str, float]:
    p, n = np.asarray(pos, float), np.asarray(neg, float)
    return {
        "aruc": aruc(p, n),
        "roc_auc": _auc(p, n),
        "tpr_at_1pct_fpr": _tpr_at_1pct(p, n),
        "tpr": float((p >= threshold).mean()),
        "tnr": float((n < threshold).mean()),
    }


def bootstrap(
    pos: Sequence[float], neg: Sequence[float], threshold: float, rounds: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of :func:`score_metrics` over suspect models resampled with replacement."""
    p, n = np.asarray(pos, float), np.asarray(neg, float)
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(rounds):
        bp, bn = rng.choice(p, len(p)), rng.choice(n, len(n))
        for k, v in score_metrics(bp, bn, threshold).items():
            draws.setdefault(k, []).append(v)
    a = (1 - level) / 2
    return {k: (float(np.nanquantile(v, a)), float(np.nanquantile(v, 1 - a))) for k, v in draws.items()}


def per_family(scores: Sequence[float], labels: Sequence[int], families: Sequence[str], threshold: float) -> list[dict[str, Any]]:
    """Per family: how many models, and how many the threshold gets right (TPR for positive
    families, TNR for negative ones)."""
    out: dict[str, dict[str, Any]] = {}
    for s, y, f in zip(scores, labels, families):
        row = out.setdefault(f, {"family": f, "label": int(y), "n": 0, "correct": 0, "scores": []})
        row["n"] += 1
        row["correct"] += int((s >= threshold) == bool(y))
        row["scores"].append(float(s))
    for row in out.values():
        row["rate"] = row["correct"] / row["n"]
        row["min"], row["max"] = min(row["scores"]), max(row["scores"])
        del row["scores"]
    return sorted(out.values(), key=lambda r: (-r["label"], r["family"]))


def summarise(pos: Sequence[float], neg: Sequence[float], threshold: float, rounds: int = 1000) -> dict[str, Any]:
    """Point values, bootstrap intervals and counts in one dict."""
    return {
        "n_pos": len(pos),
        "n_neg": len(neg),
        "threshold": threshold,
        **score_metrics(pos, neg, threshold),
        "ci95": bootstrap(pos, neg, threshold, rounds),
    }
