"""Tracing metrics for scored (source, suspect) pairs: label 1 = the suspect derives from the source.

* ``best_threshold_accuracy``: the paper's metric (threshold t chosen to maximise accuracy on the
  very pairs it is evaluated on: optimistic by construction);
* ``best_balanced_accuracy``: the same, with (TPR + TNR)/2 in place of accuracy.  Our pools have
  1 derived suspect per source for every 7 unrelated ones, so plain accuracy has an 87.5 % floor
  (answer "unrelated" always); the paper's numbers bottom out at 50 %, i.e. balanced pairs, so
  balanced accuracy is the figure comparable with the paper's;
* ``fixed_threshold_accuracy``: accuracy at a threshold fixed before seeing the pairs;
* ROC-AUC and TPR at 1 % FPR (scikit-learn), threshold-free.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

__all__ = ["best_balanced_accuracy", "best_threshold_accuracy", "fixed_threshold_accuracy", "summarize", "tpr_at_fpr"]


def best_threshold_accuracy(scores: Sequence[float], labels: Sequence[int]) -> tuple[float, float]:
    """``(accuracy, threshold)`` maximising the accuracy of ``score > t`` over every cut."""
    s, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=int)
    cuts = np.concatenate([[-np.inf], np.unique(s)])
    accs = [float(((s > t) == y).mean()) for t in cuts]
    i = int(np.argmax(accs))
    return accs[i], float(cuts[i])


def best_balanced_accuracy(scores: Sequence[float], labels: Sequence[int]) -> tuple[float, float]:
    """``(balanced accuracy, threshold)`` maximising (TPR + TNR)/2 of ``score > t`` over every cut."""
    s, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=int)
    if y.min() == y.max():
        return best_threshold_accuracy(scores, labels)
    cuts = np.concatenate([[-np.inf], np.unique(s)])
    bal = [0.5 * (float((s[y == 1] > t).mean()) + float((s[y == 0] <= t).mean())) for t in cuts]
    i = int(np.argmax(bal))
    return bal[i], float(cuts[i])


def fixed_threshold_accuracy(scores: Sequence[float], labels: Sequence[int], threshold: float) -> float:
    s, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=int)
    return float(((s > threshold) == y).mean())


def tpr_at_fpr(scores: Sequence[float], labels: Sequence[int], fpr: float = 0.01) -> float:
    """Largest true-positive rate among thresholds whose false-positive rate is <= ``fpr``."""
    y = np.asarray(labels, dtype=int)
    if y.min() == y.max():
        return float("nan")
    f, t, _ = roc_curve(y, np.asarray(scores, dtype=float))
    ok = f <= fpr + 1e-12
    return float(t[ok].max()) if ok.any() else 0.0


def summarize(scores: Sequence[float], labels: Sequence[int], fixed_threshold: float) -> dict[str, float]:
    y = np.asarray(labels, dtype=int)
    acc, t = best_threshold_accuracy(scores, labels)
    bal, _ = best_balanced_accuracy(scores, labels)
    both = y.min() != y.max()
    return {
        "pairs": int(len(y)),
        "positives": int(y.sum()),
        "best_threshold_accuracy": acc,
        "best_threshold": t,
        "best_balanced_accuracy": bal,
        "fixed_threshold_accuracy": fixed_threshold_accuracy(scores, labels, fixed_threshold),
        "fixed_threshold": fixed_threshold,
        "roc_auc": float(roc_auc_score(y, np.asarray(scores, dtype=float))) if both else float("nan"),
        "tpr_at_1pct_fpr": tpr_at_fpr(scores, labels, 0.01),
    }
